package hsm

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// faultShim builds testdata/faultshim.c: a PKCS#11 module in front of SoftHSM
// that answers CKR_DEVICE_REMOVED while a flag file exists, so a test can pull
// the HSM away under a running keystore and put it back.
type faultShim struct {
	module, flag string
}

func newFaultShim(t *testing.T, s *softhsm) *faultShim {
	t.Helper()
	inc, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("locate pkcs11 headers: %v", err)
	}
	f := &faultShim{module: filepath.Join(s.dir, "faultshim.so"), flag: filepath.Join(s.dir, "hsm-down")}
	out, err := exec.Command("gcc", "-shared", "-fPIC", "-O1", "-I", strings.TrimSpace(string(inc)),
		"-o", f.module, "testdata/faultshim.c", "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("build fault shim (needs gcc, as cgo does): %v\n%s", err, out)
	}
	t.Setenv("FAULT_SHIM_TARGET", s.module)
	t.Setenv("FAULT_SHIM_DOWN", f.flag)
	return f
}

func (f *faultShim) down(t *testing.T) {
	if err := os.WriteFile(f.flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *faultShim) up(t *testing.T) {
	if err := os.Remove(f.flag); err != nil {
		t.Fatal(err)
	}
}

// TestUnavailableAndRecovery pulls the HSM away under a running keystore:
// calls fail closed with ErrUnavailable, and the keystore comes back by
// itself when the HSM returns.
func TestUnavailableAndRecovery(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "flaky")
	f := newFaultShim(t, s)
	cfg.ModulePath = f.module

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
	sg, err := k.Signer(ctx, SignerGatewayTokens)
	if err != nil {
		t.Fatal(err)
	}

	f.down(t)
	for i := 0; i < 5; i++ {
		pt, err := k.Unseal(ctx, "s", 1, sealed)
		if !errors.Is(err, ErrUnavailable) || pt != nil {
			t.Fatalf("Unseal with the HSM gone: %q, %v; want ErrUnavailable", pt, err)
		}
	}
	if _, err := k.Seal(ctx, "s", 2, secret); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Seal with the HSM gone: %v", err)
	}
	if _, err := k.MAC(ctx, []byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("MAC with the HSM gone: %v", err)
	}
	if _, err := sg.Sign(nil, make([]byte, 32), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sign with the HSM gone: %v", err)
	}
	if k.Available() {
		t.Fatal("Available() with the HSM gone")
	}
	time.Sleep(700 * time.Millisecond) // several failed reconnect attempts

	f.up(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		pt, err := k.Unseal(ctx, "s", 1, sealed)
		if err == nil {
			if !bytes.Equal(pt, secret) {
				t.Fatal("wrong plaintext after recovery")
			}
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("while recovering: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("keystore did not recover within 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !k.Available() {
		t.Fatal("Available() false after recovery")
	}
	if _, err := sg.Sign(nil, make([]byte, 32), nil); err != nil {
		t.Fatalf("Sign after recovery: %v", err)
	}
}

// TestOpenLockedPIN: a token that has locked its PIN gets a clear error.
func TestOpenLockedPIN(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "locked")
	f := newFaultShim(t, s)
	cfg.ModulePath = f.module
	flag := filepath.Join(s.dir, "pin-locked")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAULT_SHIM_PIN_LOCKED", flag)
	_, err := Open(cfg)
	if !errors.Is(err, ErrPINLocked) {
		t.Fatalf("Open = %v, want ErrPINLocked", err)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	k := open(t, cfg)
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUnavailableOnFirstUseOfAKey: the HSM goes away before any call has
// used the current sealing key; looking that key up (through crypto11) must
// fail closed with ErrUnavailable, not a refused request, so the keystore
// reconnects and Seal works again once the HSM is back.
func TestUnavailableOnFirstUseOfAKey(t *testing.T) {
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "flaky2")
	f := newFaultShim(t, s)
	cfg.ModulePath = f.module
	k := open(t, cfg)
	ctx := ctxT(t)
	if err := k.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	f.down(t)
	if _, err := k.Seal(ctx, "s", 1, []byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("first Seal under a new key with the HSM gone: %v, want ErrUnavailable", err)
	}
	if k.Available() {
		t.Fatal("Available() with the HSM gone")
	}
	f.up(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		sealed, err := k.Seal(ctx, "s", 1, []byte("x"))
		if err == nil {
			if pt, err := k.Unseal(ctx, "s", 1, sealed); err != nil || string(pt) != "x" {
				t.Fatalf("Unseal after recovery: %q, %v", pt, err)
			}
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("while recovering: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("keystore did not recover within 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
