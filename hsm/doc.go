// Package hsm is the appliance's PKCS#11 keystore: it seals and unseals backend
// secrets, signs with keys that never leave the HSM, computes keyed MACs for DLP
// tokenization, draws HSM randomness, and replicates its secret keys to a joining
// node through a wrap/unwrap ceremony. It runs against any PKCS#11 module; tests
// and dev mode use SoftHSM2 through the same code path.
//
// # Keys
//
// Every key is created inside the token and is CKA_SENSITIVE, so its value can
// never be read out with C_GetAttributeValue.
//
//   - Sealing keys: AES-256, label "portcullis-seal-v<N>". New writes use the
//     highest version; older versions stay to open old ciphertexts until Reseal
//     has moved them. Sealed secrets are AES-GCM with associated data binding the
//     ciphertext to the secret's name and version (see Sealed).
//   - MAC key: a 256-bit generic secret, label "portcullis-mac-v1", used with
//     CKM_SHA256_HMAC for deterministic DLP tokens.
//   - Signers: ECDSA P-256 key pairs, label "portcullis-sign-<name>", one per
//     purpose (gateway tokens, audit checkpoints, cluster CA, firmware). They are
//     per node and never leave the node's HSM (CKA_EXTRACTABLE false); their
//     public keys are what the cluster publishes.
//
// # Replication and CKA_WRAP_WITH_TRUSTED
//
// A cluster must share its sealing and MAC keys, so those are CKA_EXTRACTABLE —
// but only toward a trusted key: they are created with CKA_WRAP_WITH_TRUSTED
// true (an attribute that can never be turned off again), so C_WrapKey refuses
// every wrapping key that lacks CKA_TRUSTED, and only the token's Security
// Officer can set CKA_TRUSTED. Someone holding the user PIN alone therefore
// cannot export a sealing key to a key of his own; a join needs the SO.
//
// The ceremony (see NewWrappingKeyPair, TrustWrappingKey, WrapSecretKeys,
// UnwrapSecretKeys):
//  1. the joining node's HSM generates an RSA-3072 pair whose private half can
//     only unwrap (CKA_UNWRAP, non-extractable); its public key goes to an admin;
//  2. on an existing node the SO imports that public key as a trusted wrapping
//     key (TrustWrappingKey). PKCS#11 allows one login type per application, so
//     this runs in its own process (`portcullis secret trust-join-key`), not in
//     the server that holds the user login;
//  3. the existing node wraps each sealing and MAC key with CKM_RSA_PKCS_OAEP
//     (SHA-1/MGF1-SHA1: the only OAEP parameters SoftHSM 2.6 accepts for
//     C_WrapKey) and sends the blobs;
//  4. the joining node unwraps them into its own token with the same attributes
//     and destroys its one-shot unwrap key.
//
// The key material exists in plain text only inside the two HSMs.
//
// Rotation in a cluster happens on one node (the leader): Rotate there, then
// run the ceremony again toward every other node; UnwrapSecretKeys adds the
// new version and checks that the versions a node already holds are the same
// keys (equal key check values), refusing keys that diverged. Then ResealAll
// on the leader, store the results, and DestroyKeyVersion the old version on
// every node.
//
// # Sessions and failure
//
// crypto11 opens the token (module, label, login) and provides the ECDSA
// signers and the AES-GCM of seal and unseal. crypto11's AEAD panics on a
// token error and flattens PKCS#11 return codes into text, so Seal recovers
// the panic, and after any failed crypto11 call the token is asked a harmless
// question on a raw session to tell a refused request from a token gone. MAC,
// random, key generation, wrap and unwrap run on this package's own bounded
// pool of raw sessions over the same module instance (MAC because crypto11's
// HMAC can strand a session on a token error, see Keystore.MAC). The keystore
// fails closed with a typed error: when the token stops answering, calls fail
// with ErrUnavailable, the connection is torn down, and a background loop
// reopens it with backoff until the token answers again.
//
// SoftHSM never locks a PIN (it counts failures but accepts the right PIN
// afterwards); ErrPINLocked is mapped from CKR_PIN_LOCKED for tokens that do.
package hsm
