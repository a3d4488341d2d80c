package hsm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The trust step of the join ceremony must run as the SO in a process with no
// user login on the token, as the CLI does; tests re-run this binary for it.
const childEnv = "PORTCULLIS_HSM_TEST_CHILD"

type trustJob struct {
	Cfg       Config
	SOPINFile string
	PubDER    []byte
}

func TestMain(m *testing.M) {
	if job := os.Getenv(childEnv); job != "" {
		var j trustJob
		if err := json.Unmarshal([]byte(job), &j); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		so, err := readSecretSource(j.SOPINFile, "")
		if err == nil {
			err = TrustWrappingKey(j.Cfg, so, j.PubDER)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tlog routes slog records to t.Log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// softhsm is a SoftHSM2 token directory of one test.
type softhsm struct {
	dir, conf, module string
}

// newSoftHSM makes an empty SoftHSM token directory and points this process
// at it. Tests using it must not run in parallel (SOFTHSM2_CONF is
// process-wide) and must close every keystore before they end.
func newSoftHSM(t testing.TB) *softhsm {
	t.Helper()
	module := DefaultModulePath()
	if module == "" {
		if testing.Short() {
			t.Skip("SoftHSM2 not installed")
		}
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2 (listed in .ci/packages.d/hsm)")
	}
	dir := t.TempDir()
	s := &softhsm{dir: dir, conf: filepath.Join(dir, "softhsm2.conf"), module: module}
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", filepath.Join(dir, "tokens"))
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", s.conf)
	return s
}

// token initializes a token with random PINs and returns a Config for it
// and the SO PIN file.
func (s *softhsm) token(t testing.TB, label string) (Config, string) {
	t.Helper()
	so, user := randomPIN(), randomPIN()
	soFile := filepath.Join(s.dir, label+".so.pin")
	userFile := filepath.Join(s.dir, label+".user.pin")
	for f, pin := range map[string][]byte{soFile: so, userFile: user} {
		if err := os.WriteFile(f, pin, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := InitToken(s.module, label, so, user); err != nil {
		t.Fatalf("InitToken(%s): %v", label, err)
	}
	return Config{ModulePath: s.module, TokenLabel: label, PINFile: userFile, Logger: testLogger(t)}, soFile
}

func open(t testing.TB, cfg Config) *Keystore {
	t.Helper()
	k, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.TokenLabel, err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
