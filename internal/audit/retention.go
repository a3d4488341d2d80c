package audit

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Retention deletes the oldest closed segments (Config.RetainAge,
// RetainBytes), always from the oldest, and never the open segment or one
// still owed its final checkpoint. Before deleting, it appends a marker to
// retention.log, signed by the audit key like a checkpoint: segments
// 1..Through were deleted by retention, and the chain continues from Head
// at seq LastSeq+1. Verify accepts the absence of exactly those segments
// and checks that the first remaining one starts from Head; any other
// missing segment (a middle one, the newest, or an old one the marker does
// not cover) is still reported.
const retentionFile = "retention.log"

// RetentionMarker records one retention deletion.
type RetentionMarker struct {
	Through  uint64 `json:"through"` // segments 1..Through are deleted
	LastSeq  uint64 `json:"lastSeq"` // the last seq of segment Through
	Head     string `json:"head"`    // the chain hash after it
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`  // file bytes this deletion freed
	Reason   string `json:"reason"` // "age" or "size"
	Time     string `json:"time"`
	Node     string `json:"node,omitempty"`
	Key      string `json:"key,omitempty"`
	Sig      string `json:"sig,omitempty"`
}

func (m *RetentionMarker) signedBytes() []byte {
	return []byte("portcullis-audit-retention/v1\n" + strconv.FormatUint(m.Through, 10) + "\n" +
		strconv.FormatUint(m.LastSeq, 10) + "\n" + m.Head + "\n" + strconv.Itoa(m.Segments) + "\n" +
		strconv.FormatInt(m.Bytes, 10) + "\n" + m.Reason + "\n" + m.Time + "\n" + m.Node + "\n" + m.Key + "\n")
}

func (m *RetentionMarker) sign(s crypto.Signer, keyID string) (err error) {
	m.Key = keyID
	m.Sig, err = signBytes(s, m.signedBytes())
	if err != nil {
		return fmt.Errorf("sign retention marker: %w", err)
	}
	return nil
}

func (m *RetentionMarker) verify(keys map[string]*ecdsa.PublicKey) error {
	return verifyBytes(keys, m.Key, m.Sig, m.signedBytes())
}

// parseRetention parses retention.log, one marker per line; lines that do
// not parse are returned in bad.
func parseRetention(data []byte) (ms []RetentionMarker, bad []error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m RetentionMarker
		if err := json.Unmarshal(line, &m); err != nil {
			bad = append(bad, fmt.Errorf("%s line %d: %w", retentionFile, n, err))
			continue
		}
		if h, err := hex.DecodeString(m.Head); err != nil || len(h) != hashSize || m.Through == 0 {
			bad = append(bad, fmt.Errorf("%s line %d: not a retention marker", retentionFile, n))
			continue
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, fmt.Errorf("%s line %d: %w", retentionFile, n+1, err))
	}
	return ms, bad
}

// retain applies the retention limits, at most once a minute (Run calls
// it every CheckpointInterval). Errors are logged: nothing is deleted that
// the marker does not cover.
func (l *Log) retain() {
	if (l.cfg.RetainAge <= 0 && l.cfg.RetainBytes <= 0) || time.Since(l.retainAt) < time.Minute {
		return
	}
	l.retainAt = time.Now()
	if err := l.retainOnce(time.Now()); err != nil {
		l.log.Error("audit: retention", "err", err)
	}
}

func (l *Log) retainOnce(now time.Time) error {
	l.flushMu.Lock()
	open := l.segNo
	l.flushMu.Unlock()
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(l.cfg.Dir)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	data, err := os.ReadFile(filepath.Join(l.cfg.Dir, ckptFile))
	if err != nil {
		return err
	}
	cps, _, _ := parseCheckpoints(data)
	finals := map[uint64]Checkpoint{}
	for _, c := range cps {
		if c.Final {
			finals[c.Segment] = c.Checkpoint
		}
	}
	var del []segmentFile
	var freed int64
	reason := ""
	for _, s := range segs {
		if !s.Compressed || s.No >= open {
			break
		}
		if _, ok := finals[s.No]; !ok {
			break // no final checkpoint yet: the chain could not continue verifiably
		}
		size := fileSize(s.Path) + fileSize(indexPath(s.Path))
		why := ""
		if l.cfg.RetainBytes > 0 && total-freed > l.cfg.RetainBytes {
			why = "size"
		} else if l.cfg.RetainAge > 0 && now.Sub(segmentNewest(s)) > l.cfg.RetainAge {
			why = "age"
		}
		if why == "" {
			break
		}
		if reason == "" || reason == why {
			reason = why
		} else {
			reason = "age and size"
		}
		del = append(del, s)
		freed += size
	}
	if len(del) == 0 {
		return nil
	}
	last := finals[del[len(del)-1].No]
	m := RetentionMarker{Through: last.Segment, LastSeq: last.LastSeq, Head: last.Head, Segments: len(del), Bytes: freed,
		Reason: reason, Time: now.UTC().Format(time.RFC3339Nano), Node: l.cfg.Node}
	if l.cfg.Signer != nil {
		if err := m.sign(l.cfg.Signer, l.keyID); err != nil {
			return fmt.Errorf("nothing deleted: %w", err)
		}
	}
	js, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(l.cfg.Dir, retentionFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("nothing deleted: %w", err)
	}
	_, err = f.Write(append(js, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("nothing deleted: write %s: %w", retentionFile, err)
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		return err
	}
	for _, s := range del {
		if err := os.Remove(s.Path); err != nil {
			return err
		}
		os.Remove(indexPath(s.Path))
	}
	l.log.Info("audit: retention deleted old segments", "through", segmentName(m.Through), "segments", len(del), "bytes", freed, "reason", reason)
	return syncDir(l.cfg.Dir)
}

// segmentNewest is the time of a closed segment's newest record: from its
// index, else the file's modification time (when it was compressed).
func segmentNewest(s segmentFile) time.Time {
	if x := readIndex(s); x != nil && x.MaxTime > 0 {
		return time.Unix(0, x.MaxTime)
	}
	if fi, err := os.Stat(s.Path); err == nil {
		return fi.ModTime()
	}
	return time.Now()
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
