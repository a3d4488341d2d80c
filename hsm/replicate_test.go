package hsm

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// trustInChild runs TrustWrappingKey as the SO in a separate process, as the
// CLI does on an existing node.
func trustInChild(t *testing.T, cfg Config, soPINFile string, pub []byte) error {
	t.Helper()
	cfg.Logger = nil
	job, err := json.Marshal(trustJob{Cfg: cfg, SOPINFile: soPINFile, PubDER: pub})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(job))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}

// TestReplicationCeremony proves that a secret sealed on one node's HSM opens
// on another's only after the wrap/unwrap ceremony, and that the user PIN
// alone cannot export the sealing key.
func TestReplicationCeremony(t *testing.T) {
	s := newSoftHSM(t)
	cfgA, soA := s.token(t, "node-a")
	cfgB, _ := s.token(t, "node-b")
	ctx := ctxT(t)

	a := open(t, cfgA)
	if err := a.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rotate(ctx); err != nil { // two versions travel
		t.Fatal(err)
	}
	secret := randomPIN()
	sealed, err := a.Seal(ctx, "helpdesk-token", 1, secret)
	if err != nil {
		t.Fatal(err)
	}
	macA, err := a.MAC(ctx, []byte("tokenize me"))
	if err != nil {
		t.Fatal(err)
	}

	b := open(t, cfgB)
	if _, err := b.Unseal(ctx, "helpdesk-token", 1, sealed); !errors.Is(err, ErrUnknownKeyVersion) {
		t.Fatalf("node B before the ceremony: %v, want ErrUnknownKeyVersion", err)
	}
	if err := b.UnwrapSecretKeys(ctx, nil); !errors.Is(err, ErrNoUnwrapKey) {
		t.Fatalf("unwrap without a pending key: %v", err)
	}

	pub, err := b.NewWrappingKeyPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Without the SO, node A refuses.
	if _, err := a.WrapSecretKeys(ctx, pub); !errors.Is(err, ErrUntrustedWrappingKey) {
		t.Fatalf("wrap to an untrusted key: %v, want ErrUntrustedWrappingKey", err)
	}
	// The SO cannot log in while this process holds the user login.
	if err := TrustWrappingKey(cfgA, mustRead(t, soA), pub); err == nil || !strings.Contains(err.Error(), "separate process") {
		t.Fatalf("in-process SO login: %v, want the one-login-per-process error", err)
	}
	if err := trustInChild(t, cfgA, cfgA.PINFile, pub); err == nil || !strings.Contains(err.Error(), "wrong PIN") {
		t.Fatalf("trust with the user PIN instead of the SO PIN: %v, want wrong PIN", err)
	}
	if err := trustInChild(t, cfgA, soA, pub); err != nil {
		t.Fatalf("SO trust step: %v", err)
	}
	wrapped, err := a.WrapSecretKeys(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrapped) != 3 { // seal v1, v2, mac
		t.Fatalf("wrapped %d keys, want 3", len(wrapped))
	}
	blob, _ := json.Marshal(wrapped)
	if bytes.Contains(blob, secret) {
		t.Fatal("wrapped keys contain the secret")
	}
	bad := append([]WrappedKey(nil), wrapped...)
	bad[0] = WrappedKey{Label: "../etc", Wrapped: wrapped[0].Wrapped}
	if err := b.UnwrapSecretKeys(ctx, bad); err == nil {
		t.Fatal("unwrap accepted a bad label")
	}
	if err := b.UnwrapSecretKeys(ctx, wrapped); err != nil {
		t.Fatal(err)
	}

	got, err := b.Unseal(ctx, "helpdesk-token", 1, sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("node B after the ceremony: %q, %v", got, err)
	}
	macB, err := b.MAC(ctx, []byte("tokenize me"))
	if err != nil || !bytes.Equal(macA, macB) {
		t.Fatalf("MAC differs between nodes: %x vs %x (%v)", macA, macB, err)
	}
	if va, _ := a.CurrentKeyVersion(ctx); va != 2 {
		t.Fatalf("node A current version %d", va)
	}
	if vb, _ := b.CurrentKeyVersion(ctx); vb != 2 {
		t.Fatalf("node B current version %d", vb)
	}
	// B seals, A opens: one key set.
	fromB, err := b.Seal(ctx, "x", 1, []byte("from b"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := a.Unseal(ctx, "x", 1, fromB); err != nil || string(pt) != "from b" {
		t.Fatalf("A opening B's seal: %q, %v", pt, err)
	}
	// The unwrap key was one-shot.
	if err := b.UnwrapSecretKeys(ctx, wrapped); !errors.Is(err, ErrNoUnwrapKey) {
		t.Fatalf("second unwrap: %v, want ErrNoUnwrapKey", err)
	}
	// Rotation on the leader, then the ceremony again: B gets v3, its
	// existing keys are checked equal, not duplicated.
	if v, err := a.Rotate(ctx); err != nil || v != 3 {
		t.Fatalf("Rotate = %d, %v", v, err)
	}
	s3, _ := a.Seal(ctx, "after-rotation", 1, []byte("v3"))
	rejoin := func() error {
		pub, err := b.NewWrappingKeyPair(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := trustInChild(t, cfgA, soA, pub); err != nil {
			t.Fatal(err)
		}
		w, err := a.WrapSecretKeys(ctx, pub)
		if err != nil {
			t.Fatal(err)
		}
		return b.UnwrapSecretKeys(ctx, w)
	}
	if err := rejoin(); err != nil {
		t.Fatalf("re-run after rotation: %v", err)
	}
	if pt, err := b.Unseal(ctx, "after-rotation", 1, s3); err != nil || string(pt) != "v3" {
		t.Fatalf("B opening a v3 seal: %q, %v", pt, err)
	}
	if vs, _ := b.KeyVersions(ctx); len(vs) != 3 {
		t.Fatalf("B key versions %v, want 3", vs)
	}
	// Both rotate on their own: v4 diverges and the ceremony refuses it.
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rejoin(); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("divergent v4: %v, want a refusal", err)
	}

	// The unwrapped keys keep the same protection.
	err = b.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		h, _, err := c.sealKey(p, sh, 1)
		if err != nil {
			return err
		}
		_, err = p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)) {
			t.Errorf("unwrapped key CKA_VALUE readable: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHSMRefusesUntrustedWrap shows the HSM itself, not only this package,
// refuses to wrap a sealing key with a key the user (not the SO) imported.
func TestHSMRefusesUntrustedWrap(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "untrusted")
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	err = k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		pub, err := p.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, attacker.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(attacker.E)).Bytes()),
		})
		if err != nil {
			return err
		}
		if _, err := p.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, attacker.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(attacker.E)).Bytes()),
		}); !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_READ_ONLY)) {
			t.Errorf("user set CKA_TRUSTED: %v, want CKR_ATTRIBUTE_READ_ONLY", err)
		}
		h, _, err := c.sealKey(p, sh, 0)
		if err != nil {
			return err
		}
		if _, err := p.WrapKey(sh, oaep(), pub, h); !errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_NOT_WRAPPABLE)) {
			t.Errorf("WrapKey to an untrusted key: %v, want CKR_KEY_NOT_WRAPPABLE", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&attacker.PublicKey)
	if _, err := k.WrapSecretKeys(ctx, der); !errors.Is(err, ErrUntrustedWrappingKey) {
		t.Fatalf("WrapSecretKeys: %v", err)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
