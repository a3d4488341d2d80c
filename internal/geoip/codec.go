package geoip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/klauspost/compress/zstd"
)

// Serialized form, for replication through raft:
//
//	"PCGEO1" | zstd( uvarint n | n × range )
//	range = uvarint gap.hi | uvarint gap.lo | uvarint len.hi | uvarint len.lo | uvarint country
//
// gap is start minus the previous range's end (the first: start itself),
// len is end minus start; both are 128-bit. Real databases compress to a
// few bytes per range.

var magic = []byte("PCGEO1")

// MaxEncodedRanges bounds what Decode accepts, so a corrupt or hostile blob
// cannot make a node allocate without limit.
const MaxEncodedRanges = 16 << 20

// ErrCorrupt is returned by Decode for anything that is not a valid table.
var ErrCorrupt = errors.New("geoip: corrupt table")

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<28), zstd.WithDecoderConcurrency(1))
)

func sub(a, b u128) u128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, borrow)
	return u128{hi, lo}
}

// add returns a+b and whether it overflowed 128 bits.
func add(a, b u128) (u128, bool) {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, carry := bits.Add64(a.hi, b.hi, carry)
	return u128{hi, lo}, carry != 0
}

// MarshalBinary encodes the table.
func (t *Table) MarshalBinary() ([]byte, error) {
	raw := binary.AppendUvarint(nil, uint64(t.Len()))
	var prev u128
	for i := range t.Len() {
		gap := sub(t.starts[i], prev)
		ln := sub(t.ends[i], t.starts[i])
		raw = binary.AppendUvarint(raw, gap.hi)
		raw = binary.AppendUvarint(raw, gap.lo)
		raw = binary.AppendUvarint(raw, ln.hi)
		raw = binary.AppendUvarint(raw, ln.lo)
		raw = binary.AppendUvarint(raw, uint64(t.cc[i]))
		prev = t.ends[i]
	}
	return encoder.EncodeAll(raw, append([]byte(nil), magic...)), nil
}

// Decode parses a serialized table and checks that it is well formed:
// ranges in order, disjoint, with valid countries.
func Decode(b []byte) (*Table, error) {
	if !bytes.HasPrefix(b, magic) {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	raw, err := decoder.DecodeAll(b[len(magic):], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	r := bytes.NewReader(raw)
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("%w: count: %w", ErrCorrupt, err)
	}
	// every range takes at least 5 bytes
	if n > MaxEncodedRanges || n > uint64(len(raw))/5 {
		return nil, fmt.Errorf("%w: %d ranges in %d bytes", ErrCorrupt, n, len(raw))
	}
	t := &Table{
		starts: make([]u128, 0, n),
		ends:   make([]u128, 0, n),
		cc:     make([]Country, 0, n),
	}
	var prev u128
	for i := range n {
		var v [5]uint64
		for j := range v {
			if v[j], err = binary.ReadUvarint(r); err != nil {
				return nil, fmt.Errorf("%w: range %d: %w", ErrCorrupt, i, err)
			}
		}
		gap, ln := u128{v[0], v[1]}, u128{v[2], v[3]}
		if i > 0 && gap == (u128{}) {
			return nil, fmt.Errorf("%w: range %d overlaps the previous one", ErrCorrupt, i)
		}
		start, o1 := add(prev, gap)
		end, o2 := add(start, ln)
		if o1 || o2 {
			return nil, fmt.Errorf("%w: range %d past the address space", ErrCorrupt, i)
		}
		c := Country(v[4])
		if v[4] == 0 || v[4] > uint64(MaxCountry) {
			return nil, fmt.Errorf("%w: range %d: country %d", ErrCorrupt, i, v[4])
		}
		t.starts = append(t.starts, start)
		t.ends = append(t.ends, end)
		t.cc = append(t.cc, c)
		prev = end
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	return t, nil
}
