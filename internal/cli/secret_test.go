package cli

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
)

// TestSecretTrustJoinKey runs the SO step of the key replication ceremony
// through the CLI between two dev-mode tokens, then completes the ceremony.
func TestSecretTrustJoinKey(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		if testing.Short() {
			t.Skip("SoftHSM2 not installed")
		}
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2 (listed in .ci/packages.d/hsm)")
	}
	t.Setenv("SOFTHSM2_CONF", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	existing, joining := t.TempDir(), t.TempDir()

	// Each node's dev token lives under its own data dir; SoftHSM reads its
	// configuration once per initialization, so the nodes take turns.
	withNode := func(dir string, f func(*hsm.Keystore)) {
		t.Helper()
		cfg, err := hsm.InitDevToken(dir)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := hsm.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ks.Close()
		f(ks)
	}
	var sealed, pub []byte
	withNode(existing, func(ks *hsm.Keystore) {
		if err := ks.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if sealed, err = ks.Seal(ctx, "helpdesk-token", 1, []byte("s3")); err != nil {
			t.Fatal(err)
		}
	})
	withNode(joining, func(ks *hsm.Keystore) {
		var err error
		if pub, err = ks.NewWrappingKeyPair(ctx); err != nil {
			t.Fatal(err)
		}
	})
	pubFile := filepath.Join(t.TempDir(), "join.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	if _, err := run("secret", "trust-join-key", "--data-dir", existing, "--pub", pubFile, "--fingerprint", "0000000000000000"); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong fingerprint accepted: %v", err)
	}
	out, err := run("secret", "trust-join-key", "--data-dir", existing, "--pub", pubFile, "--fingerprint", hsm.WrappingKeyFingerprint(pub))
	if err != nil || !strings.Contains(out, hsm.WrappingKeyFingerprint(pub)) {
		t.Fatalf("trust-join-key: %q, %v", out, err)
	}

	var wrapped []hsm.WrappedKey
	withNode(existing, func(ks *hsm.Keystore) {
		var err error
		if wrapped, err = ks.WrapSecretKeys(ctx, pub); err != nil {
			t.Fatal(err)
		}
	})
	withNode(joining, func(ks *hsm.Keystore) {
		if err := ks.UnwrapSecretKeys(ctx, wrapped); err != nil {
			t.Fatal(err)
		}
		pt, err := ks.Unseal(ctx, "helpdesk-token", 1, sealed)
		if err != nil || string(pt) != "s3" {
			t.Fatalf("joining node: %q, %v", pt, err)
		}
	})
}
