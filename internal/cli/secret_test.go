package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/credential"
	"github.com/portcullis-gw/portcullis/internal/state"
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
		t.Setenv(hsm.SoftHSMConfEnv, hsm.DevTokenPaths(dir).Conf)
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

// directCluster applies commands to the state store as a single raft node
// would, without the network.
type directCluster struct {
	store *state.Store
	index atomic.Uint64
}

func (d *directCluster) Apply(_ context.Context, cmd []byte) (any, error) {
	res := d.store.Apply(&raft.Log{Type: raft.LogCommand, Index: d.index.Add(1), Data: cmd})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

func (d *directCluster) Status() cluster.Status { return cluster.Status{State: "Leader"} }

// TestSecretPutListDelete drives `secret put/list/delete` against the real
// admin API with the secrets routes, a SoftHSM keystore and the state store,
// then injects the stored secret into an upstream call.
func TestSecretPutListDelete(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		if testing.Short() {
			t.Skip("SoftHSM2 not installed")
		}
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2 (listed in .ci/packages.d/hsm)")
	}
	t.Setenv("SOFTHSM2_CONF", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	t.Setenv(hsm.SoftHSMConfEnv, hsm.DevTokenPaths(dir).Conf)
	hcfg, err := hsm.InitDevToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := hsm.Open(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if err := ks.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	store := state.NewStore(nil)
	secrets := credential.SecretsHandler(credential.SecretsConfig{Keystore: ks, Current: store.Current, Cluster: &directCluster{store: store}})
	token := "admin-token-" + strings.Repeat("x", 20)
	a, err := api.New(api.Config{Store: store, Cluster: &directCluster{store: store}, AdminToken: token, Routes: []api.Route{
		{Method: http.MethodGet, Path: "/secrets", Handler: secrets},
		{Method: http.MethodPut, Path: "/secrets/:name", Handler: secrets},
		{Method: http.MethodDelete, Path: "/secrets/:name", Handler: secrets},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(append(args, "--server", srv.URL, "--token-file", tokenFile))
		err := root.Execute()
		return out.String(), err
	}

	canary := hex.EncodeToString(must(ks.Random(ctx, 16)))
	valueFile := filepath.Join(dir, "value")
	if err := os.WriteFile(valueFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run("", "secret", "put", "helpdesk-token", "--from-file", valueFile)
	if err != nil || !strings.Contains(out, "version 1") {
		t.Fatalf("put: %q, %v", out, err)
	}
	if sec := store.Current().Secrets["helpdesk-token"]; sec == nil || bytes.Contains(sec.Sealed, []byte(canary)) {
		t.Fatal("state holds no ciphertext, or the plaintext")
	}
	out, err = run("", "secret", "list")
	if err != nil || !strings.Contains(out, "helpdesk-token") || strings.Contains(out, canary) {
		t.Fatalf("list: %q, %v", out, err)
	}
	if out, err := run("", "secret", "put", "Bad Name", "--from-file", valueFile); err == nil {
		t.Fatalf("put accepted a bad name: %q", out)
	}

	// The stored secret reaches an upstream, without its trailing newline.
	var got string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	defer up.Close()
	tr, err := credential.New(credential.Config{Upstream: "helpdesk", Spec: credential.Spec{Secret: "helpdesk-token"},
		Unsealer: credential.KeystoreUnsealer{Keystore: ks, Lookup: credential.StateLookup(store.Current)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	call := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, up.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	call()
	if got != "Bearer "+canary {
		t.Fatal("upstream did not receive the stored secret")
	}

	// A new version from stdin takes effect on the next call.
	out, err = run("rotated-"+canary, "secret", "put", "helpdesk-token", "--from-file", "-")
	if err != nil || !strings.Contains(out, "version 2") {
		t.Fatalf("put from stdin: %q, %v", out, err)
	}
	call()
	if got != "Bearer rotated-"+canary {
		t.Fatal("upstream did not receive the new version")
	}

	if out, err := run("", "secret", "delete", "helpdesk-token"); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %q, %v", out, err)
	}
	if out, err := run("", "secret", "delete", "helpdesk-token"); err == nil {
		t.Fatalf("second delete succeeded: %q", out)
	}
	out, err = run("", "secret", "list")
	if err != nil || strings.Contains(out, "helpdesk-token") {
		t.Fatalf("list after delete: %q, %v", out, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
