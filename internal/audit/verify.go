package audit

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Problem is one place where the trail is not intact.
type Problem struct {
	File   string // segment file or checkpoints.log ("" for the trail as a whole)
	Record int    // 1-based record number within File; 0 when not about one record
	Seq    uint64 // the record's seq when known
	Msg    string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if p.Record > 0 {
		fmt.Fprintf(&b, "record %d", p.Record)
		if p.Seq > 0 {
			fmt.Fprintf(&b, " (seq %d)", p.Seq)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Report is what Verify found.
type Report struct {
	Segments    int
	Records     uint64
	Bytes       int64 // uncompressed segment bytes read
	Checkpoints int
	Signed      int // checkpoints whose signature verified
	Problems    []Problem
	Notes       []string // facts an auditor should know that are not damage
}

// OK reports whether the trail is intact.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(file string, rec int, seq uint64, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{File: file, Record: rec, Seq: seq, Msg: fmt.Sprintf(format, args...)})
}

// Verify walks every segment and checkpoint in dir, offline, and reports
// every place the trail is not intact: a changed byte, a removed, reordered
// or inserted record, a removed segment, a cut tail, a checkpoint that does
// not match the records, or one not signed by keys. With no keys it reads
// dir/audit-pub.pem (an auditor should pass a copy kept elsewhere: a key
// read from the audited directory proves only consistency). Without any
// key, checkpoints are checked against the records but not for a
// signature, and the report says so. The error is for a directory that
// cannot be read at all.
func Verify(dir string, keys ...*ecdsa.PublicKey) (*Report, error) {
	return VerifyWith(dir, VerifyOptions{Keys: keys})
}

// VerifyWith is Verify with options: the keys, and a range (From, To) of
// the trail to verify. With a range only the segments that overlap it are
// read; the first of them is checked against the signed final checkpoint
// of the segment before it (the chain continues across the range's edge),
// and segments outside the range being absent is no problem (an exported
// bundle holds only its range). Records are checked whole segments at a
// time, so a range verifies at least what it names.
func VerifyWith(dir string, opts VerifyOptions) (*Report, error) {
	keys := opts.Keys
	r := &Report{}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("audit verify: %s is not a directory", dir)
	}
	if len(keys) == 0 {
		ks, err := ReadPublicKeys(filepath.Join(dir, pubKeyFile))
		switch {
		case err == nil:
			keys = ks
			r.Notes = append(r.Notes, "public key read from the audited directory ("+pubKeyFile+"): pass --pub with a copy kept elsewhere to rule out a replaced key")
		case errors.Is(err, os.ErrNotExist):
		default:
			r.problem(pubKeyFile, 0, 0, "%v", err)
		}
	}
	byID := map[string]*ecdsa.PublicKey{}
	for _, k := range keys {
		id, err := KeyID(k)
		if err != nil {
			return nil, fmt.Errorf("audit verify: %w", err)
		}
		byID[id] = k
	}

	data, err := os.ReadFile(filepath.Join(dir, ckptFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	cps, bad, torn := parseCheckpoints(data)
	for _, e := range bad {
		r.problem("", 0, 0, "%v", e)
	}
	if torn {
		r.problem(ckptFile, 0, 0, "ends inside a line (cut, or a crash mid-write the node has not repaired yet)")
	}
	r.Checkpoints = len(cps)
	bySeg := map[uint64][]checkpointLine{}
	unsigned := 0
	for _, c := range cps {
		if err := c.verify(byID); err != nil {
			if c.Sig == "" && len(byID) == 0 {
				unsigned++
			} else {
				r.problem(ckptFile, 0, 0, "line %d (segment %d, %d records): %v", c.Line, c.Segment, c.Records, err)
				continue // a checkpoint that does not verify vouches for nothing
			}
		} else {
			r.Signed++
		}
		bySeg[c.Segment] = append(bySeg[c.Segment], c)
	}
	if unsigned > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d checkpoints are unsigned (the node had no HSM): the chain shows changes, but anyone able to write the directory could rewrite it consistently", unsigned))
	}

	ret, err := verifyRetention(dir, r, byID)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	ranged := !opts.From.IsZero() || !opts.To.IsZero()
	if ranged {
		segs = selectSegments(segs, bySeg, opts.From, opts.To)
		r.Notes = append(r.Notes, fmt.Sprintf("range %s..%s: %d segments verified", opts.From, opts.To, len(segs)))
	}
	r.Segments = len(segs)
	if len(segs) == 0 {
		for no := range bySeg {
			if no > ret.Through && !ranged {
				r.problem(segmentName(no), 0, 0, "missing: checkpoints vouch for it")
			}
		}
		slices.SortFunc(r.Problems, func(a, b Problem) int { return strings.Compare(a.File, b.File) })
		return r, nil
	}
	if len(byID) > 0 && len(cps) == 0 {
		r.problem(ckptFile, 0, 0, "missing or empty, but the trail has a public key: its checkpoints were removed")
	}
	present := map[uint64]bool{}
	for _, s := range segs {
		present[s.No] = true
	}
	maxNo := segs[len(segs)-1].No
	for no, cl := range bySeg {
		if !present[no] && no > maxNo && opts.To.IsZero() {
			r.problem(segmentName(no), 0, 0, "missing: %s line %d vouches for its %d records (segments after the last present one were removed)", ckptFile, cl[0].Line, cl[len(cl)-1].Records)
		}
	}
	if segs[0].No > ret.Through+1 && opts.From.IsZero() {
		if ret.Through > 0 {
			r.problem(segmentName(ret.Through+1), 0, 0, "missing: the trail starts at %s, but retention deleted only up to %s (%s): segments after those were removed", segs[0].Name(), segmentName(ret.Through), retentionFile)
		} else {
			r.problem(segmentName(1), 0, 0, "missing: the trail starts at %s (segments before it were removed)", segs[0].Name())
		}
	}

	var prevHead [hashSize]byte
	var nextSeq uint64 = 1
	known := segs[0].No == 1 // prevHead and nextSeq are trustworthy
	if ret.Through > 0 && segs[0].No == ret.Through+1 {
		prevHead, nextSeq, known = ret.head, ret.LastSeq+1, true
	}
	prevNo := segs[0].No - 1
	for i, s := range segs {
		if s.No != prevNo+1 && prevNo != 0 {
			for m := prevNo + 1; m < s.No; m++ {
				r.problem(segmentName(m), 0, 0, "missing: %s and %s are present", segmentName(prevNo), s.Name())
			}
			known = false
		}
		prevNo = s.No
		if !known {
			// Continue from the signed final checkpoint of the segment
			// before, when there is one: the chain is still checked
			// across a gap or the edge of a range.
			if h, seq, ok := finalHead(bySeg[s.No-1]); ok {
				prevHead, nextSeq, known = h, seq+1, true
			}
		}
		last := i == len(segs)-1
		sub := &Report{}
		head, seq, ok := verifySegment(sub, s, bySeg[s.No], prevHead, nextSeq, known, last, false)
		if s.Compressed && !sub.OK() {
			// The decompressor may refuse a damaged file before the chain
			// gets to the record: read it again past checksums to name it.
			again := &Report{}
			verifySegment(again, s, bySeg[s.No], prevHead, nextSeq, known, last, true)
			seen := map[string]bool{}
			var merged []Problem
			for _, p := range append(again.Problems, sub.Problems...) {
				if !seen[p.String()] {
					seen[p.String()] = true
					merged = append(merged, p)
				}
			}
			sub.Problems = merged
		}
		r.Records += sub.Records
		r.Bytes += sub.Bytes
		r.Problems = append(r.Problems, sub.Problems...)
		r.Notes = append(r.Notes, sub.Notes...)
		prevHead, nextSeq, known = head, seq, ok
	}
	return r, nil
}

// verifySegment checks one segment and returns the chain state after it.
func verifySegment(r *Report, s segmentFile, cps []checkpointLine, prev [hashSize]byte, nextSeq uint64, known, last, ignoreCRC bool) ([hashSize]byte, uint64, bool) {
	name := s.Name()
	sr, c, err := openSegmentOpts(s, ignoreCRC)
	if err != nil {
		r.problem(name, 0, 0, "%v", err)
		return prev, nextSeq, false
	}
	defer c.Close()
	if sr.hdr.Segment != s.No {
		r.problem(name, 0, 0, "header names segment %d: the file was renamed or swapped", sr.hdr.Segment)
	}
	if known {
		if sr.prev != prev {
			r.problem(name, 0, 0, "its chain starts from %s, but the segment before ends at %s: a segment between them is missing or was altered", short(sr.prev[:]), short(prev[:]))
		}
		if sr.hdr.First != nextSeq {
			r.problem(name, 0, 0, "starts at seq %d, want %d: records between segments are missing", sr.hdr.First, nextSeq)
		}
	}
	// The chain hash after k records, for every k a checkpoint names.
	want := map[int]bool{}
	final := -1
	for _, c := range cps {
		want[c.Records] = true
		if c.Final {
			final = max(final, c.Records)
		}
	}
	heads := map[int][hashSize]byte{0: sr.prev}
	expect := sr.hdr.First
	var lastSeq uint64
	for {
		p, err := sr.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, ErrHash) {
			r.problem(name, sr.n+1, 0, "%v", err)
			break
		}
		seq, serr := recordSeq(p)
		switch {
		case serr != nil:
			r.problem(name, sr.n, 0, "%v", serr)
		case errors.Is(err, ErrHash) && seq == expect:
			r.problem(name, sr.n, seq, "its bytes do not match its chain hash: the record was changed")
		case errors.Is(err, ErrHash):
			r.problem(name, sr.n, seq, "seq %d where %d was due and the chain breaks: a record was removed, reordered or inserted here", seq, expect)
		case seq != expect:
			r.problem(name, sr.n, seq, "seq %d where %d was due: records were renumbered", seq, expect)
		}
		if serr == nil {
			expect, lastSeq = seq+1, seq
		} else {
			expect++
		}
		if want[sr.n] {
			heads[sr.n] = sr.head
		}
		r.Records++
	}
	r.Bytes += sr.off
	n := sr.n
	hdrSum := hex.EncodeToString(sr.hdrSum[:])
	for _, c := range cps {
		if c.Header != hdrSum {
			r.problem(name, 0, 0, "its header does not match %s line %d: the header was changed", ckptFile, c.Line)
		}
		h, ok := heads[c.Records]
		switch {
		case c.Records > n:
			r.problem(name, 0, 0, "has %d records, but %s line %d vouches for %d: records %d..%d were cut off", n, ckptFile, c.Line, c.Records, n+1, c.Records)
		case ok && hex.EncodeToString(h[:]) != c.Head:
			r.problem(name, 0, 0, "records 1..%d do not match %s line %d: one of them was changed, removed or reordered", c.Records, ckptFile, c.Line)
		}
	}
	switch {
	case final >= 0 && n > final:
		r.problem(name, final+1, 0, "%d records follow the segment's final checkpoint (%s): appended after it was closed", n-final, ckptFile)
	case final < 0 && (s.Compressed || !last):
		r.problem(name, 0, 0, "closed without a final checkpoint (its checkpoints were removed, or the node never restarted after a crash)")
	case final < 0:
		covered := 0
		for _, c := range cps {
			covered = max(covered, c.Records)
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%s is still open (the node is running, or was killed and not restarted): %d of its %d records are covered by a checkpoint", name, covered, n))
	}
	if lastSeq == 0 {
		lastSeq = sr.hdr.First - 1
	}
	return sr.head, lastSeq + 1, true
}

// finalHead is the head and last seq of a segment's final checkpoint.
func finalHead(cps []checkpointLine) ([hashSize]byte, uint64, bool) {
	var h [hashSize]byte
	for _, c := range cps {
		if c.Final {
			b, err := hex.DecodeString(c.Head)
			if err == nil && len(b) == hashSize {
				copy(h[:], b)
				return h, c.LastSeq, true
			}
		}
	}
	return h, 0, false
}

func short(h []byte) string { return hex.EncodeToString(h[:6]) }
