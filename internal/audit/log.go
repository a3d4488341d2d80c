package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// Errors Write returns.
var (
	// ErrClosed: the log was closed; the record was not taken.
	ErrClosed = errors.New("audit: log is closed")
	// ErrBacklog: records could not be written for long enough that the
	// in-memory backlog is full (the disk is failing or full); the record
	// was not taken.
	ErrBacklog = errors.New("audit: backlog full: records are not reaching the disk")
)

// Config configures a Log.
type Config struct {
	// Dir holds the segments, checkpoints.log and audit-pub.pem. Required;
	// created 0700.
	Dir string
	// Node names this node in records and checkpoints.
	Node string
	// Signer signs checkpoints: the HSM's audit key
	// (hsm.Keystore.Signer(ctx, hsm.SignerAudit)), an ECDSA P-256 key. Nil:
	// checkpoints are unsigned, and verify says so.
	Signer crypto.Signer
	// FlushInterval is the group commit: buffered records are written and
	// fsynced at most this long after they were handed to Write (default
	// 100ms). It bounds what a kill -9 loses (see the package doc).
	FlushInterval time.Duration
	// BufferBytes flushes at once when the buffer holds this much (default
	// 1 MiB).
	BufferBytes int
	// SegmentBytes and SegmentAge close the current segment at the first
	// flush after it reached this size or age (defaults 64 MiB, 24h).
	SegmentBytes int64
	SegmentAge   time.Duration
	// CheckpointInterval is how often a checkpoint of the current segment
	// is written when it has new records (default 10s); a closed segment
	// always gets a final one.
	CheckpointInterval time.Duration
	// RetainAge and RetainBytes delete the oldest closed segments: those
	// whose newest record is older than RetainAge, and while the trail's
	// files total more than RetainBytes (0: no limit). See retention.go.
	RetainAge   time.Duration
	RetainBytes int64
	// Logger receives the log's warnings. Nil discards them.
	Logger *slog.Logger
	// Metrics, when set, is where the log registers its Prometheus
	// collectors (portcullis_audit_*).
	Metrics prometheus.Registerer

	// Strict and StrictTimeout: see durable.go. Strict makes Run flush as
	// soon as records wait (a pipelined group commit instead of every
	// FlushInterval); WriteDurable waits at most StrictTimeout (default
	// 5s) for a record to be durable.
	Strict        bool
	StrictTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.FlushInterval == 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = 1 << 20
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 64 << 20
	}
	if c.SegmentAge == 0 {
		c.SegmentAge = 24 * time.Hour
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.StrictTimeout == 0 {
		c.StrictTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("audit: a directory is required (--audit-dir)")
	}
	if c.FlushInterval < 0 || c.BufferBytes < 0 || c.SegmentBytes < 0 || c.SegmentAge < 0 || c.CheckpointInterval < 0 || c.RetainAge < 0 || c.RetainBytes < 0 {
		return errors.New("audit: intervals and sizes must not be negative")
	}
	if c.Signer != nil {
		if _, ok := c.Signer.Public().(*ecdsa.PublicKey); !ok {
			return fmt.Errorf("audit: signer key is %T, want ECDSA", c.Signer.Public())
		}
	}
	return nil
}

// Log is one node's durable audit trail. It is a gateway.Sink.
type Log struct {
	cfg   Config
	log   *slog.Logger
	keyID string // "" without a signer
	m     *metrics

	mu       sync.Mutex // guards the buffer and the chain as buffered
	buf      []byte
	spare    []byte
	pendingN int
	seq      uint64         // last seq taken
	head     [hashSize]byte // chain hash after the last record taken
	closed   bool

	flushMu    sync.Mutex // guards the file and the durable state below
	f          *os.File
	segNo      uint64
	segRecords int
	segBytes   int64
	segOpened  time.Time
	segHeader  string // hex SHA-256 of the current segment's header
	durSeq     uint64
	durHead    [hashSize]byte
	stats      Stats

	ckptMu   sync.Mutex // guards checkpoints.log and the fields below
	ckpt     *os.File
	covered  map[uint64]int // segment → records its newest checkpoint covers
	owed     []Checkpoint   // final checkpoints whose signing failed, retried by Run
	wg       sync.WaitGroup // compressions in flight
	closeOne sync.Once
	closeErr error
	finals   map[uint64]Checkpoint // final checkpoints found at New
	retainAt time.Time             // last retention pass (Run's goroutine only)

	// Replication and strict durability (durable.go, replicate.go).
	segHdr   []byte           // the current segment's header bytes (flushMu)
	dur      durability       // what WriteDurable waits for
	kick     chan struct{}    // a strict write wants a flush now
	ship     func(Part)       // set by NewReplicator; called under flushMu
	shipCkpt func(Checkpoint) // set by NewReplicator; called under ckptMu
}

// Stats are counters of a Log, for benchmarks and status.
type Stats struct {
	Records  uint64        // records made durable
	Flushes  uint64        // write+fsync rounds
	MaxFlush time.Duration // the longest write+fsync
}

var _ gateway.Sink = (*Log)(nil)

// New opens the trail in cfg.Dir: it repairs what a crash left (a record
// torn at the tail of the last segment is cut off, a segment closed without
// a final checkpoint gets one, uncompressed closed segments are compressed)
// and starts a new segment continuing the chain. Close releases it, also
// after a failed New.
func New(cfg Config) (_ *Log, err error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, log: cfg.Logger, covered: map[uint64]int{}, m: m, kick: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create dir: %w", err)
	}
	if err := l.writePublicKey(); err != nil {
		return nil, err
	}
	if err := l.openCheckpoints(); err != nil {
		return nil, err
	}
	if err := l.recover(); err != nil {
		return nil, err
	}
	if err := l.openSegmentFile(l.segNo+1, l.durHead, l.durSeq+1); err != nil {
		return nil, err
	}
	l.seq, l.head = l.durSeq, l.durHead
	l.dur.init(l.durSeq)
	return l, nil
}

// writePublicKey makes sure audit-pub.pem holds the signer's public key
// (keys used before stay: old checkpoints still verify).
func (l *Log) writePublicKey() error {
	if l.cfg.Signer == nil {
		return nil
	}
	pub := l.cfg.Signer.Public().(*ecdsa.PublicKey)
	id, err := KeyID(pub)
	if err != nil {
		return fmt.Errorf("audit: public key: %w", err)
	}
	l.keyID = id
	file := filepath.Join(l.cfg.Dir, pubKeyFile)
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: %w", err)
	}
	if len(old) > 0 {
		ks, err := ParsePublicKeys(old)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", pubKeyFile, err)
		}
		for _, k := range ks {
			if k.Equal(pub) {
				return nil
			}
		}
	}
	p, err := EncodePublicKey(pub)
	if err != nil {
		return fmt.Errorf("audit: public key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	_, err = f.Write(p)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: write %s: %w", pubKeyFile, err)
	}
	return syncDir(l.cfg.Dir)
}

// openCheckpoints opens checkpoints.log for appending, cutting a line torn
// by a crash.
func (l *Log) openCheckpoints() error {
	file := filepath.Join(l.cfg.Dir, ckptFile)
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: %w", err)
	}
	cps, bad, torn := parseCheckpoints(data)
	for _, e := range bad {
		l.log.Error("audit: damaged checkpoint line (left as is; audit verify reports it)", "err", e)
	}
	if torn {
		cut := bytes.LastIndexByte(data, '\n') + 1
		l.log.Warn("audit: cutting a checkpoint line torn by a crash", "bytes", len(data)-cut)
		if err := os.Truncate(file, int64(cut)); err != nil {
			return fmt.Errorf("audit: repair %s: %w", ckptFile, err)
		}
	}
	for _, c := range cps {
		if c.Records >= l.covered[c.Segment] {
			l.covered[c.Segment] = c.Records
		}
	}
	l.ckpt, err = os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(data) == 0 {
		if err := syncDir(l.cfg.Dir); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	finals := map[uint64]Checkpoint{}
	for _, c := range cps {
		if c.Final {
			finals[c.Segment] = c.Checkpoint
		}
	}
	l.finals = finals
	return nil
}

// recover brings every existing segment to the closed state and sets the
// durable chain state (segNo, durSeq, durHead) from the last one.
func (l *Log) recover() error {
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	// Leftovers of an interrupted compression.
	if ents, err := os.ReadDir(l.cfg.Dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				os.Remove(filepath.Join(l.cfg.Dir, e.Name()))
			}
		}
	}
	for i, s := range segs {
		last := i == len(segs)-1
		fin, hasFinal := l.finals[s.No]
		if s.Compressed && hasFinal && fin.Records == l.covered[s.No] {
			h, _ := hex.DecodeString(fin.Head) // parseCheckpoints checked it
			l.segNo, l.durSeq = s.No, fin.LastSeq
			copy(l.durHead[:], h)
			continue
		}
		st, err := l.scan(s, last && !s.Compressed)
		if errors.Is(err, ErrTruncated) && last && !s.Compressed {
			// A crash while the segment was being created: no record
			// reached it.
			l.log.Warn("audit: removing a segment whose header a crash cut short", "segment", s.Name())
			if err := os.Remove(s.Path); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			break
		}
		if err != nil {
			// Damage is evidence: keep the file, keep serving; verify
			// names it. The chain goes on from what was readable.
			l.segNo = s.No
			continue
		}
		l.segNo, l.durSeq, l.durHead = s.No, st.lastSeq, st.head
		if !hasFinal {
			c := Checkpoint{Segment: s.No, Records: st.records, LastSeq: st.lastSeq, Head: hex.EncodeToString(st.head[:]), Header: st.header, Final: true}
			if err := l.writeCheckpoint(c); err != nil {
				l.log.Error("audit: could not checkpoint a segment left open by a crash; retrying", "segment", s.Name(), "err", err)
			}
		}
		if !s.Compressed {
			if os.Remove(s.Path+".zst") == nil {
				l.log.Info("audit: redoing an interrupted compression", "segment", s.Name())
			}
			l.compressLater(s.Path)
		}
	}
	return nil
}

type scanState struct {
	header  string
	records int
	lastSeq uint64
	head    [hashSize]byte
}

// scan reads a segment to find where its chain ends. With repair, a record
// torn at the end of the file is cut off (a crash mid-write leaves one; it
// was never reported durable). Damage inside the segment is logged and
// left for verify to report: the chain continues from the last stored hash.
func (l *Log) scan(s segmentFile, repair bool) (scanState, error) {
	sr, c, err := openSegment(s)
	if err != nil {
		l.log.Error("audit: unreadable segment (left as is; audit verify reports it)", "segment", s.Name(), "err", err)
		return scanState{}, fmt.Errorf("audit: %s: %w", s.Name(), err)
	}
	defer c.Close()
	st := scanState{lastSeq: sr.hdr.First - 1, head: sr.prev, header: hex.EncodeToString(sr.hdrSum[:])}
	good := sr.off
	for {
		p, err := sr.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, ErrHash) {
			if repair && errors.Is(err, ErrTruncated) {
				l.log.Warn("audit: cutting a record torn by a crash at the end of the last segment", "segment", s.Name(), "record", sr.n+1)
				if terr := os.Truncate(s.Path, good); terr != nil {
					return st, fmt.Errorf("audit: repair %s: %w", s.Name(), terr)
				}
				break
			}
			l.log.Error("audit: damaged segment (left as is; audit verify reports it)", "segment", s.Name(), "record", sr.n+1, "err", err)
			break
		}
		if err != nil {
			l.log.Error("audit: damaged record (left as is; audit verify reports it)", "segment", s.Name(), "record", sr.n, "err", err)
		}
		if seq, serr := recordSeq(p); serr == nil {
			st.lastSeq = seq
		}
		st.records, st.head, good = sr.n, sr.stored, sr.off
	}
	return st, nil
}

// openSegmentFile starts segment no, continuing the chain from prev.
func (l *Log) openSegmentFile(no uint64, prev [hashSize]byte, first uint64) error {
	path := filepath.Join(l.cfg.Dir, segmentName(no))
	now := time.Now().UTC()
	hdr, err := encodeHeader(segmentHeader{V: 1, Segment: no, First: first, Prev: hex.EncodeToString(prev[:]), Node: l.cfg.Node, Created: now.Format(time.RFC3339Nano)})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: new segment: %w", err)
	}
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return fmt.Errorf("audit: new segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: new segment: %w", err)
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		f.Close()
		return fmt.Errorf("audit: new segment: %w", err)
	}
	sum := sha256.Sum256(hdr)
	l.f, l.segNo, l.segRecords, l.segBytes, l.segOpened, l.segHeader = f, no, 0, int64(len(hdr)), now, hex.EncodeToString(sum[:])
	l.segHdr = hdr
	return nil
}

// Write appends d's record to the buffer; it is durable within
// FlushInterval plus one flush. Safe for concurrent use; the gateway calls
// it from its one audit goroutine (gateway.Sink). It returns at once,
// except when the buffer reaches BufferBytes: then it flushes (one write
// and fsync) before returning. ErrClosed after Close; ErrBacklog when
// flushes have been failing long enough to fill 16 buffers.
func (l *Log) Write(d gateway.Decision) error { return l.writeRecord(recordOf(&d, l.cfg.Node)) }

// writeRecord appends r (its Seq set here) to the buffer: see Write.
func (l *Log) writeRecord(r Record) error {
	_, full, err := l.take(r)
	if err != nil {
		return err
	}
	if full {
		return l.Flush()
	}
	return nil
}

// take appends r's frame (its Seq set here) to the buffer and returns its
// seq, and whether the buffer is full.
func (l *Log) take(r Record) (uint64, bool, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, false, ErrClosed
	}
	if len(l.buf) >= 16*l.cfg.BufferBytes {
		l.mu.Unlock()
		return 0, false, ErrBacklog
	}
	r.Seq = l.seq + 1
	js, err := json.Marshal(&r)
	if err != nil {
		l.mu.Unlock()
		return 0, false, fmt.Errorf("audit: encode record: %w", err)
	}
	if len(js) > maxRecord {
		l.mu.Unlock()
		return 0, false, fmt.Errorf("audit: record of %d bytes exceeds %d", len(js), maxRecord)
	}
	l.buf, l.head = appendFrame(l.buf, js, l.head)
	l.seq++
	l.pendingN++
	seq := l.seq
	full := len(l.buf) >= l.cfg.BufferBytes
	l.dur.pending(seq)
	l.mu.Unlock()
	return seq, full, nil
}

// Flush writes and fsyncs the buffered records now.
func (l *Log) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.flushLocked()
}

func (l *Log) flushLocked() error {
	if l.f == nil {
		return ErrClosed
	}
	l.mu.Lock()
	chunk, n, seq, head := l.buf, l.pendingN, l.seq, l.head
	l.buf, l.spare, l.pendingN = l.spare[:0], nil, 0
	l.mu.Unlock()
	if n == 0 {
		l.spare = chunk
		return nil
	}
	requeue := func(err error) error {
		l.m.errors.WithLabelValues("flush").Inc()
		l.dur.fail(err)
		l.mu.Lock()
		l.buf = append(chunk, l.buf...)
		l.pendingN += n
		l.mu.Unlock()
		return err
	}
	if l.segRecords > 0 && (l.segBytes >= l.cfg.SegmentBytes || time.Since(l.segOpened) >= l.cfg.SegmentAge) {
		if err := l.rotateLocked(); err != nil {
			return requeue(err)
		}
	}
	start := time.Now()
	prev, startRec := l.durHead, l.segRecords
	if _, err := l.f.Write(chunk); err != nil {
		// Cut a partial write so the retry does not leave a torn record
		// inside the segment.
		_ = l.f.Truncate(l.segBytes)
		return requeue(fmt.Errorf("audit: write %s: %w", segmentName(l.segNo), err))
	}
	if err := l.f.Sync(); err != nil {
		_ = l.f.Truncate(l.segBytes)
		return requeue(fmt.Errorf("audit: fsync %s: %w", segmentName(l.segNo), err))
	}
	took := time.Since(start)
	l.segBytes += int64(len(chunk))
	l.segRecords += n
	l.durSeq, l.durHead = seq, head
	l.stats.Records += uint64(n)
	l.stats.Flushes++
	l.stats.MaxFlush = max(l.stats.MaxFlush, took)
	l.m.records.Add(float64(n))
	l.m.flush.Observe(took.Seconds())
	if l.ship != nil {
		l.ship(Part{Segment: l.segNo, Start: startRec, Header: l.segHdr, Prev: prev, FirstSeq: seq - uint64(n) + 1,
			Frames: bytes.Clone(chunk), N: n, LastSeq: seq, Head: head})
	} else {
		l.dur.commit(seq)
	}
	l.spare = chunk
	return nil
}

// rotateLocked closes the current segment (final checkpoint, compression
// in the background) and opens the next.
func (l *Log) rotateLocked() error {
	if err := l.closeSegmentLocked(); err != nil {
		return err
	}
	return l.openSegmentFile(l.segNo+1, l.durHead, l.durSeq+1)
}

func (l *Log) closeSegmentLocked() error {
	c := Checkpoint{Segment: l.segNo, Records: l.segRecords, LastSeq: l.durSeq, Head: hex.EncodeToString(l.durHead[:]), Header: l.segHeader, Final: true}
	path := l.f.Name()
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", segmentName(l.segNo), err)
	}
	l.f = nil
	if err := l.writeCheckpoint(c); err != nil {
		l.log.Error("audit: final checkpoint failed; retrying", "segment", segmentName(c.Segment), "err", err)
	}
	l.compressLater(path)
	return nil
}

// writeCheckpoint signs c and appends it to checkpoints.log. A failed
// final checkpoint is owed: Run retries it.
func (l *Log) writeCheckpoint(c Checkpoint) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	if !c.Final && c.Records <= l.covered[c.Segment] {
		return nil
	}
	c.Time, c.Node = time.Now().UTC().Format(time.RFC3339Nano), l.cfg.Node
	err := l.appendCheckpointLocked(c)
	if err != nil {
		l.m.errors.WithLabelValues("checkpoint").Inc()
	}
	if err != nil && c.Final {
		l.owed = append(l.owed, c)
		l.m.owed.Set(float64(len(l.owed)))
	}
	return err
}

func (l *Log) appendCheckpointLocked(c Checkpoint) error {
	if l.cfg.Signer != nil {
		if err := c.sign(l.cfg.Signer, l.keyID); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	js, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if _, err := l.ckpt.Write(append(js, '\n')); err != nil {
		return fmt.Errorf("audit: write %s: %w", ckptFile, err)
	}
	if err := l.ckpt.Sync(); err != nil {
		return fmt.Errorf("audit: fsync %s: %w", ckptFile, err)
	}
	l.covered[c.Segment] = max(l.covered[c.Segment], c.Records)
	if l.shipCkpt != nil {
		l.shipCkpt(c)
	}
	return nil
}

// retryOwed signs the final checkpoints that failed before.
func (l *Log) retryOwed() {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	for len(l.owed) > 0 {
		c := l.owed[0]
		c.Time = time.Now().UTC().Format(time.RFC3339Nano)
		if err := l.appendCheckpointLocked(c); err != nil {
			l.log.Warn("audit: final checkpoint still failing", "segment", segmentName(c.Segment), "err", err)
			return
		}
		l.owed = l.owed[1:]
		l.m.owed.Set(float64(len(l.owed)))
	}
}

// Checkpoint writes a checkpoint of the durable records of the current
// segment now (Run does this every CheckpointInterval).
func (l *Log) Checkpoint() error {
	l.flushMu.Lock()
	if l.f == nil {
		l.flushMu.Unlock()
		return ErrClosed
	}
	c := Checkpoint{Segment: l.segNo, Records: l.segRecords, LastSeq: l.durSeq, Head: hex.EncodeToString(l.durHead[:]), Header: l.segHeader}
	l.flushMu.Unlock()
	if c.Records == 0 {
		return nil
	}
	return l.writeCheckpoint(c)
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.stats
}

// Run flushes every FlushInterval and checkpoints every
// CheckpointInterval until ctx is done (cancellation is not an error).
func (l *Log) Run(ctx context.Context) error {
	flush := time.NewTicker(l.cfg.FlushInterval)
	defer flush.Stop()
	ckpt := time.NewTicker(l.cfg.CheckpointInterval)
	defer ckpt.Stop()
	l.indexMissing() // index.go
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.kick:
			if err := l.Flush(); err != nil && !errors.Is(err, ErrClosed) {
				l.log.Error("audit: flush failed; records stay buffered and are retried", "err", err)
			}
		case <-flush.C:
			if err := l.Flush(); err != nil && !errors.Is(err, ErrClosed) {
				l.log.Error("audit: flush failed; records stay buffered and are retried", "err", err)
			}
		case <-ckpt.C:
			l.retryOwed()
			if err := l.Checkpoint(); err != nil && !errors.Is(err, ErrClosed) {
				l.log.Warn("audit: checkpoint failed; the next one covers these records", "err", err)
			}
			l.retain() // retention.go
		}
	}
}

// Close flushes the buffered records, writes the current segment's final
// checkpoint and compresses it. Write fails with ErrClosed afterwards.
// Safe after a partial New and more than once.
func (l *Log) Close() error {
	l.closeOne.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		var errs []error
		l.flushMu.Lock()
		if l.f != nil {
			errs = append(errs, l.flushLocked())
			if l.segRecords == 0 && l.covered[l.segNo] == 0 {
				// Nothing was written: drop the empty segment rather
				// than leave one per restart.
				path := l.f.Name()
				l.f.Close()
				l.f = nil
				errs = append(errs, os.Remove(path), syncDir(l.cfg.Dir))
			} else {
				errs = append(errs, l.closeSegmentLocked())
			}
		}
		l.flushMu.Unlock()
		l.wg.Wait()
		l.retryOwed()
		l.ckptMu.Lock()
		if len(l.owed) > 0 {
			errs = append(errs, fmt.Errorf("audit: %d final checkpoints could not be signed (the next start signs them)", len(l.owed)))
		}
		if l.ckpt != nil {
			errs = append(errs, l.ckpt.Close())
		}
		l.ckptMu.Unlock()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// compressLater compresses a closed raw segment in the background (Close
// waits for it).
func (l *Log) compressLater(path string) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := compressAndIndex(path); err != nil { // index.go
			l.log.Error("audit: compress segment (it stays uncompressed)", "segment", filepath.Base(path), "err", err)
		}
	}()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Dir is the trail's directory.
func (l *Log) Dir() string { return l.cfg.Dir }
