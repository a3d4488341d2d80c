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
	Agent, Persona, Tool, Decision string
	Since, Until                   time.Time
	// Limit keeps only the newest Limit matches (0: all).
	Limit int
}

func (f *Filter) match(r *Record) bool {
	return (f.Agent == "" || r.Agent == f.Agent) &&
		(f.Persona == "" || r.Persona == f.Persona) &&
		(f.Tool == "" || r.Tool == f.Tool) &&
		(f.Decision == "" || r.Decision == f.Decision) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until))
}

// Search returns the records in dir that match f, newest last (by Time;
// equal times in trail order). It is a linear scan of every segment: fine
// for a node's local trail and for this first slice, not an index. It reads
// what is readable and does not check the chain (Verify does): a record cut
// short at the end of the newest segment (a live node mid-write) ends the
// scan of that segment; damage elsewhere is an error naming the place.
func Search(dir string, f Filter) ([]Record, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit search: %w", err)
	}
	var out []Record
	needles := f.needles()
	for i, s := range segs {
		err := scanRecords(s, needles, func(r *Record) {
			if f.match(r) {
				out = append(out, *r)
				if f.Limit > 0 && len(out) >= 2*f.Limit {
					// Keep the newest Limit seen so far: anything
					// dropped has Limit newer records ahead of it.
					slices.SortStableFunc(out, func(a, b Record) int { return a.Time.Compare(b.Time) })
					out = append(out[:0], out[len(out)-f.Limit:]...)
				}
			}
		})
		if errors.Is(err, os.ErrNotExist) && !s.Compressed {
			// Compressed meanwhile by the running node.
			s.Path, s.Compressed = s.Path+".zst", true
			err = scanRecords(s, needles, func(r *Record) {
				if f.match(r) {
					out = append(out, *r)
				}
			})
		}
		if errors.Is(err, ErrTruncated) && i == len(segs)-1 && !s.Compressed {
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit search: %w", err)
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return a.Time.Compare(b.Time) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

// needles are byte strings a matching record's JSON must contain: a cheap
// test before decoding (the log encodes with encoding/json, so a field's
// encoding is exactly json.Marshal's).
func (f *Filter) needles() [][]byte {
	var out [][]byte
	for _, kv := range [][2]string{{"agent", f.Agent}, {"persona", f.Persona}, {"tool", f.Tool}, {"decision", f.Decision}} {
		if kv[1] == "" {
			continue
		}
		v, _ := json.Marshal(kv[1])
		out = append(out, append([]byte(`"`+kv[0]+`":`), v...))
	}
	return out
}

func scanRecords(s segmentFile, needles [][]byte, fn func(*Record)) error {
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
		fn(&r)
	}
}
