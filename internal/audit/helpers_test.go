package audit

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// One SoftHSM2 token for the whole test binary: SoftHSM reads its
// configuration once per process.
var (
	testKeystore *hsm.Keystore
	testHSMErr   error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "audit-hsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if hsm.DefaultModulePath() == "" {
			testHSMErr = fmt.Errorf("SoftHSM2 is not installed: apt-get install softhsm2")
			return m.Run()
		}
		os.Setenv(hsm.SoftHSMConfEnv, hsm.DevTokenPaths(dir).Conf)
		cfg, err := hsm.InitDevToken(dir)
		if err == nil {
			testKeystore, err = hsm.Open(cfg)
		}
		if err != nil {
			testHSMErr = err
			return m.Run()
		}
		defer testKeystore.Close()
		return m.Run()
	}()
	os.Exit(code)
}

// hsmSigner returns the token's ECDSA signer for purpose (generated inside
// the token on first use).
func hsmSigner(t testing.TB, purpose string) crypto.Signer {
	t.Helper()
	if testHSMErr != nil {
		t.Fatal(testHSMErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := testKeystore.Signer(ctx, purpose)
	if err != nil {
		t.Fatalf("HSM signer %s: %v", purpose, err)
	}
	return s
}

type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// decision i of a test trail: agents, tools and decisions vary with i.
func decision(i int) gateway.Decision {
	d := gateway.Decision{
		Time: t0.Add(time.Duration(i) * time.Second), Agent: fmt.Sprintf("agent-%d", i%3), Persona: "support-triage",
		KeyID: "k1", ClientIP: "127.0.0.1", Session: "s1", Revision: "2025-06-18", Method: "tools/call",
		Tool: []string{"helpdesk_get_ticket", "helpdesk_search_tickets"}[i%2], Upstream: "helpdesk",
		Decision: gateway.Allow, Latency: 1500 * time.Microsecond, UpstreamStatus: "ok",
		Verdicts: []gateway.Verdict{{Stage: "policy", Outcome: gateway.Allow}},
	}
	if i%5 == 4 {
		d.Decision, d.Reason, d.UpstreamStatus = gateway.Deny, "tool not in persona", ""
		d.Verdicts = append(d.Verdicts, gateway.Verdict{Stage: "policy", Outcome: gateway.Deny, Reason: "tool not in persona"})
	}
	if i%7 == 0 {
		d.DLPFindings = map[string]int{"email": 2, "credit-card": 1}
	}
	return d
}

func newLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	return l
}

// writeTrail writes n records to dir in small segments and closes the log.
func writeTrail(t testing.TB, dir string, signer crypto.Signer, n int) {
	t.Helper()
	l := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer, SegmentBytes: 16 << 10, BufferBytes: 4 << 10})
	for i := range n {
		if err := l.Write(decision(i)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i%50 == 49 {
			if err := l.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// rawSegment returns a segment's uncompressed bytes.
func rawSegment(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".zst") {
		return b
	}
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeRaw replaces a segment with raw bytes, compressing them as the log
// would for a .zst name: what an attacker who edits a segment does.
func writeRaw(t testing.TB, path string, raw []byte) {
	t.Helper()
	if strings.HasSuffix(path, ".zst") {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		raw = enc.EncodeAll(raw, nil)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// frames returns the [start, end) offsets of every record frame in raw.
func frames(t testing.TB, raw []byte) [][2]int {
	t.Helper()
	off := len(magic) + 4 + int(binary.BigEndian.Uint32(raw[len(magic):]))
	var out [][2]int
	for off < len(raw) {
		n := int(binary.BigEndian.Uint32(raw[off:]))
		end := off + 4 + n + hashSize
		out = append(out, [2]int{off, end})
		off = end
	}
	return out
}

func segPath(dir string, no uint64) string {
	p := filepath.Join(dir, segmentName(no))
	if _, err := os.Stat(p + ".zst"); err == nil {
		return p + ".zst"
	}
	return p
}
