package appliance

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/hsm"
)

// testToken makes a SoftHSM2 token as an operator would before a production
// start, and returns its label and PIN file.
func testToken(t *testing.T) (label, pinFile string) {
	t.Helper()
	if hsm.DefaultModulePath() == "" {
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2")
	}
	dir := t.TempDir()
	t.Setenv(hsm.SoftHSMConfEnv, hsm.DevTokenPaths(dir).Conf)
	if _, err := hsm.InitDevToken(dir); err != nil {
		t.Fatalf("init token: %v", err)
	}
	return hsm.DevTokenLabel, hsm.DevTokenPaths(dir).UserPINFile
}

// TestSessionKeyComesFromTheHSM: a dev node's session key is the HSM's MAC
// of a fixed label, the same after a restart, and never written to a file;
// its token's PINs are random and only the owner can read them.
func TestSessionKeyComesFromTheHSM(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2")
	}
	t.Setenv("SOFTHSM2_CONF", "")
	dir := t.TempDir()
	a, stop := start(t, testConfig(t, dir))
	key1, prev, err := a.sessionKeys()
	if err != nil || len(key1) != 32 || len(prev) != 0 {
		t.Fatalf("session key: %d bytes, %d previous, %v", len(key1), len(prev), err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	p := hsm.DevTokenPaths(dir)
	for _, f := range []string{p.UserPINFile, p.SOPINFile, p.Conf} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("dev HSM file missing: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
	user, _ := os.ReadFile(p.UserPINFile)
	so, _ := os.ReadFile(p.SOPINFile)
	if len(bytes.TrimSpace(user)) < 16 || bytes.Equal(user, so) {
		t.Fatalf("dev PINs are not distinct random values (user %d bytes, so %d bytes)", len(user), len(so))
	}
	if _, err := os.Stat(filepath.Join(dir, "session-key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a session-key file was written; the key must come from the HSM (stat: %v)", err)
	}

	// An older data dir's session-key file still opens old handles.
	old := strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "session-key"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := start(t, testConfig(t, dir))
	key2, prev, err := b.sessionKeys()
	if err != nil || !bytes.Equal(key2, key1) {
		t.Fatalf("the session key changed across a restart on the same HSM token (%v)", err)
	}
	if len(prev) != 1 || prev[0][0] != 0xab {
		t.Fatalf("the legacy session key is not kept as a previous key: %d", len(prev))
	}
}

func TestHSMConfigErrors(t *testing.T) {
	label, pinFile := testToken(t)
	wrongPIN := filepath.Join(t.TempDir(), "wrong.pin")
	if err := os.WriteFile(wrongPIN, []byte("000000-not-the-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"missing module": {func(c *Config) {
			c.HSM = hsm.Config{TokenLabel: label, PINFile: pinFile, ModulePath: "/nonexistent/libpkcs11.so"}
		}, "module not found"},
		"unknown token": {func(c *Config) { c.HSM = hsm.Config{TokenLabel: "no-such-token", PINFile: pinFile} }, "token not found"},
		"wrong pin":     {func(c *Config) { c.HSM = hsm.Config{TokenLabel: label, PINFile: wrongPIN} }, "wrong PIN"},
		"no pin":        {func(c *Config) { c.HSM = hsm.Config{TokenLabel: label}; t.Setenv(HSMPINEnv, "") }, "no PIN"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			c.mut(&cfg)
			a, err := New(cfg)
			if err == nil {
				a.Close()
				t.Fatal("New accepted a bad HSM config")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "000000-not-the-pin") {
				t.Fatalf("error shows the PIN: %q", err)
			}
		})
	}
	// The PIN from the environment opens the token.
	pin, _ := os.ReadFile(pinFile)
	t.Setenv(HSMPINEnv, strings.TrimSpace(string(pin)))
	cfg := testConfig(t, t.TempDir())
	cfg.HSM = hsm.Config{TokenLabel: label}
	a, _ := start(t, cfg)
	if a.keystore == nil {
		t.Fatal("no keystore with the PIN in $" + HSMPINEnv)
	}
}
