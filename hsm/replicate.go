package hsm

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/miekg/pkcs11"
)

// WrappedKey is one of a cluster's secret keys (a sealing key version or the
// MAC key) wrapped with RSA-OAEP to a joining node's HSM. Only that HSM can
// unwrap it; the blob is safe to send over the cluster's TLS channel.
type WrappedKey struct {
	Label   string `json:"label"`
	Wrapped []byte `json:"wrapped"`
}

const (
	unwrapLabel     = "portcullis-join-unwrap"
	trustedPrefix   = "portcullis-trusted-wrap-"
	wrappingKeyBits = 3072
)

// oaep is the wrapping mechanism: RSA-OAEP with SHA-1 and MGF1-SHA1, the
// parameter set SoftHSM 2.6 supports for C_WrapKey/C_UnwrapKey. OAEP's
// security here rests on RSA-3072, not on SHA-1 collision resistance.
func oaep() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
}

// WrappingKeyFingerprint is a short hex SHA-256 of a wrapping public key's
// DER, for admins to compare between the two nodes.
func WrappingKeyFingerprint(pubDER []byte) string {
	sum := sha256.Sum256(pubDER)
	return hex.EncodeToString(sum[:8])
}

func parseWrappingKey(pubDER []byte) (*rsa.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return nil, fmt.Errorf("hsm: wrapping key: %w", err)
	}
	rp, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("hsm: wrapping key is %T, want RSA", pub)
	}
	if rp.N.BitLen() < 2048 {
		return nil, fmt.Errorf("hsm: wrapping key has %d bits, want at least 2048", rp.N.BitLen())
	}
	return rp, nil
}

// NewWrappingKeyPair (joining node, step 1) generates an RSA-3072 pair in this
// HSM whose private half can only unwrap and never leaves the token, replacing
// any earlier pending pair. It returns the public key (PKIX DER) to hand to
// the SO of an existing node.
func (k *Keystore) NewWrappingKeyPair(ctx context.Context) ([]byte, error) {
	var der []byte
	err := k.do(ctx, func(_ *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		if err := destroyAll(p, sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, unwrapLabel)}); err != nil {
			return err
		}
		pubT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, wrappingKeyBits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		}
		privT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, unwrapLabel),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(unwrapLabel)),
		}
		pubH, _, err := p.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pubT, privT)
		if err != nil {
			return fmt.Errorf("hsm: generate wrapping key pair: %w", classify(err))
		}
		defer p.DestroyObject(sh, pubH)
		attrs, err := p.GetAttributeValue(sh, pubH, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return fmt.Errorf("hsm: read wrapping public key: %w", classify(err))
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(new(big.Int).SetBytes(attrs[1].Value).Int64())}
		der, err = x509.MarshalPKIXPublicKey(pub)
		return err
	})
	if err != nil {
		return nil, err
	}
	k.log.Info("hsm: join wrapping key generated", "fingerprint", WrappingKeyFingerprint(der))
	return der, nil
}

func destroyAll(p *pkcs11.Ctx, sh pkcs11.SessionHandle, template []*pkcs11.Attribute) error {
	hs, err := findObjects(p, sh, template)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if err := p.DestroyObject(sh, h); err != nil {
			return fmt.Errorf("hsm: destroy object: %w", classify(err))
		}
	}
	return nil
}

// TrustWrappingKey (existing node, step 2) imports a joining node's wrapping
// public key into the token cfg names as a CKA_TRUSTED wrapping key. Only the
// Security Officer may set CKA_TRUSTED, so this logs in with soPIN. PKCS#11
// allows one login type per application, so this must run in a process that
// has no Keystore open on the token (the CLI), not in the server.
// Importing the same key twice is a no-op.
func TrustWrappingKey(cfg Config, soPIN, pubDER []byte) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	pub, err := parseWrappingKey(pubDER)
	if err != nil {
		return err
	}
	moduleMu.Lock()
	defer moduleMu.Unlock()
	m, err := loadModule(c.ModulePath)
	if err != nil {
		return err
	}
	defer m.close()
	slot, err := m.findSlot(c.TokenLabel)
	if err != nil {
		return err
	}
	sh, err := m.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: open session: %w", classify(err))
	}
	defer m.p.CloseSession(sh)
	if err := login(m.p, sh, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("hsm: trust wrapping key: SO login: %w", err)
	}
	defer m.p.Logout(sh)
	existing, err := findObjects(m.p, sh, trustedKeyTemplate(pub))
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	label := trustedPrefix + WrappingKeyFingerprint(pubDER)
	t := append(trustedKeyTemplate(pub),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(pub.E)).Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
	)
	if _, err := m.p.CreateObject(sh, t); err != nil {
		return fmt.Errorf("hsm: import trusted wrapping key: %w", classify(err))
	}
	return nil
}

func trustedKeyTemplate(pub *rsa.PublicKey) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, pub.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
	}
}

// WrapSecretKeys (existing node, step 3) wraps every sealing key version and
// the MAC key to a wrapping public key the SO has trusted on this token
// (TrustWrappingKey). Without that, it fails with ErrUntrustedWrappingKey,
// and the HSM itself would refuse too (CKA_WRAP_WITH_TRUSTED).
func (k *Keystore) WrapSecretKeys(ctx context.Context, pubDER []byte) ([]WrappedKey, error) {
	pub, err := parseWrappingKey(pubDER)
	if err != nil {
		return nil, err
	}
	var out []WrappedKey
	err = k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		hs, err := findObjects(p, sh, trustedKeyTemplate(pub))
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: fingerprint %s", ErrUntrustedWrappingKey, WrappingKeyFingerprint(pubDER))
		}
		return c.wrapAll(p, sh, hs[0], &out)
	})
	if err != nil {
		return nil, err
	}
	k.log.Info("hsm: secret keys wrapped for a joining node", "keys", len(out), "fingerprint", WrappingKeyFingerprint(pubDER))
	return out, nil
}

func (c *conn) wrapAll(p *pkcs11.Ctx, sh pkcs11.SessionHandle, wrapping pkcs11.ObjectHandle, out *[]WrappedKey) error {
	if err := c.loadSealKeys(p, sh); err != nil {
		return err
	}
	c.mu.Lock()
	keys := map[string]pkcs11.ObjectHandle{}
	for v, h := range c.seal {
		keys[sealLabel(v)] = h
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return ErrNoSealingKey
	}
	mac, err := c.macKey(p, sh, false)
	if err != nil {
		return err
	}
	keys[macLabel] = mac
	for label, h := range keys {
		b, err := p.WrapKey(sh, oaep(), wrapping, h)
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_NOT_WRAPPABLE)) {
			return fmt.Errorf("%w: the HSM refused to wrap %s", ErrUntrustedWrappingKey, label)
		}
		if err != nil {
			return fmt.Errorf("hsm: wrap %s: %w", label, classify(err))
		}
		*out = append(*out, WrappedKey{Label: label, Wrapped: b})
	}
	return nil
}

// UnwrapSecretKeys (joining node, step 4) unwraps the keys into this token
// with the pending unwrap key from NewWrappingKeyPair, then destroys that key.
// A key whose label the token already holds is checked instead of stored: it
// must be the same key (equal key check values), else the call fails with
// nothing changed. So the ceremony can be re-run after a rotation on the
// cluster's leader to hand the new version to every other node.
func (k *Keystore) UnwrapSecretKeys(ctx context.Context, keys []WrappedKey) error {
	for _, w := range keys {
		if !validWrappedLabel(w.Label) {
			return fmt.Errorf("hsm: unwrap: unexpected key label %q", w.Label)
		}
	}
	added := 0
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		priv, err := findObjects(p, sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, unwrapLabel),
		})
		if err != nil {
			return err
		}
		if len(priv) == 0 {
			return ErrNoUnwrapKey
		}
		// First pass: unwrap every key as a session object and check the
		// ones this token already holds, so a mismatch changes nothing.
		var fresh []WrappedKey
		for _, w := range keys {
			kt := keyTypeOf(w.Label)
			have, err := findObjects(p, sh, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, w.Label),
			})
			if err != nil {
				return err
			}
			tmpl := secretKeyTemplate(w.Label, kt)
			for i, a := range tmpl {
				if a.Type == pkcs11.CKA_TOKEN {
					tmpl[i] = pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)
				}
			}
			tmp, err := p.UnwrapKey(sh, oaep(), priv[0], w.Wrapped, tmpl)
			if err != nil {
				return fmt.Errorf("hsm: unwrap %s: %w", w.Label, classify(err))
			}
			if len(have) == 0 {
				_ = p.DestroyObject(sh, tmp)
				fresh = append(fresh, w)
				continue
			}
			a, errA := keyCheckValue(p, sh, have[0], kt)
			b, errB := keyCheckValue(p, sh, tmp, kt)
			_ = p.DestroyObject(sh, tmp)
			if errA != nil || errB != nil {
				return fmt.Errorf("hsm: check %s: %w", w.Label, errors.Join(errA, errB))
			}
			if !bytes.Equal(a, b) {
				return fmt.Errorf("hsm: unwrap: this token holds a different %s (keys diverged: rotate only on one node)", w.Label)
			}
		}
		for _, w := range fresh {
			if _, err := p.UnwrapKey(sh, oaep(), priv[0], w.Wrapped, secretKeyTemplate(w.Label, keyTypeOf(w.Label))); err != nil {
				return fmt.Errorf("hsm: unwrap %s: %w", w.Label, classify(err))
			}
			added++
		}
		for _, h := range priv {
			if err := p.DestroyObject(sh, h); err != nil {
				return fmt.Errorf("hsm: destroy unwrap key: %w", classify(err))
			}
		}
		c.mu.Lock()
		c.mac = 0
		c.mu.Unlock()
		return c.loadSealKeys(p, sh)
	})
	if err != nil {
		return err
	}
	k.log.Info("hsm: secret keys unwrapped from the cluster", "added", added, "already_held", len(keys)-added)
	return nil
}

func keyTypeOf(label string) uint {
	if label == macLabel {
		return pkcs11.CKK_GENERIC_SECRET
	}
	return pkcs11.CKK_AES
}

// keyCheckValue identifies a key without revealing it: the GCM tag of an
// empty message under an all-zero nonce (AES), or the HMAC of a fixed string.
func keyCheckValue(p *pkcs11.Ctx, sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, kt uint) ([]byte, error) {
	if kt == pkcs11.CKK_GENERIC_SECRET {
		if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, h); err != nil {
			return nil, err
		}
		return p.Sign(sh, []byte("portcullis key check value"))
	}
	params := pkcs11.NewGCMParams(make([]byte, gcmNonceSize), []byte("portcullis key check value"), gcmTagSize*8)
	defer params.Free()
	if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, err
	}
	return p.Encrypt(sh, nil)
}

func validWrappedLabel(l string) bool {
	if l == macLabel {
		return true
	}
	v, ok := strings.CutPrefix(l, sealLabelPrefix)
	if !ok || v == "" || len(v) > 10 {
		return false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return v[0] != '0'
}
