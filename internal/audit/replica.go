package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Replicas keeps this node's copies of the other nodes' trails, one
// directory per node under Dir (DATA_DIR/audit/replicas/<node>/): the
// segments byte for byte as the node wrote them, its checkpoints and its
// public key, so that `portcullis audit verify --audit-dir
// …/replicas/<node>` checks a replica exactly as it checks the node's own
// trail (a replica whose node is alive has an open newest segment).
//
// Apply is called on raft's apply goroutine for every committed batch,
// also when raft replays its log at start: it skips records it already
// holds, and a batch that does not continue what it holds (entries this
// node never applied because it installed a snapshot, or a node whose
// records never reached raft) is written anyway, after the gap, so that
// verify names the gap. Files are appended without fsync (raft's log holds
// the batch durably until it is compacted, long after); Run fsyncs them
// every second and a closed segment is compressed, as on the node itself.
type Replicas struct {
	dir  string
	self string
	log  *slog.Logger

	mu     sync.Mutex
	nodes  map[string]*replica
	dirty  map[*os.File]bool
	wg     sync.WaitGroup
	stats  ReplicaStats
	closed bool
}

// ReplicaStats are the counters of Replicas.
type ReplicaStats struct {
	Records uint64 // records written
	Skipped uint64 // records already held (replays, retried proposals)
	Gaps    uint64 // batches that did not continue what was held
	Errors  uint64 // batches that could not be decoded or written
}

type replica struct {
	dir     string
	f       *os.File // the open (newest) segment copy, or nil
	segNo   uint64
	records int // records in f
	lastSeq uint64
	head    [hashSize]byte
	ckpt    *os.File
	ckpts   map[string]bool // checkpoint lines held
	pub     bool
}

// OpenReplicas opens (creating) dir. self is this node's id: its own
// batches are skipped (its trail is its own directory).
func OpenReplicas(dir, self string, log *slog.Logger) (*Replicas, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit replicas: %w", err)
	}
	return &Replicas{dir: dir, self: self, log: log, nodes: map[string]*replica{}, dirty: map[*os.File]bool{}}, nil
}

// Dir is where the replicas live.
func (rs *Replicas) Dir() string { return rs.dir }

// Apply writes the records of node's batch (payload as Batch.Encode wrote
// it). Its error is for the log: raft has committed the batch whatever
// happens here.
func (rs *Replicas) Apply(node string, payload []byte) error {
	if node == rs.self {
		return nil
	}
	b, err := DecodeBatch(payload)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return nil // raft replays the entry at the next start
	}
	if err != nil {
		rs.stats.Errors++
		return fmt.Errorf("audit replica of %s: %w", node, err)
	}
	rp, err := rs.open(node)
	if err != nil {
		rs.stats.Errors++
		return err
	}
	for i := range b.Parts {
		if err := rs.applyPart(rp, &b.Parts[i]); err != nil {
			rs.stats.Errors++
			return fmt.Errorf("audit replica of %s: %w", node, err)
		}
	}
	if len(b.PubKeys) > 0 && !rp.pub {
		if err := writePub(rp.dir, b.PubKeys); err != nil {
			rs.stats.Errors++
			return fmt.Errorf("audit replica of %s: %w", node, err)
		}
		rp.pub = true
	}
	for i := range b.Checkpoints {
		js, _ := json.Marshal(&b.Checkpoints[i])
		if rp.ckpts[string(js)] {
			continue
		}
		if _, err := rp.ckpt.Write(append(js, '\n')); err != nil {
			rs.stats.Errors++
			return fmt.Errorf("audit replica of %s: %w", node, err)
		}
		rp.ckpts[string(js)] = true
		rs.dirty[rp.ckpt] = true
	}
	return nil
}

func (rs *Replicas) applyPart(rp *replica, p *Part) error {
	if p.LastSeq <= rp.lastSeq && rp.lastSeq > 0 {
		rs.stats.Skipped += uint64(p.N)
		return nil
	}
	if p.FirstSeq <= rp.lastSeq {
		skip := int(rp.lastSeq - p.FirstSeq + 1)
		rs.stats.Skipped += uint64(skip)
		p.Frames, p.Prev = dropFrames(p.Frames, skip, p.Prev)
		p.Start, p.FirstSeq, p.N = p.Start+skip, rp.lastSeq+1, p.N-skip
	}
	if rp.f == nil || rp.segNo != p.Segment {
		if err := rs.openSegment(rp, p); err != nil {
			return err
		}
	}
	if p.Prev != rp.head || p.FirstSeq != rp.lastSeq+1 || p.Start != rp.records {
		rs.stats.Gaps++
		rs.log.Warn("audit: a replica lacks records (this node missed the raft entries that held them); written after the gap, verify names it",
			"dir", rp.dir, "segment", segmentName(p.Segment), "have", rp.lastSeq, "next", p.FirstSeq)
	}
	if _, err := rp.f.Write(p.Frames); err != nil {
		return fmt.Errorf("write %s: %w", rp.f.Name(), err)
	}
	rs.dirty[rp.f] = true
	rp.records += p.N
	rp.lastSeq, rp.head = p.LastSeq, p.Head
	rs.stats.Records += uint64(p.N)
	return nil
}

// dropFrames drops the first n frames and returns the rest and the chain
// hash before it.
func dropFrames(frames []byte, n int, prev [hashSize]byte) ([]byte, [hashSize]byte) {
	for ; n > 0 && len(frames) >= 4; n-- {
		l := int(uint32(frames[0])<<24 | uint32(frames[1])<<16 | uint32(frames[2])<<8 | uint32(frames[3]))
		copy(prev[:], frames[4+l:4+l+hashSize])
		frames = frames[4+l+hashSize:]
	}
	return frames, prev
}

// openSegment closes the replica's open segment (compressing it) and opens
// p's: appending to a raw copy left by an earlier run, or creating it
// with p's header.
func (rs *Replicas) openSegment(rp *replica, p *Part) error {
	if rp.f != nil {
		rs.closeSegment(rp)
	}
	path := filepath.Join(rp.dir, segmentName(p.Segment))
	if _, err := os.Stat(path + ".zst"); err == nil {
		return fmt.Errorf("records for %s, which this replica already closed", segmentName(p.Segment))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if errors.Is(err, os.ErrExist) {
		// A copy an earlier run left open, whose state open did not load
		// (it was not the newest).
		return fmt.Errorf("records for %s, which this replica holds but is not its newest segment", segmentName(p.Segment))
	}
	if err != nil {
		return fmt.Errorf("new replica segment: %w", err)
	}
	if _, err := f.Write(p.Header); err != nil {
		f.Close()
		return fmt.Errorf("new replica segment: %w", err)
	}
	rp.f, rp.segNo, rp.records = f, p.Segment, 0
	if p.Start == 0 {
		// The segment header says what the chain continues from.
		rp.head, rp.lastSeq = p.Prev, p.FirstSeq-1
	}
	rs.dirty[f] = true
	return syncDir(rp.dir)
}

func (rs *Replicas) closeSegment(rp *replica) {
	path := rp.f.Name()
	if err := rp.f.Sync(); err != nil {
		rs.log.Warn("audit: fsync a replica segment", "file", path, "err", err)
	}
	rp.f.Close()
	delete(rs.dirty, rp.f)
	rp.f = nil
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		if err := compressAndIndex(path); err != nil {
			rs.log.Error("audit: compress a replica segment (it stays uncompressed)", "file", path, "err", err)
		}
	}()
}

// open returns node's replica, loading what an earlier run wrote.
func (rs *Replicas) open(node string) (*replica, error) {
	if rp := rs.nodes[node]; rp != nil {
		return rp, nil
	}
	dir := filepath.Join(rs.dir, node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit replica of %s: %w", node, err)
	}
	rp := &replica{dir: dir, ckpts: map[string]bool{}}
	data, err := os.ReadFile(filepath.Join(dir, ckptFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit replica of %s: %w", node, err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		data = data[:i+1] // a line torn by a crash: it comes again
		if err := os.Truncate(filepath.Join(dir, ckptFile), int64(len(data))); err != nil {
			return nil, fmt.Errorf("audit replica of %s: %w", node, err)
		}
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) > 0 {
			rp.ckpts[string(line)] = true
		}
	}
	if rp.ckpt, err = os.OpenFile(filepath.Join(dir, ckptFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("audit replica of %s: %w", node, err)
	}
	_, err = os.Stat(filepath.Join(dir, pubKeyFile))
	rp.pub = err == nil
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit replica of %s: %w", node, err)
	}
	if n := len(segs); n > 0 {
		if err := rs.load(rp, segs[n-1]); err != nil {
			return nil, fmt.Errorf("audit replica of %s: %w", node, err)
		}
	}
	rs.nodes[node] = rp
	return rp, nil
}

// load reads the newest segment copy: where its chain ends, cutting a
// record torn by a crash; a raw one stays open for appending.
func (rs *Replicas) load(rp *replica, s segmentFile) error {
	sr, c, err := openSegment(s)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name(), err)
	}
	rp.segNo, rp.head, rp.lastSeq = s.No, sr.prev, sr.hdr.First-1
	good := sr.off
	for {
		p, err := sr.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, ErrHash) {
			break // torn (or damaged) from here on
		}
		if seq, serr := recordSeq(p); serr == nil {
			rp.lastSeq = seq
		}
		rp.records, rp.head, good = sr.n, sr.stored, sr.off
	}
	c.Close()
	if s.Compressed {
		return nil
	}
	if err := os.Truncate(s.Path, good); err != nil {
		return err
	}
	rp.f, err = os.OpenFile(s.Path, os.O_WRONLY|os.O_APPEND, 0o600)
	return err
}

func writePub(dir string, pem []byte) error {
	file := filepath.Join(dir, pubKeyFile)
	if err := os.WriteFile(file+".tmp", pem, 0o644); err != nil {
		return err
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		return err
	}
	return syncDir(dir)
}

// Sync fsyncs every file written since the last Sync.
func (rs *Replicas) Sync() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var errs []error
	for f := range rs.dirty {
		errs = append(errs, f.Sync())
	}
	clear(rs.dirty)
	return errors.Join(errs...)
}

// Run fsyncs the replicas every second until ctx is done.
func (rs *Replicas) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := rs.Sync(); err != nil {
				rs.log.Warn("audit: fsync replicas", "err", err)
			}
		}
	}
}

// Stats returns the counters.
func (rs *Replicas) Stats() ReplicaStats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.stats
}

// Close fsyncs and closes every replica (open segments stay open on disk:
// the next run appends to them) and waits for compressions.
func (rs *Replicas) Close() error {
	err := rs.Sync()
	rs.mu.Lock()
	for _, rp := range rs.nodes {
		if rp.f != nil {
			rp.f.Close()
			rp.f = nil
		}
		if rp.ckpt != nil {
			rp.ckpt.Close()
		}
	}
	rs.nodes = map[string]*replica{}
	rs.closed = true
	rs.mu.Unlock()
	rs.wg.Wait()
	return err
}
