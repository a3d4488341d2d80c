package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// readSegmentBytes reads a whole segment from data as Verify and Search do.
func readSegmentBytes(data []byte) (int, error) {
	sr, err := newSegmentReader(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	for {
		p, err := sr.next()
		if err == io.EOF {
			return sr.n, nil
		}
		if err != nil && !errors.Is(err, ErrHash) {
			return sr.n, err
		}
		if _, err := recordSeq(p); err != nil {
			return sr.n, err
		}
	}
}

// FuzzSegmentReader: any bytes give records or an error, never a panic or
// a runaway allocation.
func FuzzSegmentReader(f *testing.F) {
	dir := f.TempDir()
	writeTrail(f, dir, nil, 20)
	raw := rawSegment(f, segPath(dir, 1))
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte(magic))
	f.Add([]byte(magic + "\x00\x00\x00\x02{}"))
	f.Add([]byte(magic + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := readSegmentBytes(data)
		if err == nil && n < 0 {
			t.Fatal("negative record count")
		}
	})
}

// FuzzCompressedSegment: the same through the zstd decoder and Verify.
func FuzzCompressedSegment(f *testing.F) {
	dir := f.TempDir()
	writeTrail(f, dir, nil, 20)
	zst, err := os.ReadFile(segPath(dir, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(zst)
	f.Add(zst[:len(zst)/3])
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		os.WriteFile(segPath(d, 1)+".zst", data, 0o600)
		if _, err := Verify(d); err != nil {
			t.Fatalf("verify of a readable directory failed instead of reporting: %v", err)
		}
		_, _ = Search(d, Filter{Agent: "agent-1"}) // an error is fine; a panic is not
	})
}

// FuzzCheckpoints: checkpoints.log lines of any shape are parsed or
// reported, never a panic.
func FuzzCheckpoints(f *testing.F) {
	dir := f.TempDir()
	writeTrail(f, dir, nil, 60)
	data, err := os.ReadFile(dir + "/" + ckptFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"segment":1,"records":-1,"head":"00"}` + "\n"))
	f.Add([]byte("{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cps, _, _ := parseCheckpoints(data)
		for _, c := range cps {
			_ = c.verify(nil)
			_ = c.signedBytes()
		}
	})
}

// FuzzParseIndex: any bytes as an index file are parsed or refused, and a
// parsed one answers candidate queries without panicking.
func FuzzParseIndex(f *testing.F) {
	b := newIndexBuilder(1)
	for i := range 20 {
		b.add([]byte(fmt.Sprintf(`{"seq":%d,"time":"2026-12-04T10:00:%02dZ","agent":"a%d","persona":"p","tool":"t","decision":"allow"}`, i+1, i, i%3)))
	}
	b.h.Blocks = []indexBlock{{}, {R: 10, C: 100, U: 1000}}
	b.h.SegSize = 200
	good, _ := b.encode()
	f.Add(good)
	f.Add([]byte(idxMagic + "\x00\x00\x00\x02{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := parseIndex(data)
		if err != nil {
			return
		}
		for _, flt := range []Filter{{Agent: "a1"}, {Agent: "a1", Decision: "allow"}, {}} {
			ords, _ := x.candidates(&flt)
			for _, o := range ords {
				if o < 0 || o >= x.Records {
					t.Fatalf("ordinal %d of %d records", o, x.Records)
				}
			}
		}
	})
}

func FuzzParseRetention(f *testing.F) {
	f.Add([]byte(`{"through":3,"lastSeq":90,"head":"` + strings.Repeat("ab", 32) + `","reason":"age"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _ := parseRetention(data)
		for _, m := range ms {
			if m.Through == 0 || len(m.Head) != 2*hashSize {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}

func FuzzParseBound(f *testing.F) {
	for _, s := range []string{"42", "seq:7", "2026-12-04T09:00:00Z", "1h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBound(s, t0)
		if err == nil && s != "" && b.IsZero() {
			t.Fatalf("ParseBound(%q) accepted as unbounded", s)
		}
	})
}

// FuzzDecodeBatch: any bytes (compressed or not) give a batch that is one
// intact run of a chain, or an error; never a panic or a runaway
// allocation. Raw batch bodies are compressed first, so the fuzzer
// reaches the parser behind the decompressor.
func FuzzDecodeBatch(f *testing.F) {
	dir := f.TempDir()
	l, err := New(Config{Dir: dir, Node: "n1", SegmentBytes: 4 << 10, BufferBytes: 1 << 10})
	if err != nil {
		f.Fatal(err)
	}
	var parts []Part
	l.flushMu.Lock()
	l.ship = func(p Part) { parts = append(parts, p) }
	l.flushMu.Unlock()
	for i := range 40 {
		l.Write(decision(i))
		if i%10 == 9 {
			l.Flush()
		}
	}
	l.Close()
	good := &Batch{Parts: parts, Checkpoints: []Checkpoint{{Segment: 1, Records: 3, LastSeq: 3, Head: strings.Repeat("00", 32), Header: strings.Repeat("11", 32)}}}
	enc, _, _ := codecs()
	payload, err := good.Encode()
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := zdecAll(payload)
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte(batchMagic))
	f.Add([]byte(batchMagic + "\x01\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeBatch(enc.EncodeAll(body, nil))
		if err != nil {
			return
		}
		for i, p := range b.Parts {
			if p.N == 0 || p.LastSeq != p.FirstSeq+uint64(p.N)-1 {
				t.Fatalf("part %d: %d records, seqs %d..%d", i, p.N, p.FirstSeq, p.LastSeq)
			}
		}
		// What decodes encodes to what decodes the same.
		again, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		b2, err := DecodeBatch(again)
		if err != nil || b2.Records() != b.Records() || b2.HeadHex() != b.HeadHex() {
			t.Fatalf("re-encoded batch: %v", err)
		}
	})
}

func zdecAll(b []byte) ([]byte, error) {
	_, dec, err := codecs()
	if err != nil {
		return nil, err
	}
	return dec.DecodeAll(b, nil)
}
