package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestTrailVerifies: N records over several segments with an HSM-signed
// checkpoint trail verify intact with the public key alone; closed
// segments are compressed; a restart continues the same chain.
func TestTrailVerifies(t *testing.T) {
	dir := t.TempDir()
	signer := hsmSigner(t, "audit-checkpoints")
	writeTrail(t, dir, signer, 600)

	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("600 records in 16 KiB segments made %d segments, want several", len(segs))
	}
	for _, s := range segs {
		if !s.Compressed {
			t.Fatalf("%s is not compressed after Close", s.Name())
		}
	}
	pub := signer.Public().(*ecdsa.PublicKey)
	keys, err := ReadPublicKeys(filepath.Join(dir, pubKeyFile))
	if err != nil || len(keys) != 1 || !keys[0].Equal(pub) {
		t.Fatalf("%s does not hold the HSM's audit key: %v", pubKeyFile, err)
	}
	r, err := Verify(dir, pub)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Records != 600 || r.Signed < len(segs) || r.Signed != r.Checkpoints {
		t.Fatalf("intact trail: ok=%v records=%d signed=%d/%d problems=%v", r.OK(), r.Records, r.Signed, r.Checkpoints, r.Problems)
	}

	// A restart continues the chain in a new segment.
	writeMore := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer})
	for i := 600; i < 650; i++ {
		if err := writeMore.Write(decision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeMore.Close(); err != nil {
		t.Fatal(err)
	}
	r, _ = Verify(dir, pub)
	if !r.OK() || r.Records != 650 || r.Segments != len(segs)+1 {
		t.Fatalf("after a restart: ok=%v records=%d segments=%d problems=%v", r.OK(), r.Records, r.Segments, r.Problems)
	}
	// A start and stop with no traffic leaves no empty segment behind.
	idle := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer})
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if r, _ = Verify(dir, pub); !r.OK() || r.Segments != len(segs)+1 {
		t.Fatalf("after an idle restart: segments=%d problems=%v", r.Segments, r.Problems)
	}
}

// TestRecordsCarryTheDecision: what a record holds, and what it must not.
func TestRecordsCarryTheDecision(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, hsmSigner(t, "audit-checkpoints"), 10)
	recs, err := Search(dir, Filter{})
	if err != nil || len(recs) != 10 {
		t.Fatalf("search: %d records, %v", len(recs), err)
	}
	r := recs[7]
	if r.Seq != 8 || r.Node != "n1" || r.Agent != "agent-1" || r.Persona != "support-triage" || r.Tool != "helpdesk_search_tickets" ||
		r.Decision != "allow" || r.KeyID != "k1" || r.ClientIP != "127.0.0.1" || r.Revision != "2025-06-18" ||
		r.Upstream != "helpdesk" || r.UpstreamStatus != "ok" || r.LatencyMs != 1.5 || len(r.Verdicts) != 1 ||
		r.DLPFindings["email"] != 2 || r.DLPFindings["credit-card"] != 1 || !r.Time.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("record 8: %+v", r)
	}
	if d := recs[4]; d.Decision != "deny" || d.Reason != "tool not in persona" || len(d.Verdicts) != 2 {
		t.Fatalf("record 5 (a denial): %+v", d)
	}
}

func TestSearch(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, nil, 300)
	got, err := Search(dir, Filter{Agent: "agent-1", Tool: "helpdesk_get_ticket", Decision: "allow",
		Since: t0.Add(100 * time.Second), Until: t0.Add(200 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := 100; i < 200; i++ {
		d := decision(i)
		if d.Agent == "agent-1" && d.Tool == "helpdesk_get_ticket" && d.Decision == "allow" {
			want = append(want, uint64(i+1))
		}
	}
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("search found %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Seq != want[i] {
			t.Fatalf("result %d is seq %d, want %d (newest last)", i, r.Seq, want[i])
		}
	}
	last, err := Search(dir, Filter{Persona: "support-triage", Decision: "deny", Limit: 3})
	if err != nil || len(last) != 3 || last[2].Seq != 300 || last[0].Seq != 290 {
		t.Fatalf("the newest 3 denials: %+v %v", last, err)
	}
	if none, err := Search(dir, Filter{Agent: "nobody"}); err != nil || len(none) != 0 {
		t.Fatalf("an unknown agent matched %d records (%v)", len(none), err)
	}
}

// TestUnsignedTrail: without an HSM the trail is still chained and
// checkpointed, and verify says the checkpoints are unsigned.
func TestUnsignedTrail(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, nil, 100)
	if _, err := os.Stat(filepath.Join(dir, pubKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a public key file exists without a signer: %v", err)
	}
	r, err := Verify(dir)
	if err != nil || !r.OK() || r.Records != 100 || r.Signed != 0 || r.Checkpoints == 0 {
		t.Fatalf("unsigned trail: %+v %v", r, err)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "unsigned") {
		t.Fatalf("verify does not say the checkpoints are unsigned: %q", r.Notes)
	}
	// The same trail checked against a key: unsigned checkpoints are a
	// problem then (someone could have stripped the signatures).
	r, _ = Verify(dir, hsmSigner(t, "audit-checkpoints").Public().(*ecdsa.PublicKey))
	if r.OK() || !strings.Contains(r.Problems[0].String(), "unsigned") {
		t.Fatalf("unsigned checkpoints verified against a key: %v", r.Problems)
	}
}

// TestGroupCommit: with Run going, a record reaches the disk without
// Close or Flush, and a crash (no Close) followed by a restart keeps every
// flushed record and verifies.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	signer := hsmSigner(t, "audit-checkpoints")
	l := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer, FlushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	for i := range 5 {
		if err := l.Write(decision(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := Search(dir, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records never reached the segment without a Flush: %d of 5", len(recs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Crash: the open segment stays as it is, with a torn record after
	// the flushed ones (a write cut short).
	active := filepath.Join(dir, segmentName(l.segNo))
	l.f.Close()
	l.ckpt.Close()
	f, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 1, 0, '{', '"', 's'})
	f.Close()
	if r, _ := Verify(dir); r.OK() {
		t.Fatal("verify passed a segment with a torn record at its end")
	}

	l2 := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer})
	for i := 5; i < 8; i++ {
		if err := l2.Write(decision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(dir, signer.Public().(*ecdsa.PublicKey))
	if err != nil || !r.OK() || r.Records != 8 {
		t.Fatalf("after a crash and restart: %+v %v", r, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{}, {Dir: t.TempDir(), FlushInterval: -1}} {
		if _, err := New(c); err == nil {
			t.Fatalf("New(%+v) accepted a bad config", c)
		}
	}
	// A file where the directory should be.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := New(Config{Dir: f}); err == nil {
		t.Fatal("New accepted a file as its directory")
	}
	if _, err := Verify(f); err == nil {
		t.Fatal("Verify accepted a file as its directory")
	}
}

func TestRecordJSONIsStable(t *testing.T) {
	dec0 := decision(0)
	r := recordOf(&dec0, "n1")
	r.Seq = 1
	js, _ := json.Marshal(&r)
	if !strings.HasPrefix(string(js), `{"seq":1,"time":"2026-12-04T10:00:00Z","node":"n1","agent":"agent-0"`) {
		t.Fatalf("record encoding changed: %s", js)
	}
	if seq, err := recordSeq(js); err != nil || seq != 1 {
		t.Fatalf("recordSeq: %d %v", seq, err)
	}
}

// flakySigner is the real HSM signer with an outage: while down, Sign
// fails as the keystore does when the token is away.
type flakySigner struct {
	crypto.Signer
	down atomic.Bool
}

func (s *flakySigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if s.down.Load() {
		return nil, errors.New("hsm: token unavailable")
	}
	return s.Signer.Sign(r, d, o)
}

// TestHSMOutageAtSegmentClose: a segment closed while the HSM is away gets
// its final checkpoint once the HSM is back (Run retries it), and one the
// node could not sign before it stopped is signed at the next start.
func TestHSMOutageAtSegmentClose(t *testing.T) {
	fs := &flakySigner{Signer: hsmSigner(t, "audit-checkpoints")}
	pub := fs.Public().(*ecdsa.PublicKey)
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	l := newLog(t, Config{Dir: dir, Node: "n1", Signer: fs, SegmentBytes: 4 << 10, BufferBytes: 1 << 10, CheckpointInterval: 20 * time.Millisecond, FlushInterval: 10 * time.Millisecond, Metrics: reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	fs.down.Store(true)
	for i := range 40 { // several segments close while the HSM is away
		if err := l.Write(decision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if r, _ := Verify(dir, pub); r.OK() {
		t.Fatal("verify passed closed segments that have no final checkpoint")
	}
	if got := metricValue(t, l.m.records); got != 40 {
		t.Fatalf("portcullis_audit_records_total = %v, want 40", got)
	}
	if owed := metricValue(t, l.m.owed); owed < 1 || metricValue(t, l.m.errors.WithLabelValues("checkpoint")) < owed {
		t.Fatalf("during the outage: portcullis_audit_unsigned_segments = %v, checkpoint errors %v", owed, metricValue(t, l.m.errors.WithLabelValues("checkpoint")))
	}
	fs.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := Verify(dir, pub)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final checkpoints owed during the outage were never signed: %v", r.Problems)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if owed := metricValue(t, l.m.owed); owed != 0 {
		t.Fatalf("after the outage: portcullis_audit_unsigned_segments = %v", owed)
	}

	// The HSM goes away again and the node stops: Close says what it
	// could not sign, and the next start signs it.
	fs.down.Store(true)
	if err := l.Write(decision(40)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "could not be signed") {
		t.Fatalf("Close with the HSM away: %v", err)
	}
	fs.down.Store(false)
	l2 := newLog(t, Config{Dir: dir, Node: "n1", Signer: fs})
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if r, _ := Verify(dir, pub); !r.OK() || r.Records != 41 {
		t.Fatalf("after a restart with the HSM back: %d records, %v", r.Records, r.Problems)
	}
}

// TestInterruptedCompression: a crash between writing segment.log.zst and
// removing segment.log (or mid-way through the temp file) leaves a trail
// the next start tidies up, and that verifies.
func TestInterruptedCompression(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	dir := t.TempDir()
	writeTrail(t, dir, signer, 200)
	zst := segPath(dir, 2)
	raw := strings.TrimSuffix(zst, ".zst")
	writeRaw(t, raw, rawSegment(t, zst))
	os.WriteFile(filepath.Join(dir, segmentName(3)+".zst.tmp"), []byte("half a compressed file"), 0o600)
	// A damaged copy of the compressed file must not matter: the raw one
	// is the source.
	os.WriteFile(zst, []byte("garbage"), 0o600)

	l := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(raw); !os.IsNotExist(err) {
		t.Fatalf("the raw copy of a compressed segment is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(3)+".zst.tmp")); !os.IsNotExist(err) {
		t.Fatalf("a compression temp file is still there: %v", err)
	}
	if r, _ := Verify(dir, signer.Public().(*ecdsa.PublicKey)); !r.OK() || r.Records != 200 {
		t.Fatalf("after tidying: %d records, %v", r.Records, r.Problems)
	}
}

// TestSegmentAge: a segment older than SegmentAge is closed at the next
// flush that has records.
func TestSegmentAge(t *testing.T) {
	dir := t.TempDir()
	l := newLog(t, Config{Dir: dir, Node: "n1", SegmentAge: time.Nanosecond})
	for i := range 3 {
		l.Write(decision(i))
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r, _ := Verify(dir)
	if !r.OK() || r.Segments != 3 || r.Records != 3 {
		t.Fatalf("three flushes of an always-old segment: %d segments, %d records, %v", r.Segments, r.Records, r.Problems)
	}
}

// metricValue reads a counter's or gauge's value.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
