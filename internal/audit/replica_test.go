package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// cluster stands in for raft between one node's Replicator and another
// node's Replicas: a committed shipment is applied (twice: raft replays
// its log after a restart, and the receiver must not duplicate records),
// and the anchor moves as state.Store moves it. The cluster itself is
// exercised for real in qa/cluster.
type cluster struct {
	t      testing.TB
	mu     sync.Mutex
	rs     *Replicas
	fail   error         // Propose fails with it while set
	hold   chan struct{} // Propose waits on it while set
	anchor state.AuditAnchor
	n      int
}

func (c *cluster) propose(ctx context.Context, s *Shipment) error {
	c.mu.Lock()
	fail, hold := c.fail, c.hold
	c.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	for range 2 {
		if err := c.rs.Apply("n1", s.Payload); err != nil {
			c.t.Errorf("replica apply: %v", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if s.LastSeq > c.anchor.Seq {
		cp := c.anchor.Checkpoint
		if s.Checkpoint != nil {
			cp = s.Checkpoint
		}
		c.anchor = state.AuditAnchor{Node: "n1", AuditHead: state.AuditHead{Segment: s.Segment, Records: s.Records, Seq: s.LastSeq, Hash: s.Head, Checkpoint: cp}, Time: time.Now(), Index: uint64(c.n)}
	}
	return nil
}

func newReplicated(t *testing.T, cfg Config) (*Log, *Replicator, *cluster, string) {
	t.Helper()
	rdir := filepath.Join(t.TempDir(), "replicas")
	rs, err := OpenReplicas(rdir, "n2", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	c := &cluster{t: t, rs: rs}
	l := newLog(t, cfg)
	r, err := NewReplicator(l, ReplicatorConfig{Propose: c.propose, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return l, r, c, filepath.Join(rdir, "n1")
}

func runReplicator(t *testing.T, r *Replicator) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

// TestReplicaIsAVerifiableCopy: what another node writes from the batches
// is the node's own trail byte for byte, with its signed checkpoints and
// public key, and verify passes on it; replayed batches add nothing.
func TestReplicaIsAVerifiableCopy(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	dir := t.TempDir()
	l, r, c, rdir := newReplicated(t, Config{Dir: dir, Node: "n1", Signer: signer, SegmentBytes: 16 << 10, BufferBytes: 4 << 10})
	runReplicator(t, r)
	for i := range 300 {
		if err := l.Write(decision(i)); err != nil {
			t.Fatal(err)
		}
		if i%40 == 39 {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := l.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Records != 300 || st.Queued != 0 {
		t.Fatalf("replicator shipped %d records, %d still queued; want 300, 0", st.Records, st.Queued)
	}
	// The last segment's final checkpoint was written by Close, after the
	// last records: the next start ships it.
	l2 := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer})
	r2, err := NewReplicator(l2, ReplicatorConfig{Propose: r.cfg.Propose})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Write(decision(300)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _, _, _ := r2.next(); s != nil {
		t.Fatal("a drained replicator still has a shipment")
	}
	l2.Close()
	// Closing waits for the replica's closed segments to be compressed
	// (in the background), so the files compared below stay put.
	if err := c.rs.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err := Verify(rdir, signer.Public().(*ecdsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Records != 301 || rep.Signed == 0 {
		t.Fatalf("replica verify: %d records, %d signed, problems %v", rep.Records, rep.Signed, rep.Problems)
	}
	own, _ := listSegments(dir)
	theirs, _ := listSegments(rdir)
	if len(own) < 4 || len(theirs) != len(own) {
		t.Fatalf("the replica has %d segments, the node %d (want >= 4, equal)", len(theirs), len(own))
	}
	for i := range own[:len(own)-1] {
		if !bytes.Equal(rawSegment(t, own[i].Path), rawSegment(t, theirs[i].Path)) {
			t.Fatalf("%s of the replica differs from the node's", own[i].Name())
		}
	}
}

// TestStrictFailsClosed: in strict mode a record is acknowledged only once
// committed; while nothing can commit, writes fail with ErrNotDurable and
// Down says why; once commits work again the queued records go out and
// Down clears.
func TestStrictFailsClosed(t *testing.T) {
	dir := t.TempDir()
	l, r, c, rdir := newReplicated(t, Config{Dir: dir, Node: "n1", Strict: true, StrictTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	runReplicator(t, r)
	sink := l.StrictSink()

	// Held: the write waits for the commit.
	c.mu.Lock()
	c.hold = make(chan struct{})
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- sink.WriteDurable(context.Background(), decision(0)) }()
	select {
	case err := <-done:
		t.Fatalf("WriteDurable returned (%v) before the commit", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.mu.Lock()
	close(c.hold)
	c.hold = nil
	c.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("WriteDurable after the commit: %v", err)
	}

	// No quorum: refused, and the trail says it is down.
	c.mu.Lock()
	c.fail = errors.New("cluster: no leader")
	c.mu.Unlock()
	err := sink.WriteDurable(context.Background(), decision(1))
	if !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("WriteDurable without quorum: %v, want ErrNotDurable naming the cause", err)
	}
	if err := l.Down(); err == nil || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("Down without quorum: %v", err)
	}
	// Quorum back: the refused call's record goes out too, Down clears.
	c.mu.Lock()
	c.fail = nil
	c.mu.Unlock()
	if err := sink.WriteDurable(context.Background(), decision(2)); err != nil {
		t.Fatalf("WriteDurable after recovery: %v", err)
	}
	if err := l.Down(); err != nil {
		t.Fatalf("Down after recovery: %v", err)
	}
	if got := l.Committed(); got != 3 {
		t.Fatalf("committed through seq %d, want 3", got)
	}
	recs, err := Search(rdir, Filter{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("the replica holds %d records (%v), want 3", len(recs), err)
	}
}

// TestAnchorsDetectDeletedNewestSegments is the hole the local trail
// cannot close: the newest segments deleted together with their
// checkpoints verify as a shorter intact trail; against the chain head
// raft anchored, verify names what is missing.
func TestAnchorsDetectDeletedNewestSegments(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	pub := signer.Public().(*ecdsa.PublicKey)
	dir := t.TempDir()
	l, r, c, _ := newReplicated(t, Config{Dir: dir, Node: "n1", Signer: signer, SegmentBytes: 16 << 10, BufferBytes: 4 << 10})
	runReplicator(t, r)
	for i := range 300 {
		if err := l.Write(decision(i)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			l.Flush()
			l.Checkpoint()
		}
	}
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	anchors := []state.AuditAnchor{c.anchor}
	c.mu.Unlock()
	if anchors[0].Seq != 300 || len(anchors[0].Checkpoint) == 0 {
		t.Fatalf("anchor %+v: want seq 300 with a checkpoint", anchors[0])
	}

	rep, err := VerifyAnchored(dir, anchors, "", pub)
	if err != nil || !rep.OK() {
		t.Fatalf("intact trail against its anchor: %v %v", err, rep.Problems)
	}

	// Delete the two newest segments and every checkpoint line about them.
	segs, _ := listSegments(dir)
	cut := segs[len(segs)-2].No
	for _, s := range segs[len(segs)-2:] {
		os.Remove(s.Path)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ckptFile))
	cps, _, _ := parseCheckpoints(data)
	var keep []byte
	lines := bytes.Split(data, []byte("\n"))
	for _, cl := range cps {
		if cl.Segment < cut {
			keep = append(append(keep, lines[cl.Line-1]...), '\n')
		}
	}
	os.WriteFile(filepath.Join(dir, ckptFile), keep, 0o600)

	rep, err = Verify(dir, pub)
	if err != nil || !rep.OK() {
		t.Fatalf("the local trail alone should not see this deletion (that is the hole): %v %v", err, rep.Problems)
	}
	rep, err = VerifyAnchored(dir, anchors, "", pub)
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, p := range rep.Problems {
		all += p.String() + "\n"
	}
	last := segmentName(segs[len(segs)-1].No)
	if rep.OK() || !strings.Contains(all, last+": missing") || !strings.Contains(all, "checkpoints were removed") {
		t.Fatalf("verify against the anchor does not name the deleted %s and checkpoints:\n%s", last, all)
	}

	// A changed record before the anchored head is named too.
	dir2 := t.TempDir()
	writeTrail(t, dir2, signer, 10)
	rep, _ = VerifyAnchored(dir2, anchors, "n1", pub)
	if rep.OK() {
		t.Fatal("another trail verified against this node's anchor")
	}
}

// TestCatchUpAfterCrash: records fsynced locally whose raft commit never
// happened (the node died in between) are shipped at the next start, from
// the local segments, before anything new.
func TestCatchUpAfterCrash(t *testing.T) {
	dir := t.TempDir()
	l, r, c, rdir := newReplicated(t, Config{Dir: dir, Node: "n1", SegmentBytes: 8 << 10, BufferBytes: 2 << 10})
	runReplicator(t, r)
	for i := range 50 {
		l.Write(decision(i))
	}
	l.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.fail = errors.New("no quorum")
	anchored := c.anchor.Seq
	c.mu.Unlock()
	for i := 50; i < 120; i++ {
		l.Write(decision(i))
	}
	l.Close() // as good as a crash after the fsyncs: nothing reached raft
	if anchored != 50 {
		t.Fatalf("anchored %d, want 50", anchored)
	}

	c.mu.Lock()
	c.fail = nil
	c.mu.Unlock()
	l2 := newLog(t, Config{Dir: dir, Node: "n1"})
	r2, err := NewReplicator(l2, ReplicatorConfig{Propose: c.propose, Logger: testLogger(t),
		Anchored: func(context.Context) (uint64, error) { return anchored, nil }})
	if err != nil {
		t.Fatal(err)
	}
	runReplicator(t, r2)
	l2.Write(decision(120))
	l2.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for l2.Committed() < 121 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l2.Close()
	recs, err := Search(rdir, Filter{})
	if err != nil || len(recs) != 121 {
		t.Fatalf("the replica holds %d records (%v), want 121", len(recs), err)
	}
	rep, err := Verify(rdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		// The last segment's final checkpoint is shipped by the next start.
		if !strings.Contains(p.Msg, "final checkpoint") {
			t.Errorf("replica after catch-up: %s", p)
		}
	}
}

// TestDecodeBatchRefusesDamage: a batch whose records do not chain, whose
// seqs skip, or that is cut short is refused with an error saying so.
func TestDecodeBatchRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	l, r, _, _ := newReplicated(t, Config{Dir: dir, Node: "n1"})
	for i := range 5 {
		l.Write(decision(i))
	}
	l.Flush()
	s, _, _, err := r.next()
	if err != nil || s == nil {
		t.Fatal(err)
	}
	if b, err := DecodeBatch(s.Payload); err != nil || b.Records() != 5 || b.HeadHex() != s.Head {
		t.Fatalf("decode a good batch: %v", err)
	}
	p := s.Batch.Parts[0]
	flip := p
	flip.Frames = bytes.Clone(p.Frames)
	flip.Frames[10] ^= 1
	cut := p
	cut.Frames = p.Frames[:len(p.Frames)-5]
	skip := p
	skip.FirstSeq = 2
	for name, c := range map[string]struct {
		b    Batch
		want string
	}{
		"changed byte": {Batch{Parts: []Part{flip}}, "chain hash mismatch"},
		"cut short":    {Batch{Parts: []Part{cut}}, "truncated"},
		"seq skips":    {Batch{Parts: []Part{skip}}, "does not match the part"},
		"no records":   {Batch{}, "no records and no checkpoints"},
	} {
		_, err := DecodeBatch(mustEncode(t, &c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	if _, err := DecodeBatch([]byte("not zstd")); err == nil {
		t.Error("garbage decoded")
	}
}

func mustEncode(t *testing.T, b *Batch) []byte {
	p, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
