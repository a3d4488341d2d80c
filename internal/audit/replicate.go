package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Shipment is one batch ready to be proposed: the encoded Payload and what
// the replicated state records about it (the chain head after it).
type Shipment struct {
	Batch    *Batch
	Payload  []byte // Batch.Encode()
	FirstSeq uint64
	LastSeq  uint64
	Segment  uint64 // of the last record
	Records  int    // the last record's number within Segment
	Head     string // hex chain hash after the last record
	// Checkpoint is the newest checkpoint in the batch (its JSON line), or
	// nil.
	Checkpoint json.RawMessage
}

// ReplicatorConfig configures a Replicator.
type ReplicatorConfig struct {
	// Propose commits one shipment through raft and returns once it is
	// committed (applied on a quorum's logs). It is called from Run's
	// goroutine, one shipment at a time, in chain order; it may block up
	// to ctx's deadline. An error means the shipment may or may not be
	// committed: it is proposed again (merged with what followed), and the
	// receiving side skips records it already holds. Required.
	Propose func(ctx context.Context, s *Shipment) error
	// Timeout bounds one proposal (default: the log's StrictTimeout).
	Timeout time.Duration
	// MaxBytes bounds the records of one shipment before compression
	// (default 4 MiB).
	MaxBytes int
	// Anchored, when set, is called once at the start of Run and returns
	// the seq raft anchored for this node (0: none), once this node's
	// replicated state is complete. Records the log made durable before
	// this start but raft never committed (a crash between the fsync and
	// the commit) are then shipped first, from the local segments (at most
	// catchUpBytes of them). Nothing is proposed before it returns.
	Anchored func(ctx context.Context) (uint64, error)
	Logger   *slog.Logger
}

// Replicator carries a Log's group commits to the other nodes: each flush
// of the log (after its fsync) is queued, and Run proposes what is queued
// as one Shipment whenever the previous one is committed — so a batch
// holds everything flushed while the one before was in flight (pipelined
// group commit). With a Replicator, the log's records count as durable
// (WriteDurable, Committed) only once a proposal holding them is
// committed.
type Replicator struct {
	l   *Log
	cfg ReplicatorConfig
	log *slog.Logger

	attached uint64     // the log's durable seq when the replicator attached
	head     Shipment   // where the last shipment (or the log at attach) ended; guarded by mu
	sendMu   sync.Mutex // one proposal at a time (Run, Drain)

	mu      sync.Mutex
	parts   []Part
	ckpts   []Checkpoint
	pub     []byte // sent with the next shipment
	wake    chan struct{}
	stats   ReplicationStats
	lastErr error
}

// ReplicationStats are a Replicator's counters.
type ReplicationStats struct {
	Shipments uint64 // proposals committed
	Records   uint64 // records they held
	Failures  uint64 // proposals that failed (and were retried)
	Queued    int    // records waiting
}

// NewReplicator attaches a Replicator to l. Call it before l takes
// records (before the gateway starts), and run Run.
func NewReplicator(l *Log, cfg ReplicatorConfig) (*Replicator, error) {
	if cfg.Propose == nil {
		return nil, errors.New("audit: replicator: Propose is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = l.cfg.StrictTimeout
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replicator{l: l, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
	if pub, err := os.ReadFile(filepath.Join(l.cfg.Dir, pubKeyFile)); err == nil {
		r.pub = pub
	}
	l.flushMu.Lock()
	l.ckptMu.Lock()
	// The final checkpoint of the segment the last run closed (or that New
	// closed after a crash) is not shipped yet.
	if prev := l.segNo - 1; prev > 0 {
		data, _ := os.ReadFile(filepath.Join(l.cfg.Dir, ckptFile))
		cps, _, _ := parseCheckpoints(data)
		for i := len(cps) - 1; i >= 0; i-- {
			if cps[i].Segment == prev && cps[i].Final {
				r.ckpts = append(r.ckpts, cps[i].Checkpoint)
				break
			}
		}
	}
	l.ship, l.shipCkpt = r.enqueue, r.enqueueCheckpoint
	r.attached = l.durSeq
	r.head = Shipment{LastSeq: l.durSeq, Segment: l.segNo - 1, Head: hex.EncodeToString(l.durHead[:])}
	if len(r.ckpts) > 0 {
		r.head.Records = r.ckpts[0].Records
	}
	l.ckptMu.Unlock()
	l.flushMu.Unlock()
	return r, nil
}

func (r *Replicator) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Replicator) enqueue(p Part) {
	r.mu.Lock()
	r.parts = append(r.parts, p)
	r.stats.Queued += p.N
	r.mu.Unlock()
	r.signal()
}

func (r *Replicator) enqueueCheckpoint(c Checkpoint) {
	r.mu.Lock()
	r.ckpts = append(r.ckpts, c)
	r.mu.Unlock()
}

// next builds the shipment of what is queued: parts up to MaxBytes (merged
// per segment), the checkpoints that cover only records in it or before,
// and the public key once. It returns how many parts and checkpoints it
// took, or a nil shipment when nothing is queued.
func (r *Replicator) next() (*Shipment, int, []int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.parts) == 0 {
		return r.checkpointsOnly()
	}
	b := &Batch{PubKeys: r.pub}
	size, taken := 0, 0
	for _, p := range r.parts {
		if taken > 0 && size+len(p.Frames) > r.cfg.MaxBytes {
			break
		}
		taken++
		size += len(p.Frames)
		if k := len(b.Parts) - 1; k >= 0 && b.Parts[k].Segment == p.Segment && b.Parts[k].Start+b.Parts[k].N == p.Start {
			q := &b.Parts[k]
			q.Frames = append(q.Frames, p.Frames...)
			q.N, q.LastSeq, q.Head = q.N+p.N, p.LastSeq, p.Head
			continue
		}
		p.Frames = append([]byte(nil), p.Frames...)
		b.Parts = append(b.Parts, p)
	}
	last := b.Parts[len(b.Parts)-1]
	var ck []int
	for i, c := range r.ckpts {
		if c.Segment < last.Segment || (c.Segment == last.Segment && c.Records <= last.Start+last.N) {
			b.Checkpoints = append(b.Checkpoints, c)
			ck = append(ck, i)
		}
	}
	payload, err := b.Encode()
	if err != nil {
		return nil, 0, nil, err
	}
	s := &Shipment{Batch: b, Payload: payload, FirstSeq: b.Parts[0].FirstSeq, LastSeq: last.LastSeq,
		Segment: last.Segment, Records: last.Start + last.N, Head: hex.EncodeToString(last.Head[:])}
	if n := len(b.Checkpoints); n > 0 {
		s.Checkpoint, _ = json.Marshal(&b.Checkpoints[n-1])
	}
	return s, taken, ck, nil
}

// checkpointsOnly is the shipment of checkpoints queued without records
// (the final checkpoint a Close wrote after its last flush): it repeats
// the head of the last shipment (the caller holds r.mu).
func (r *Replicator) checkpointsOnly() (*Shipment, int, []int, error) {
	if len(r.ckpts) == 0 || r.head.Segment == 0 || r.head.Records == 0 {
		return nil, 0, nil, nil
	}
	b := &Batch{PubKeys: r.pub, Checkpoints: slices.Clone(r.ckpts)}
	payload, err := b.Encode()
	if err != nil {
		return nil, 0, nil, err
	}
	s := r.head
	s.Batch, s.Payload, s.FirstSeq = b, payload, s.LastSeq+1
	s.Checkpoint, _ = json.Marshal(&b.Checkpoints[len(b.Checkpoints)-1])
	ck := make([]int, len(r.ckpts))
	for i := range ck {
		ck[i] = i
	}
	return &s, 0, ck, nil
}

// done drops what a committed shipment held.
func (r *Replicator) done(s *Shipment, parts int, ck []int) {
	r.mu.Lock()
	r.parts = append(r.parts[:0:0], r.parts[parts:]...)
	keep := r.ckpts[:0:0]
	j := 0
	for i, c := range r.ckpts {
		if j < len(ck) && ck[j] == i {
			j++
			continue
		}
		keep = append(keep, c)
	}
	r.ckpts = keep
	r.pub = nil
	r.head = Shipment{LastSeq: s.LastSeq, Segment: s.Segment, Records: s.Records, Head: s.Head}
	n := s.Batch.Records()
	r.stats.Shipments++
	r.stats.Records += uint64(n)
	r.stats.Queued -= n
	r.lastErr = nil
	r.mu.Unlock()
}

// Run proposes queued records until ctx is done, retrying a failed
// proposal (every 100 ms, backing off to 1 s) before anything after it.
// Cancellation is not an error; Drain ships what the log's Close flushed.
func (r *Replicator) Run(ctx context.Context) error {
	if r.cfg.Anchored != nil {
		for {
			seq, err := r.cfg.Anchored(ctx)
			if err == nil {
				if seq > r.attached {
					r.log.Error("audit: this node's trail ends before the chain head raft anchored for it: records were removed, or the audit directory was replaced (audit verify --anchors names what is missing); the other nodes' replicas skip its records up to the anchored seq",
						"anchored", seq, "local", r.attached)
				}
				r.catchUp(seq)
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("audit: waiting for the replicated state before replicating records", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		sent, err := r.proposeNext(ctx)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), time.Second)
		case !sent:
			backoff = 0
			select {
			case <-ctx.Done():
				return nil
			case <-r.wake:
			}
		default:
			backoff = 0
		}
	}
}

// proposeNext proposes what is queued, once; sent is false when nothing
// was queued.
func (r *Replicator) proposeNext(ctx context.Context) (sent bool, err error) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	s, parts, ck, err := r.next()
	if err != nil {
		r.log.Error("audit: encode a replication batch", "err", err)
		return false, err
	}
	if s == nil {
		return false, nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	err = r.cfg.Propose(pctx, s)
	cancel()
	if err != nil {
		r.mu.Lock()
		r.stats.Failures++
		first := r.lastErr == nil
		r.lastErr = err
		r.mu.Unlock()
		r.l.dur.fail(fmt.Errorf("replicate records %d..%d: %w", s.FirstSeq, s.LastSeq, err))
		if first {
			r.log.Warn("audit: records not replicated yet; retrying", "records", s.LastSeq-s.FirstSeq+1, "err", err)
		}
		return true, err
	}
	r.done(s, parts, ck)
	r.l.dur.commit(s.LastSeq)
	return true, nil
}

// Drain proposes everything queued (after the log's Close flushed its
// last records) until the queue is empty, a proposal fails, or ctx ends.
// What it could not ship stays in the local trail; the next start ships
// it (see ReplicatorConfig.Anchored).
func (r *Replicator) Drain(ctx context.Context) error {
	for {
		sent, err := r.proposeNext(ctx)
		if err != nil || !sent {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Stats returns the replicator's counters.
func (r *Replicator) Stats() ReplicationStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// catchUpBytes bounds what catchUp reads back from the local segments.
const catchUpBytes = 64 << 20

// catchUp queues, ahead of everything else, the records in (anchored,
// attached]: durable here before this start, never committed by raft.
func (r *Replicator) catchUp(anchored uint64) {
	if anchored >= r.attached {
		return
	}
	segs, err := listSegments(r.l.cfg.Dir)
	if err != nil {
		r.log.Error("audit: catch up: list segments", "err", err)
		return
	}
	var parts []Part
	size := 0
	for i := len(segs) - 1; i >= 0 && size < catchUpBytes; i-- {
		ps, n, done := readBack(segs[i], anchored, r.attached)
		parts = append(ps, parts...)
		size += n
		if done {
			break
		}
	}
	// Keep the run that chains without a break up to what this start
	// continues from (damage in a segment ends what can be read back).
	for i := len(parts) - 1; i > 0; i-- {
		if parts[i].Prev != parts[i-1].Head || parts[i].FirstSeq != parts[i-1].LastSeq+1 {
			parts = parts[i:]
			break
		}
	}
	if len(parts) == 0 || parts[len(parts)-1].LastSeq != r.attached {
		return
	}
	if parts[0].FirstSeq != anchored+1 {
		r.log.Warn("audit: catch up: the local trail lacks records raft never committed; the replicas will lack them", "from", anchored+1, "to", parts[0].FirstSeq-1)
	}
	n := 0
	for _, p := range parts {
		n += p.N
	}
	r.log.Info("audit: replicating records this node made durable but raft never committed (a crash came between)", "records", n, "from", parts[0].FirstSeq)
	r.mu.Lock()
	r.parts = append(parts, r.parts...)
	r.stats.Queued += n
	r.mu.Unlock()
	r.signal()
}

// readBack returns the records of segment s with seq in (after, upto] as
// parts, their size, and whether s starts at or before after+1 (nothing
// older is needed).
func readBack(s segmentFile, after, upto uint64) ([]Part, int, bool) {
	sr, c, err := openSegment(s)
	if err != nil {
		return nil, 0, false
	}
	defer c.Close()
	done := sr.hdr.First <= after+1
	if sr.hdr.First > upto {
		return nil, 0, false
	}
	p := Part{Segment: sr.hdr.Segment, Header: bytes.Clone(sr.hdrRaw)}
	for {
		prev := sr.head
		payload, err := sr.next()
		if err != nil {
			break // the end, or damage: ship what is intact before it
		}
		seq, serr := recordSeq(payload)
		if serr != nil || seq > upto {
			break
		}
		if seq <= after {
			continue
		}
		if p.N == 0 {
			p.Start, p.Prev, p.FirstSeq = sr.n-1, prev, seq
		}
		p.Frames = binary.BigEndian.AppendUint32(p.Frames, uint32(len(payload)))
		p.Frames = append(append(p.Frames, payload...), sr.stored[:]...)
		p.N, p.LastSeq, p.Head = p.N+1, seq, sr.stored
	}
	if p.N == 0 {
		return nil, 0, done
	}
	return []Part{p}, len(p.Frames), done
}
