package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A Batch is what one raft entry carries of a node's trail (see the
// package doc, "Replication"): the records of one or more group commits,
// framed exactly as in the node's segments, so that a replica is a
// byte-identical copy of the node's own segments and the node's signed
// checkpoints verify against it.
//
// Encoding (then zstd-compressed as a whole):
//
//	"PCAB1"
//	uvarint parts, then per part:
//	  uvarint segment | uvarint start | uvarint len(header) | header
//	  | prev (32 bytes) | uvarint first seq | uvarint len(frames) | frames
//	uvarint checkpoints, then per checkpoint: uvarint len | JSON
//	uvarint len(pub keys) | pub keys
//
// A part is a run of records of one segment: start is how many records
// of the segment precede it, header the segment's header bytes (magic and
// header frame; every part carries it, so that a node that missed the
// start of a segment can still write the rest), prev the chain hash before
// its first record. PubKeys is the node's audit public keys (PEM), carried
// by the first batch after a start.
type Batch struct {
	Parts []Part
	// Checkpoints are the checkpoints the node wrote since the batch
	// before (final ones included).
	Checkpoints []Checkpoint
	PubKeys     []byte
}

// Part is a run of records of one segment.
type Part struct {
	Segment  uint64
	Start    int
	Header   []byte
	Prev     [hashSize]byte
	FirstSeq uint64
	Frames   []byte
	// Set by DecodeBatch (and by the log when it ships a part):
	N       int
	LastSeq uint64
	Head    [hashSize]byte
}

const batchMagic = "PCAB1"

// Bounds of a decoded batch: a larger one is damage (or an attack), not
// a batch the log makes.
const (
	maxBatchBytes       = 64 << 20 // decompressed
	maxBatchParts       = 4096
	maxBatchCheckpoints = 4096
)

var (
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
	zinitErr error
	zonce    sync.Once
)

func codecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zonce.Do(func() {
		zenc, zinitErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if zinitErr == nil {
			zdec, zinitErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBatchBytes))
		}
	})
	return zenc, zdec, zinitErr
}

// Encode serializes and compresses b.
func (b *Batch) Encode() ([]byte, error) {
	var out []byte
	out = append(out, batchMagic...)
	out = binary.AppendUvarint(out, uint64(len(b.Parts)))
	for _, p := range b.Parts {
		out = binary.AppendUvarint(out, p.Segment)
		out = binary.AppendUvarint(out, uint64(p.Start))
		out = binary.AppendUvarint(out, uint64(len(p.Header)))
		out = append(out, p.Header...)
		out = append(out, p.Prev[:]...)
		out = binary.AppendUvarint(out, p.FirstSeq)
		out = binary.AppendUvarint(out, uint64(len(p.Frames)))
		out = append(out, p.Frames...)
	}
	out = binary.AppendUvarint(out, uint64(len(b.Checkpoints)))
	for i := range b.Checkpoints {
		js, err := json.Marshal(&b.Checkpoints[i])
		if err != nil {
			return nil, fmt.Errorf("audit batch: %w", err)
		}
		out = binary.AppendUvarint(out, uint64(len(js)))
		out = append(out, js...)
	}
	out = binary.AppendUvarint(out, uint64(len(b.PubKeys)))
	out = append(out, b.PubKeys...)
	enc, _, err := codecs()
	if err != nil {
		return nil, fmt.Errorf("audit batch: %w", err)
	}
	return enc.EncodeAll(out, nil), nil
}

// Records is the number of records in b.
func (b *Batch) Records() int {
	n := 0
	for _, p := range b.Parts {
		n += p.N
	}
	return n
}

// errBatch prefixes every decoding error.
var errBatch = errors.New("audit batch")

type batchReader struct {
	b   []byte
	err error
}

func (r *batchReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errBatch, fmt.Sprintf(format, args...))
	}
}

func (r *batchReader) uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("%s: not a varint", what)
		return 0
	}
	if v > limit {
		r.fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *batchReader) bytes(what string, n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s: %d bytes announced, %d left", what, n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// DecodeBatch decompresses and parses a batch and checks that it is one
// intact run of a chain: every record's chain hash follows from the one
// before and its bytes, seqs count up by one without gaps, and each part
// continues the one before (the same segment, or the next one with its
// header). Anything else is an error naming what is wrong.
func DecodeBatch(data []byte) (*Batch, error) {
	_, dec, err := codecs()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBatch, err)
	}
	raw, err := dec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", errBatch, err)
	}
	if len(raw) > maxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes decompressed exceeds %d", errBatch, len(raw), maxBatchBytes)
	}
	if !bytes.HasPrefix(raw, []byte(batchMagic)) {
		return nil, fmt.Errorf("%w: not a batch (magic)", errBatch)
	}
	r := &batchReader{b: raw[len(batchMagic):]}
	np := r.uvarint("parts", maxBatchParts)
	b := &Batch{}
	for i := uint64(0); i < np && r.err == nil; i++ {
		var p Part
		p.Segment = r.uvarint("segment", 1<<40)
		p.Start = int(r.uvarint("start", 1<<40))
		p.Header = r.bytes("header", r.uvarint("header length", uint64(maxHeader+len(magic)+4)))
		copy(p.Prev[:], r.bytes("prev", hashSize))
		p.FirstSeq = r.uvarint("first seq", 1<<62)
		p.Frames = r.bytes("frames", r.uvarint("frames length", maxBatchBytes))
		if r.err != nil {
			break
		}
		if err := p.check(); err != nil {
			r.fail("part %d (segment %d): %v", i+1, p.Segment, err)
			break
		}
		if i > 0 {
			q := &b.Parts[i-1]
			switch {
			case p.Prev != q.Head || p.FirstSeq != q.LastSeq+1:
				r.fail("part %d does not continue the chain of part %d", i+1, i)
			case p.Segment == q.Segment && p.Start != q.Start+q.N:
				r.fail("part %d starts at record %d of segment %d, want %d", i+1, p.Start+1, p.Segment, q.Start+q.N+1)
			case p.Segment != q.Segment && (p.Segment != q.Segment+1 || p.Start != 0):
				r.fail("part %d (segment %d) does not follow segment %d", i+1, p.Segment, q.Segment)
			}
		}
		b.Parts = append(b.Parts, p)
	}
	nc := r.uvarint("checkpoints", maxBatchCheckpoints)
	for i := uint64(0); i < nc && r.err == nil; i++ {
		js := r.bytes("checkpoint", r.uvarint("checkpoint length", 64<<10))
		if r.err != nil {
			break
		}
		cps, bad, _ := parseCheckpoints(append(js, '\n'))
		if len(bad) > 0 || len(cps) != 1 {
			r.fail("checkpoint %d is not a checkpoint", i+1)
			break
		}
		b.Checkpoints = append(b.Checkpoints, cps[0].Checkpoint)
	}
	if pk := r.bytes("public keys", r.uvarint("public keys length", 64<<10)); r.err == nil && len(pk) > 0 {
		if _, err := ParsePublicKeys(pk); err != nil {
			r.fail("%v", err)
		}
		b.PubKeys = pk
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err == nil && len(b.Parts) == 0 && len(b.Checkpoints) == 0 {
		r.fail("no records and no checkpoints")
	}
	if r.err != nil {
		return nil, r.err
	}
	return b, nil
}

// check parses p's header and frames and sets N, LastSeq and Head.
func (p *Part) check() error {
	if p.Segment == 0 || p.FirstSeq == 0 {
		return errors.New("segment and first seq must be >= 1")
	}
	if len(p.Header) == 0 {
		return errors.New("no segment header")
	}
	sr, err := newSegmentReader(bytes.NewReader(p.Header))
	if err != nil {
		return err
	}
	if sr.off != int64(len(p.Header)) {
		return errors.New("bytes after the header")
	}
	if sr.hdr.Segment != p.Segment || (p.Start == 0 && (sr.hdr.First != p.FirstSeq || sr.prev != p.Prev)) {
		return fmt.Errorf("the header (segment %d, first %d, prev %s) does not match the part", sr.hdr.Segment, sr.hdr.First, short(sr.prev[:]))
	}
	head, seq, rest := p.Prev, p.FirstSeq, p.Frames
	for len(rest) > 0 {
		if len(rest) < 4 {
			return fmt.Errorf("record %d: %v", p.N+1, ErrTruncated)
		}
		n := binary.BigEndian.Uint32(rest)
		if n == 0 || n > maxRecord {
			return fmt.Errorf("record %d: frame length %d out of range", p.N+1, n)
		}
		if uint64(len(rest)) < 4+uint64(n)+hashSize {
			return fmt.Errorf("record %d: %v", p.N+1, ErrTruncated)
		}
		payload := rest[4 : 4+n]
		var stored [hashSize]byte
		copy(stored[:], rest[4+n:])
		if chainHash(head, payload) != stored {
			return fmt.Errorf("record %d: %v", p.N+1, ErrHash)
		}
		got, err := recordSeq(payload)
		if err != nil {
			return fmt.Errorf("record %d: %v", p.N+1, err)
		}
		if got != seq {
			return fmt.Errorf("record %d: seq %d, want %d", p.N+1, got, seq)
		}
		head, seq, rest = stored, seq+1, rest[4+n+hashSize:]
		p.N++
	}
	if p.N == 0 {
		return errors.New("no records")
	}
	p.Head, p.LastSeq = head, seq-1
	return nil
}

// HeadHex is the hex chain hash after the batch ("" for a batch of
// checkpoints only).
func (b *Batch) HeadHex() string {
	if len(b.Parts) == 0 {
		return ""
	}
	h := b.Parts[len(b.Parts)-1].Head
	return hex.EncodeToString(h[:])
}
