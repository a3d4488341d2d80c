package audit

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// VerifyOptions are VerifyWith's options.
type VerifyOptions struct {
	// Keys verify the signatures (default: the trail's audit-pub.pem).
	Keys []*ecdsa.PublicKey
	// From and To bound the part of the trail verified (inclusive; zero:
	// unbounded).
	From, To Bound
}

// Bound is one end of a range of the trail: a seq, or a time.
type Bound struct {
	Seq  uint64
	Time time.Time
}

// IsZero reports whether b is unbounded.
func (b Bound) IsZero() bool { return b.Seq == 0 && b.Time.IsZero() }

func (b Bound) String() string {
	switch {
	case b.Seq > 0:
		return "seq " + strconv.FormatUint(b.Seq, 10)
	case !b.Time.IsZero():
		return b.Time.UTC().Format(time.RFC3339Nano)
	}
	return "…"
}

// ParseBound reads a range end: a seq ("12345" or "seq:12345"), an RFC
// 3339 time, or a duration before now ("24h"). "" is unbounded.
func ParseBound(s string, now time.Time) (Bound, error) {
	if s == "" {
		return Bound{}, nil
	}
	if n, ok := strings.CutPrefix(s, "seq:"); ok || strings.Trim(s, "0123456789") == "" {
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil || v == 0 {
			return Bound{}, fmt.Errorf("%q: a seq is a positive integer", s)
		}
		return Bound{Seq: v}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return Bound{Time: t}, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil || d < 0 {
		return Bound{}, fmt.Errorf("%q is neither a seq, an RFC 3339 time nor a duration (24h)", s)
	}
	return Bound{Time: now.Add(-d)}, nil
}

// segRange is what is known of a segment's records without reading it:
// from its index, else from its final checkpoint (seq only).
type segRange struct {
	firstSeq, lastSeq uint64 // 0: unknown
	minT, maxT        int64  // 0: unknown
}

func rangeOf(s segmentFile, cps []checkpointLine) segRange {
	if x := readIndex(s); x != nil {
		return segRange{x.FirstSeq, x.LastSeq, x.MinTime, x.MaxTime}
	}
	for _, c := range cps {
		if c.Final && c.Records > 0 {
			return segRange{firstSeq: c.LastSeq - uint64(c.Records) + 1, lastSeq: c.LastSeq}
		}
	}
	return segRange{}
}

// selectSegments keeps the segments that overlap [from, to] (or may: an
// unknown range is kept).
func selectSegments(segs []segmentFile, bySeg map[uint64][]checkpointLine, from, to Bound) []segmentFile {
	var out []segmentFile
	for _, s := range segs {
		g := rangeOf(s, bySeg[s.No])
		switch {
		case from.Seq > 0 && g.lastSeq > 0 && g.lastSeq < from.Seq:
		case to.Seq > 0 && g.firstSeq > 0 && g.firstSeq > to.Seq:
		case !from.Time.IsZero() && g.maxT > 0 && g.maxT < from.Time.UnixNano():
		case !to.Time.IsZero() && g.minT > 0 && g.minT > to.Time.UnixNano():
		default:
			out = append(out, s)
		}
	}
	return out
}

// retained is what the valid retention markers say was deleted.
type retained struct {
	RetentionMarker
	head [hashSize]byte
}

// verifyRetention reads retention.log: the newest marker that verifies
// (signed by the trail's key; unsigned ones count only when there is no
// key) says which segments retention deleted.
func verifyRetention(dir string, r *Report, keys map[string]*ecdsa.PublicKey) (retained, error) {
	var out retained
	data, err := os.ReadFile(filepath.Join(dir, retentionFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	ms, bad := parseRetention(data)
	for _, e := range bad {
		r.problem(retentionFile, 0, 0, "%v", e)
	}
	for i, m := range ms {
		if err := m.verify(keys); err != nil && !(m.Sig == "" && len(keys) == 0) {
			r.problem(retentionFile, 0, 0, "line %d (through %s): %v: it vouches for no deletion", i+1, segmentName(m.Through), err)
			continue
		}
		if m.Through > out.Through {
			out.RetentionMarker = m
			h, _ := hex.DecodeString(m.Head) // parseRetention checked it
			copy(out.head[:], h)
		}
	}
	if out.Through > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("retention deleted %s..%s (seq 1..%d) as recorded in %s", segmentName(1), segmentName(out.Through), out.LastSeq, retentionFile))
	}
	return out, nil
}
