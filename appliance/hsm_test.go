package appliance

import (
	"bytes"
	"context"
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
	if _, err := hsm.InitDevToken(dir); err != nil {
		t.Fatalf("init token: %v", err)
	}
	return hsm.DevTokenLabel, hsm.DevTokenPaths(dir).UserPINFile
}

// prodWithHSM makes c a production config naming a token, so that the
// configuration checks after the HSM's run.
func prodWithHSM(c *Config) {
	c.Dev, c.HSMToken, c.HSMPINFile = false, "portcullis-dev", "/nonexistent"
}

// TestDevNodeCreatesItsOwnHSM: the one-command dev start makes a SoftHSM2
// token under the data dir with random PINs only its owner can read, and a
// restart reuses it with the same session key.
func TestDevNodeCreatesItsOwnHSM(t *testing.T) {
	dir := t.TempDir()
	a, stop := start(t, testConfig(t, dir))
	key1, _, err := sessionKeys(context.Background(), a.hsm, filepath.Join(dir, "session-key"))
	if err != nil {
		t.Fatal(err)
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

	b, _ := start(t, testConfig(t, dir))
	key2, prev, err := sessionKeys(context.Background(), b.hsm, filepath.Join(dir, "session-key"))
	if err != nil || len(key2) != 32 || len(prev) != 0 {
		t.Fatalf("session key after restart: %d bytes, %d previous, err %v", len(key2), len(prev), err)
	}
	if !bytes.Equal(key2, key1) {
		t.Fatal("the session key changed across a restart on the same HSM token")
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
		"prod without hsm":   {func(c *Config) { c.Dev = false; c.TLSCertFile, c.TLSKeyFile = "x", "y" }, "an HSM is required"},
		"module without tok": {func(c *Config) { c.HSMModule = "/nonexistent.so" }, "need --hsm-token"},
		"missing module":     {func(c *Config) { c.HSMToken, c.HSMPINFile, c.HSMModule = label, pinFile, "/nonexistent/libpkcs11.so" }, "module not found"},
		"unknown token":      {func(c *Config) { c.HSMToken, c.HSMPINFile = "no-such-token", pinFile }, "token not found"},
		"wrong pin":          {func(c *Config) { c.HSMToken, c.HSMPINFile = label, wrongPIN }, "wrong PIN"},
		"no pin":             {func(c *Config) { c.HSMToken = label; t.Setenv(HSMPINEnv, "") }, "no PIN"},
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
}
