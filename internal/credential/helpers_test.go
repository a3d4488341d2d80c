package credential

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
)

// canary returns a fresh random secret value, so no committed file holds one
// and a leak is recognizable anywhere.
func canary(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "CANARY-" + hex.EncodeToString(b)
}

// logCapture is a logger that writes to t.Log and to a buffer the test
// searches for leaked secrets.
type logCapture struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newLogCapture(t testing.TB) (*slog.Logger, *logCapture) {
	c := &logCapture{t: t}
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug})), c
}

// assertAbsent fails if any value appears in the captured log.
func (l *logCapture) assertAbsent(t testing.TB, values ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		if strings.Contains(l.buf.String(), v) {
			t.Fatalf("a secret value appears in the log")
		}
	}
}

// store is the replicated-state side of secrets in tests: name → (version,
// ciphertext), sealed by a real SoftHSM keystore.
type store struct {
	ks *hsm.Keystore
	mu sync.Mutex
	m  map[string]storedSecret
}

type storedSecret struct {
	version uint64
	sealed  []byte
}

func (s *store) put(t testing.TB, name, value string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[name].version + 1
	sealed, err := s.ks.Seal(context.Background(), name, v, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	s.m[name] = storedSecret{v, sealed}
}

func (s *store) lookup(name string) (uint64, []byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[name]
	return e.version, e.sealed, ok
}

func (s *store) unsealer() KeystoreUnsealer {
	return KeystoreUnsealer{Keystore: s.ks, Lookup: s.lookup}
}

// newStore opens a fresh SoftHSM token for the test. module "" is SoftHSM
// itself; the outage test passes the fault shim.
func newStore(t testing.TB, module string) *store {
	t.Helper()
	soft := hsm.DefaultModulePath()
	if soft == "" {
		if testing.Short() {
			t.Skip("SoftHSM2 not installed")
		}
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2 (listed in .ci/packages.d/hsm)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", filepath.Join(dir, "tokens")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	so, user := []byte(canary(t)), []byte(canary(t))
	if err := hsm.InitToken(soft, "cred", so, user); err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(dir, "user.pin")
	if err := os.WriteFile(pinFile, user, 0o600); err != nil {
		t.Fatal(err)
	}
	if module == "" {
		module = soft
	}
	log, _ := newLogCapture(t)
	ks, err := hsm.Open(hsm.Config{ModulePath: module, TokenLabel: "cred", PINFile: pinFile, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ks.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	return &store{ks: ks, m: map[string]storedSecret{}}
}
