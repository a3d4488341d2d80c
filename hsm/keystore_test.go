package hsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestOpenErrors(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "errs")

	t.Run("missing module", func(t *testing.T) {
		c := cfg
		c.ModulePath = filepath.Join(t.TempDir(), "libnothere.so")
		_, err := Open(c)
		if !errors.Is(err, ErrModuleNotFound) || !strings.Contains(err.Error(), "libnothere.so") {
			t.Fatalf("err = %v, want ErrModuleNotFound naming the path", err)
		}
	})
	t.Run("not a module", func(t *testing.T) {
		c := cfg
		c.ModulePath = filepath.Join(t.TempDir(), "junk.so")
		if err := os.WriteFile(c.ModulePath, []byte("not an ELF"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(c); !errors.Is(err, ErrModuleNotFound) {
			t.Fatalf("err = %v, want ErrModuleNotFound", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		c := cfg
		c.TokenLabel = "nosuch"
		_, err := Open(c)
		if !errors.Is(err, ErrTokenNotFound) || !strings.Contains(err.Error(), `"errs"`) {
			t.Fatalf("err = %v, want ErrTokenNotFound listing the present tokens", err)
		}
	})
	t.Run("no PIN", func(t *testing.T) {
		c := cfg
		c.PINFile, c.PINEnv = "", "PORTCULLIS_TEST_UNSET_PIN"
		if _, err := Open(c); !errors.Is(err, ErrNoPIN) {
			t.Fatalf("err = %v, want ErrNoPIN", err)
		}
	})
	t.Run("PIN file readable by others", func(t *testing.T) {
		pin, err := os.ReadFile(cfg.PINFile)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.PINFile = filepath.Join(t.TempDir(), "open.pin")
		if err := os.WriteFile(c.PINFile, pin, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(c.PINFile, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = Open(c)
		if !errors.Is(err, ErrPINFileMode) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v, want ErrPINFileMode saying chmod 600", err)
		}
		if strings.Contains(err.Error(), string(pin)) {
			t.Fatalf("error leaks the PIN: %v", err)
		}
		// The SO PIN file of the join ceremony's CLI is read the same way.
		if _, err := ReadPINFile(c.PINFile); !errors.Is(err, ErrPINFileMode) {
			t.Fatalf("ReadPINFile = %v, want ErrPINFileMode", err)
		}
		if err := os.Chmod(c.PINFile, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadPINFile(c.PINFile); err != nil || string(got) != strings.TrimRight(string(pin), "\r\n") {
			t.Fatalf("ReadPINFile of a 0600 file: %v", err)
		}
	})
	t.Run("wrong PIN", func(t *testing.T) {
		c := cfg
		c.PINFile = ""
		c.PINEnv = "PORTCULLIS_TEST_PIN"
		t.Setenv("PORTCULLIS_TEST_PIN", "wrong-pin-value")
		_, err := Open(c)
		if !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("err = %v, want ErrWrongPIN", err)
		}
		if strings.Contains(err.Error(), "wrong-pin-value") {
			t.Fatalf("error leaks the PIN: %v", err)
		}
	})
	t.Run("SoftHSM never locks the PIN", func(t *testing.T) {
		// Real behaviour, recorded: SoftHSM 2.6 only raises
		// CKF_USER_PIN_COUNT_LOW; CKR_PIN_LOCKED (→ ErrPINLocked) comes from
		// hardware tokens and is mapped in login.
		c := cfg
		c.PINFile, c.PINEnv = "", "PORTCULLIS_TEST_PIN"
		t.Setenv("PORTCULLIS_TEST_PIN", "wrong-pin-value")
		for range 12 {
			if _, err := Open(c); !errors.Is(err, ErrWrongPIN) {
				t.Fatalf("err = %v, want ErrWrongPIN", err)
			}
		}
		k := open(t, cfg)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PIN from env", func(t *testing.T) {
		pin, err := os.ReadFile(cfg.PINFile)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.PINFile, c.PINEnv = "", "PORTCULLIS_TEST_PIN"
		t.Setenv("PORTCULLIS_TEST_PIN", string(pin))
		k := open(t, c)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLoginErrorMapping covers the PIN codes SoftHSM cannot produce.
func TestLoginErrorMapping(t *testing.T) {
	for code, want := range map[pkcs11.Error]error{
		pkcs11.CKR_PIN_INCORRECT: ErrWrongPIN,
		pkcs11.CKR_PIN_LOCKED:    ErrPINLocked,
		pkcs11.CKR_DEVICE_ERROR:  ErrUnavailable,
	} {
		if got := loginError(code); !errors.Is(got, want) {
			t.Errorf("%v → %v, want %v", code, got, want)
		}
	}
}

func TestSealUnseal(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "seal")
	k := open(t, cfg)
	ctx := ctxT(t)

	if _, err := k.Seal(ctx, "x", 1, []byte("y")); !errors.Is(err, ErrNoSealingKey) {
		t.Fatalf("Seal before EnsureKeys: %v, want ErrNoSealingKey", err)
	}
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	secret := randomPIN() // a fresh random value per run
	sealed, err := k.Seal(ctx, "helpdesk-token", 3, secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed form contains the plaintext")
	}
	got, err := k.Unseal(ctx, "helpdesk-token", 3, sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	again, _ := k.Seal(ctx, "helpdesk-token", 3, secret)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are identical: nonce reuse")
	}

	for name, tc := range map[string]struct {
		name    string
		version uint64
		sealed  func() []byte
		want    error
	}{
		"other name":    {"crm-token", 3, func() []byte { return sealed }, ErrOpen},
		"other version": {"helpdesk-token", 4, func() []byte { return sealed }, ErrOpen},
		"flipped bit": {"helpdesk-token", 3, func() []byte {
			b := bytes.Clone(sealed)
			b[len(b)-1] ^= 1
			return b
		}, ErrOpen},
		"unknown key version": {"helpdesk-token", 3, func() []byte {
			b := bytes.Clone(sealed)
			b[4] = 9
			return b
		}, ErrUnknownKeyVersion},
		"truncated": {"helpdesk-token", 3, func() []byte { return sealed[:10] }, ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			pt, err := k.Unseal(ctx, tc.name, tc.version, tc.sealed())
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Unseal = %q, %v; want %v", pt, err, tc.want)
			}
			if bytes.Contains([]byte(err.Error()), secret) {
				t.Fatal("error leaks the secret")
			}
			if !k.Available() {
				t.Fatal("a bad ciphertext made the keystore think the token is gone")
			}
		})
	}

	// Reopen: keys persist in the token.
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unseal(ctx, "helpdesk-token", 3, sealed); !errors.Is(err, ErrClosed) {
		t.Fatalf("Unseal after Close: %v, want ErrClosed", err)
	}
	k2 := open(t, cfg)
	got, err = k2.Unseal(ctx, "helpdesk-token", 3, sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal after reopen = %q, %v", got, err)
	}
}

func TestKeysStayInTheHSM(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "attrs")
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		seal, _, err := c.sealKey(p, sh, 0)
		if err != nil {
			return err
		}
		mac, err := c.macKey(p, sh, false)
		if err != nil {
			return err
		}
		for name, h := range map[string]pkcs11.ObjectHandle{"seal": seal, "mac": mac} {
			if _, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)) {
				t.Errorf("%s key: reading CKA_VALUE gave %v, want CKR_ATTRIBUTE_SENSITIVE", name, err)
			}
			attrs, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, nil),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_LOCAL, nil),
			})
			if err != nil {
				return err
			}
			for _, a := range attrs {
				if len(a.Value) != 1 || a.Value[0] != 1 {
					t.Errorf("%s key: attribute %#x = %v, want true", name, a.Type, a.Value)
				}
			}
			// WRAP_WITH_TRUSTED cannot be switched off again.
			if err := p.SetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, false)}); err == nil {
				t.Errorf("%s key: CKA_WRAP_WITH_TRUSTED could be reset", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRotateAndReseal(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "rotate")
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	old := randomPIN()
	s1, err := k.Seal(ctx, "a", 1, old)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Rotate(ctx)
	if err != nil || v != 2 {
		t.Fatalf("Rotate = %d, %v; want 2", v, err)
	}
	s2, err := k.Seal(ctx, "b", 1, []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if kv, _ := KeyVersionOf(s2); kv != 2 {
		t.Fatalf("new seal uses key v%d, want v2", kv)
	}
	if kv, _ := KeyVersionOf(s1); kv != 1 {
		t.Fatalf("old seal uses key v%d, want v1", kv)
	}
	if got, err := k.Unseal(ctx, "a", 1, s1); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("old ciphertext after rotation: %q, %v", got, err)
	}
	moved, changed, err := k.Reseal(ctx, "a", 1, s1)
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v", changed, err)
	}
	if kv, _ := KeyVersionOf(moved); kv != 2 {
		t.Fatalf("resealed under v%d, want v2", kv)
	}
	if got, err := k.Unseal(ctx, "a", 1, moved); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("resealed ciphertext: %q, %v", got, err)
	}
	if _, changed, err := k.Reseal(ctx, "a", 1, moved); err != nil || changed {
		t.Fatalf("Reseal of a current ciphertext: changed=%v, %v", changed, err)
	}
	if _, _, err := k.Reseal(ctx, "wrong-name", 1, s1); !errors.Is(err, ErrOpen) {
		t.Fatalf("Reseal under the wrong name: %v, want ErrOpen", err)
	}
	// A re-seal pass over a mixed set moves only the old ones.
	s3, _ := k.Seal(ctx, "c", 7, []byte("c"))
	moved2, err := k.ResealAll(ctx, []SealedSecret{{"a", 1, s1}, {"b", 1, s2}, {"c", 7, s3}})
	if err != nil || len(moved2) != 1 || moved2[0].Name != "a" || moved2[0].Version != 1 {
		t.Fatalf("ResealAll = %+v, %v; want only a", moved2, err)
	}
	if got, err := k.Unseal(ctx, "a", 1, moved2[0].Sealed); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("ResealAll output: %q, %v", got, err)
	}
	vs, err := k.KeyVersions(ctx)
	if err != nil || len(vs) != 2 || vs[0] != 1 || vs[1] != 2 {
		t.Fatalf("KeyVersions = %v, %v", vs, err)
	}

	// Retire v1 once everything moved: v1 ciphertexts stop opening.
	if err := k.DestroyKeyVersion(ctx, 2); err == nil {
		t.Fatal("destroyed the current key")
	}
	if err := k.DestroyKeyVersion(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unseal(ctx, "a", 1, s1); !errors.Is(err, ErrUnknownKeyVersion) {
		t.Fatalf("v1 ciphertext after retiring v1: %v", err)
	}
	if got, err := k.Unseal(ctx, "a", 1, moved); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("resealed ciphertext after retiring v1: %q, %v", got, err)
	}
	if vs, _ := k.KeyVersions(ctx); len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("KeyVersions after retiring = %v", vs)
	}
}

func TestSignerMACRandom(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "sign")
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}

	sg, err := k.Signer(ctx, SignerAudit)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := sg.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().Name != "P-256" {
		t.Fatalf("public key %T, want ECDSA P-256", sg.Public())
	}
	digest := sha256.Sum256([]byte("checkpoint 42"))
	sig, err := sg.Sign(nil, digest[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("signature does not verify")
	}
	other := sha256.Sum256([]byte("checkpoint 43"))
	if ecdsa.VerifyASN1(pub, other[:], sig) {
		t.Fatal("signature verifies for another digest")
	}
	same, err := k.Signer(ctx, SignerAudit)
	if err != nil || !same.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatalf("second Signer(audit) is another key: %v", err)
	}
	ca, _ := k.Signer(ctx, SignerClusterCA)
	if ca.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("two purposes share a key")
	}
	if _, err := k.Signer(ctx, "Bad Name"); err == nil {
		t.Fatal("Signer accepted an invalid purpose")
	}

	m1, err := k.MAC(ctx, []byte("4111 1111 1111 1111"))
	if err != nil || len(m1) != 32 {
		t.Fatalf("MAC = %x, %v", m1, err)
	}
	m2, _ := k.MAC(ctx, []byte("4111 1111 1111 1111"))
	m3, _ := k.MAC(ctx, []byte("4111 1111 1111 1112"))
	if !bytes.Equal(m1, m2) || bytes.Equal(m1, m3) {
		t.Fatal("MAC is not deterministic per input")
	}

	r1, err := k.Random(ctx, 32)
	r2, _ := k.Random(ctx, 32)
	if err != nil || len(r1) != 32 || bytes.Equal(r1, r2) {
		t.Fatalf("Random: %x %x %v", r1, r2, err)
	}
	if _, err := k.Random(ctx, -1); err == nil {
		t.Fatal("Random(-1) succeeded")
	}
}

func TestConcurrentUnseal(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "conc")
	cfg.MaxSessions = 4
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	secret := randomPIN()
	sealed, err := k.Seal(ctx, "s", 1, secret)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			for range 10 {
				pt, err := k.Unseal(ctx, "s", 1, sealed)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(pt, secret) {
					errs <- errors.New("wrong plaintext")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	k.mu.Lock()
	cn := k.cur
	k.mu.Unlock()
	if n := len(cn.sem); n > 4 || n == 0 {
		t.Fatalf("%d sessions opened, want 1..4", n)
	}
}

func TestDevToken(t *testing.T) {
	newSoftHSM(t) // restores SOFTHSM2_CONF afterwards
	dir := t.TempDir()
	if _, err := InitDevToken(dir); !errors.Is(err, ErrSoftHSMConf) {
		t.Fatalf("InitDevToken with SOFTHSM2_CONF elsewhere: %v, want ErrSoftHSMConf", err)
	}
	if _, err := os.Stat(DevTokenPaths(dir).UserPINFile); err == nil {
		t.Fatal("InitDevToken made a token although SOFTHSM2_CONF names another configuration")
	}
	t.Setenv(SoftHSMConfEnv, DevTokenPaths(dir).Conf)
	cfg, err := InitDevToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testLogger(t)
	p := DevTokenPaths(dir)
	for _, f := range []string{p.UserPINFile, p.SOPINFile, p.Conf} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	so, _ := os.ReadFile(p.SOPINFile)
	user, _ := os.ReadFile(p.UserPINFile)
	if len(so) < 32 || len(user) < 32 || bytes.Equal(so, user) {
		t.Fatal("dev PINs are short or equal")
	}
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	sealed, err := k.Seal(ctx, "dev", 1, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart reuses the token and its keys.
	cfg2, err := InitDevToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2 := open(t, cfg2)
	if pt, err := k2.Unseal(ctx, "dev", 1, sealed); err != nil || string(pt) != "v" {
		t.Fatalf("after restart: %q, %v", pt, err)
	}
}
