package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Filter selects records; zero fields match everything. Since is
// inclusive, Until exclusive (on the record's Time).
type Filter struct {
	Agent, User, Persona, Tool, Decision string
	// Kind is KindRequest or KindAdmin ("" both).
	Kind         string
	Since, Until time.Time
	// Limit keeps only the newest Limit matches (0: all).
	Limit int
}

func (f *Filter) match(r *Record) bool {
	kind := r.Kind
	if kind == "" {
		kind = KindRequest
	}
	return (f.Agent == "" || r.Agent == f.Agent) &&
		(f.User == "" || r.User == f.User) &&
		(f.Persona == "" || r.Persona == f.Persona) &&
		(f.Tool == "" || r.Tool == f.Tool) &&
		(f.Decision == "" || r.Decision == f.Decision) &&
		(f.Kind == "" || kind == f.Kind) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until))
}

// Search returns the records in dir that match f, newest last (by Time;
// equal times in trail order); with f.Limit, the newest Limit of them (the
// segments are read newest first until that many matched). Closed segments
// are read through their index (index.go): a segment the filter excludes is
// skipped, and only the blocks holding candidates are decompressed; the open
// segment, and one without an index, are scanned. Search does not check the
// chain (Verify does): a record cut short at the end of the newest segment
// (a live node mid-write) ends the scan of that segment; damage elsewhere
// is an error naming the place.
func Search(dir string, f Filter) ([]Record, error) { return search(dir, f, true) }

func search(dir string, f Filter, useIndex bool) ([]Record, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit search: %w", err)
	}
	var out []Record
	if f.Limit <= 0 {
		for i, s := range segs {
			err := scanSegment(s, &f, 0, useIndex, i == len(segs)-1, func(r *Record) bool { out = append(out, *r); return true })
			if err != nil {
				return nil, fmt.Errorf("audit search: %w", err)
			}
		}
	} else {
		var parts [][]Record
		n := 0
		for i := len(segs) - 1; i >= 0 && n < f.Limit; i-- {
			var part []Record
			err := scanSegmentTail(segs[i], &f, f.Limit-n, useIndex, i == len(segs)-1, func(r *Record) bool { part = append(part, *r); return true })
			if err != nil {
				return nil, fmt.Errorf("audit search: %w", err)
			}
			parts, n = append(parts, part), n+len(part)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			out = append(out, parts[i]...)
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return a.Time.Compare(b.Time) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

// Page returns up to limit records that match f with seq greater than
// after, in trail (seq) order, and the cursor to pass as after for the
// next page: the last seq returned, or 0 when no match follows. f.Limit
// is ignored.
func Page(dir string, f Filter, after uint64, limit int) ([]Record, uint64, error) {
	if limit <= 0 {
		return nil, 0, errors.New("audit page: limit must be positive")
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("audit page: %w", err)
	}
	var out []Record
	more := false
	for i, s := range segs {
		// scanSegment skips a segment wholly before the cursor by its index.
		err := scanSegment(s, &f, after, true, i == len(segs)-1, func(r *Record) bool {
			if len(out) == limit {
				more = true
				return false
			}
			out = append(out, *r)
			return true
		})
		if err != nil {
			return nil, 0, fmt.Errorf("audit page: %w", err)
		}
		if more {
			break
		}
	}
	if !more || len(out) == 0 {
		return out, 0, nil
	}
	return out, out[len(out)-1].Seq, nil
}

// scanSegmentTail is scanSegment for the last tail matches of s only
// (in trail order): through the index it reads the candidates from the
// end, a chunk at a time, so the newest matches cost only their blocks.
func scanSegmentTail(s segmentFile, f *Filter, tail int, useIndex, last bool, fn func(*Record) bool) error {
	x := (*segIndex)(nil)
	if useIndex {
		x = readIndex(s)
	}
	if x == nil {
		var all []Record
		if err := scanSegment(s, f, 0, false, last, func(r *Record) bool { all = append(all, *r); return true }); err != nil {
			return err
		}
		for i := max(0, len(all)-tail); i < len(all); i++ {
			fn(&all[i])
		}
		return nil
	}
	ords, all := x.candidates(f)
	if all {
		ords = make([]int, x.Records)
		for i := range ords {
			ords[i] = i
		}
	}
	var got []Record
	for end := len(ords); end > 0 && len(got) < tail; {
		start := max(0, end-max(tail-len(got), 16))
		var part []Record
		err := x.readAt(s, ords[start:end], func(r *Record) bool {
			if f.match(r) {
				part = append(part, *r)
			}
			return true
		})
		if err != nil {
			return err
		}
		got = append(part, got...)
		end = start
	}
	for i := max(0, len(got)-tail); i < len(got); i++ {
		fn(&got[i])
	}
	return nil
}

// scanSegment hands fn the records of s matching f with seq > after, in
// trail order; fn returns false to stop.
func scanSegment(s segmentFile, f *Filter, after uint64, useIndex, last bool, fn func(*Record) bool) error {
	emit := func(r *Record) bool {
		if r.Seq <= after || !f.match(r) {
			return true
		}
		return fn(r)
	}
	if useIndex {
		if x := readIndex(s); x != nil {
			if x.LastSeq <= after && x.LastSeq > 0 {
				return nil
			}
			ords, all := x.candidates(f)
			if all {
				ords = make([]int, x.Records)
				for i := range ords {
					ords[i] = i
				}
			}
			if len(ords) == 0 {
				return nil
			}
			if err := x.readAt(s, ords, emit); !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil // deleted by retention meanwhile
		}
	}
	needles := f.needles()
	err := scanRecords(s, needles, emit)
	if errors.Is(err, os.ErrNotExist) && !s.Compressed {
		// Compressed meanwhile by the running node.
		s.Path, s.Compressed = s.Path+".zst", true
		err = scanRecords(s, needles, emit)
	}
	if errors.Is(err, ErrTruncated) && last && !s.Compressed {
		err = nil
	}
	if errors.Is(err, os.ErrNotExist) {
		err = nil // deleted by retention meanwhile
	}
	return err
}

// needles are byte strings a matching record's JSON must contain: a cheap
// test before decoding (the log encodes with encoding/json, so a field's
// encoding is exactly json.Marshal's).
func (f *Filter) needles() [][]byte {
	var out [][]byte
	for _, kv := range [][2]string{{"agent", f.Agent}, {"user", f.User}, {"persona", f.Persona}, {"tool", f.Tool}, {"decision", f.Decision}} {
		if kv[1] == "" {
			continue
		}
		v, _ := json.Marshal(kv[1])
		out = append(out, append([]byte(`"`+kv[0]+`":`), v...))
	}
	if f.Kind == KindAdmin {
		out = append(out, []byte(`"kind":"admin"`))
	}
	return out
}

func scanRecords(s segmentFile, needles [][]byte, fn func(*Record) bool) error {
	sr, c, err := openSegment(s)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fmt.Errorf("%s: %w", s.Name(), err)
	}
	defer c.Close()
	for {
		p, err := sr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, ErrHash) {
			return fmt.Errorf("%s: record %d: %w", s.Name(), sr.n+1, err)
		}
		skip := false
		for _, n := range needles {
			if !bytes.Contains(p, n) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		var r Record
		if err := json.Unmarshal(p, &r); err != nil {
			return fmt.Errorf("%s: record %d: %w", s.Name(), sr.n, err)
		}
		if !fn(&r) {
			return nil
		}
	}
}
