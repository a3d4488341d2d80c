package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// A segment file is:
//
//	magic "PCAUDIT1"
//	u32 big-endian length | header JSON
//	then per record: u32 big-endian length | record JSON | 32-byte chain hash
//
// The chain hash of a record is SHA-256(previous hash || record JSON); the
// first record's previous hash is the header's prev (the last hash of the
// segment before, or 32 zero bytes for the first segment).
const (
	magic      = "PCAUDIT1"
	maxRecord  = 1 << 20 // a longer frame is damage, not a record
	maxHeader  = 4 << 10
	hashSize   = sha256.Size
	segPrefix  = "segment-"
	segSuffix  = ".log"
	zstSuffix  = ".log.zst"
	ckptFile   = "checkpoints.log"
	pubKeyFile = "audit-pub.pem"
)

// Errors of the segment reader.
var (
	// ErrTruncated: the file ends inside a frame.
	ErrTruncated = errors.New("truncated: the file ends inside a record")
	// ErrHash: a record's stored chain hash does not follow from the
	// records before it and its own bytes.
	ErrHash = errors.New("chain hash mismatch")
)

type segmentHeader struct {
	V       int    `json:"v"`
	Segment uint64 `json:"segment"`
	First   uint64 `json:"first"` // seq of the segment's first record
	Prev    string `json:"prev"`  // hex chain hash the segment continues from
	Node    string `json:"node,omitempty"`
	Created string `json:"created,omitempty"`
}

func segmentName(no uint64) string { return fmt.Sprintf("%s%08d%s", segPrefix, no, segSuffix) }

// parseSegmentName returns a segment file's number and whether it is
// compressed; ok is false for any other file.
func parseSegmentName(name string) (no uint64, compressed, ok bool) {
	rest, found := strings.CutPrefix(name, segPrefix)
	if !found {
		return 0, false, false
	}
	switch {
	case strings.HasSuffix(rest, zstSuffix):
		rest, compressed = strings.TrimSuffix(rest, zstSuffix), true
	case strings.HasSuffix(rest, segSuffix):
		rest = strings.TrimSuffix(rest, segSuffix)
	default:
		return 0, false, false
	}
	if len(rest) < 8 || strings.Trim(rest, "0123456789") != "" {
		return 0, false, false
	}
	no, err := strconv.ParseUint(rest, 10, 64)
	return no, compressed, err == nil && no > 0
}

// segmentFile is one segment on disk.
type segmentFile struct {
	No         uint64
	Path       string
	Compressed bool
}

func (s segmentFile) Name() string { return filepath.Base(s.Path) }

// listSegments returns dir's segments by number. A segment present both raw
// and compressed (a crash during compression) is listed once, raw: the
// compressed copy may be incomplete.
func listSegments(dir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	by := map[uint64]segmentFile{}
	for _, e := range ents {
		no, comp, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if prev, dup := by[no]; dup && !prev.Compressed {
			continue
		}
		by[no] = segmentFile{No: no, Path: filepath.Join(dir, e.Name()), Compressed: comp}
	}
	out := make([]segmentFile, 0, len(by))
	for _, s := range by {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b segmentFile) int { return cmpU64(a.No, b.No) })
	return out, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func encodeHeader(h segmentHeader) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(magic)+4+len(js))
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(js)))
	return append(b, js...), nil
}

// appendFrame frames payload after prev and returns the new chain hash.
func appendFrame(dst, payload []byte, prev [hashSize]byte) ([]byte, [hashSize]byte) {
	h := chainHash(prev, payload)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return append(dst, h[:]...), h
}

func chainHash(prev [hashSize]byte, payload []byte) [hashSize]byte {
	d := sha256.New()
	d.Write(prev[:])
	d.Write(payload)
	var h [hashSize]byte
	d.Sum(h[:0])
	return h
}

// segmentReader reads one segment's frames and recomputes the chain.
type segmentReader struct {
	r      *bufio.Reader
	zr     *zstd.Decoder
	hdr    segmentHeader
	prev   [hashSize]byte // the header's prev
	hdrSum [hashSize]byte // SHA-256 of the magic and header frame
	hdrRaw []byte         // the magic and header frame (replicate.go)
	head   [hashSize]byte // chain hash after the last record read
	stored [hashSize]byte // the last record's stored hash
	n      int            // records read
	off    int64          // bytes consumed (of the decompressed stream)
	buf    []byte
}

// openSegment opens a segment file (decompressing .zst) and reads its
// header. The caller closes the returned closer.
func openSegment(s segmentFile) (*segmentReader, io.Closer, error) { return openSegmentOpts(s, false) }

// openSegmentOpts is openSegment; ignoreCRC decompresses past a zstd
// checksum mismatch, so that the chain can name the damaged record.
func openSegmentOpts(s segmentFile, ignoreCRC bool) (*segmentReader, io.Closer, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, nil, err
	}
	var src io.Reader = f
	var zr *zstd.Decoder
	if s.Compressed {
		zr, err = zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20), zstd.IgnoreChecksum(ignoreCRC))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		src = zr
	}
	sr, err := newSegmentReader(src)
	if sr != nil {
		sr.zr = zr
	}
	c := closerFunc(func() error {
		if zr != nil {
			zr.Close()
		}
		return f.Close()
	})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return sr, c, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// newSegmentReader reads the magic and the header from r.
func newSegmentReader(r io.Reader) (*segmentReader, error) {
	s := &segmentReader{r: bufio.NewReaderSize(r, 64<<10)}
	var m [len(magic) + 4]byte
	if _, err := io.ReadFull(s.r, m[:]); err != nil {
		return nil, fmt.Errorf("header: %w", readErr(err))
	}
	if string(m[:len(magic)]) != magic {
		return nil, fmt.Errorf("header: not an audit segment (magic %q)", m[:len(magic)])
	}
	n := binary.BigEndian.Uint32(m[len(magic):])
	if n == 0 || n > maxHeader {
		return nil, fmt.Errorf("header: length %d out of range", n)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(s.r, js); err != nil {
		return nil, fmt.Errorf("header: %w", readErr(err))
	}
	if err := json.Unmarshal(js, &s.hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if s.hdr.V != 1 {
		return nil, fmt.Errorf("header: version %d, want 1", s.hdr.V)
	}
	p, err := hex.DecodeString(s.hdr.Prev)
	if err != nil || len(p) != hashSize {
		return nil, fmt.Errorf("header: prev %q is not a %d-byte hex hash", s.hdr.Prev, hashSize)
	}
	copy(s.prev[:], p)
	s.hdrRaw = append(m[:], js...)
	s.hdrSum = sha256.Sum256(s.hdrRaw)
	s.head = s.prev
	s.off = int64(len(m) + len(js))
	return s, nil
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrTruncated
	}
	return err
}

// next returns the next record's bytes (valid until the next call): io.EOF
// at a clean end, ErrTruncated when the file ends inside a frame, and
// ErrHash (with the record, which is still returned) when the stored hash
// does not follow. After ErrHash the chain continues from the stored hash,
// so one damaged record is reported once, not for every record after it.
func (s *segmentReader) next() ([]byte, error) {
	var l [4]byte
	k, err := io.ReadFull(s.r, l[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		if k > 0 {
			return nil, ErrTruncated
		}
		return nil, readErr(err)
	}
	n := binary.BigEndian.Uint32(l[:])
	if n == 0 || n > maxRecord {
		return nil, fmt.Errorf("frame length %d out of range (1..%d): the length field is damaged", n, maxRecord)
	}
	if cap(s.buf) < int(n)+hashSize {
		s.buf = make([]byte, int(n)+hashSize)
	}
	b := s.buf[:int(n)+hashSize]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, readErr(err)
	}
	payload := b[:n]
	copy(s.stored[:], b[n:])
	s.n++
	s.off += 4 + int64(len(b))
	h := chainHash(s.head, payload)
	if h != s.stored {
		s.head = s.stored
		return payload, ErrHash
	}
	s.head = h
	return payload, nil
}

// recordSeq reads a record's seq: fast for the log's own encoding
// ({"seq":N,...), by decoding otherwise.
func recordSeq(payload []byte) (uint64, error) {
	if rest, ok := strings.CutPrefix(string(payload[:min(len(payload), 32)]), `{"seq":`); ok {
		end := strings.IndexByte(rest, ',')
		if end > 0 {
			if n, err := strconv.ParseUint(rest[:end], 10, 64); err == nil {
				return n, nil
			}
		}
	}
	var r struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return 0, fmt.Errorf("record is not JSON: %w", err)
	}
	if r.Seq == nil {
		return 0, errors.New("record has no seq")
	}
	return *r.Seq, nil
}
