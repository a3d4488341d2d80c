package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A closed segment is compressed as a sequence of independent zstd frames
// of about blockBytes (32 KiB) of the raw segment each, cut at record boundaries
// (a concatenation of frames is one valid zstd stream, so every reader of
// segments reads it unchanged), and gets a sidecar index,
// segment-NNNNNNNN.idx:
//
//	magic "PCAIDX01"
//	u32 big-endian length | header JSON (indexHeader)
//	postings: for each term, its record ordinals as uvarint deltas
//
// The header holds the segment's record count, seq and time range, the
// compressed and uncompressed offset of each block and the first record in
// it, and one term per (field, value) seen: agent, user, persona, tool,
// decision, kind, admin identity. Search skips a segment whose time or seq
// range or terms exclude the filter, and decompresses only the blocks
// holding candidate records. The index is an accelerator, not evidence:
// verify never reads it, and an index that does not describe the segment
// file beside it (another size) is ignored (the segment is scanned).
const (
	idxMagic    = "PCAIDX01"
	idxSuffix   = ".idx"
	blockBytes  = 32 << 10 // small: a match costs the decompression of its block
	maxIdxHdr   = 64 << 20
	idxVersion  = 1
	maxIdxTerms = 1 << 20
)

// Index term fields.
const (
	fieldAgent    = "a"
	fieldUser     = "u"
	fieldPersona  = "p"
	fieldTool     = "t"
	fieldDecision = "d"
	fieldKind     = "k"
	fieldAdmin    = "i"
)

type indexHeader struct {
	V       int    `json:"v"`
	Segment uint64 `json:"segment"`
	// SegSize is the size of the compressed segment file described.
	SegSize  int64        `json:"segSize"`
	Records  int          `json:"records"`
	FirstSeq uint64       `json:"firstSeq"`
	LastSeq  uint64       `json:"lastSeq"`
	MinTime  int64        `json:"minTime"` // unix ns of the earliest record
	MaxTime  int64        `json:"maxTime"`
	DataOff  int64        `json:"dataOff"` // uncompressed offset of record 0
	Blocks   []indexBlock `json:"blocks"`
	Terms    []indexTerm  `json:"terms"`
}

type indexBlock struct {
	R int   `json:"r"` // ordinal of the block's first record
	C int64 `json:"c"` // compressed offset
	U int64 `json:"u"` // uncompressed offset
	// T0 and T1 are the unix ns of the block's earliest and latest record
	// (0: unknown); a time filter skips the blocks outside it.
	T0 int64 `json:"t0,omitempty"`
	T1 int64 `json:"t1,omitempty"`
}

type indexTerm struct {
	F   string `json:"f"`
	V   string `json:"v"`
	Off int    `json:"o"` // into the postings
	Len int    `json:"l"`
	N   int    `json:"n"`
}

// segIndex is a parsed index.
type segIndex struct {
	indexHeader
	postings []byte
	terms    map[[2]string]indexTerm
}

func indexPath(segPath string) string {
	return strings.TrimSuffix(strings.TrimSuffix(segPath, ".zst"), segSuffix) + idxSuffix
}

// indexFields are the fields of a record the index keeps.
type indexFields struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Agent    string    `json:"agent"`
	User     string    `json:"user"`
	Persona  string    `json:"persona"`
	Tool     string    `json:"tool"`
	Decision string    `json:"decision"`
	Admin    *struct {
		Identity string `json:"identity"`
	} `json:"admin"`
}

// indexBuilder collects terms record by record.
type indexBuilder struct {
	h      indexHeader
	lists  map[[2]string][]uint32
	t0, t1 int64 // time range of the current block
}

func newIndexBuilder(no uint64) *indexBuilder {
	return &indexBuilder{h: indexHeader{V: idxVersion, Segment: no}, lists: map[[2]string][]uint32{}}
}

func (b *indexBuilder) add(payload []byte) {
	ord := uint32(b.h.Records)
	b.h.Records++
	var f indexFields
	if json.Unmarshal(payload, &f) != nil {
		return // damage: verify reports it; search finds it by scanning only
	}
	if b.h.FirstSeq == 0 {
		b.h.FirstSeq = f.Seq
	}
	b.h.LastSeq = f.Seq
	if t := f.Time.UnixNano(); !f.Time.IsZero() {
		if b.h.MinTime == 0 || t < b.h.MinTime {
			b.h.MinTime = t
		}
		b.h.MaxTime = max(b.h.MaxTime, t)
		if b.t0 == 0 || t < b.t0 {
			b.t0 = t
		}
		b.t1 = max(b.t1, t)
	}
	if f.Kind == "" {
		f.Kind = KindRequest
	}
	id := ""
	if f.Admin != nil {
		id = f.Admin.Identity
	}
	for _, kv := range [...][2]string{{fieldAgent, f.Agent}, {fieldUser, f.User}, {fieldPersona, f.Persona}, {fieldTool, f.Tool}, {fieldDecision, f.Decision}, {fieldKind, f.Kind}, {fieldAdmin, id}} {
		if kv[1] != "" {
			b.lists[kv] = append(b.lists[kv], ord)
		}
	}
}

func (b *indexBuilder) encode() ([]byte, error) {
	keys := make([][2]string, 0, len(b.lists))
	for k := range b.lists {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y [2]string) int {
		if c := strings.Compare(x[0], y[0]); c != 0 {
			return c
		}
		return strings.Compare(x[1], y[1])
	})
	var post []byte
	b.h.Terms = b.h.Terms[:0]
	for _, k := range keys {
		l := b.lists[k]
		off := len(post)
		prev := uint32(0)
		for i, o := range l {
			d := o - prev
			if i == 0 {
				d = o
			}
			post = binary.AppendUvarint(post, uint64(d))
			prev = o
		}
		b.h.Terms = append(b.h.Terms, indexTerm{F: k[0], V: k[1], Off: off, Len: len(post) - off, N: len(l)})
	}
	js, err := json.Marshal(&b.h)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(idxMagic)+4+len(js)+len(post))
	out = append(out, idxMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(js)))
	out = append(out, js...)
	return append(out, post...), nil
}

// parseIndex reads an index file, checking that it is consistent in
// itself (offsets, ordinals in range and increasing), so that a damaged or
// forged one is refused rather than misread.
func parseIndex(data []byte) (*segIndex, error) {
	if len(data) < len(idxMagic)+4 || string(data[:len(idxMagic)]) != idxMagic {
		return nil, errors.New("index: not an audit index (magic)")
	}
	n := binary.BigEndian.Uint32(data[len(idxMagic):])
	rest := data[len(idxMagic)+4:]
	if n == 0 || n > maxIdxHdr || int(n) > len(rest) {
		return nil, fmt.Errorf("index: header length %d out of range", n)
	}
	x := &segIndex{postings: rest[n:]}
	if err := json.Unmarshal(rest[:n], &x.indexHeader); err != nil {
		return nil, fmt.Errorf("index: header: %w", err)
	}
	h := &x.indexHeader
	switch {
	case h.V != idxVersion:
		return nil, fmt.Errorf("index: version %d, want %d", h.V, idxVersion)
	case h.Records < 0 || h.SegSize < 0 || h.DataOff < 0 || len(h.Terms) > maxIdxTerms:
		return nil, errors.New("index: negative counts or too many terms")
	case h.Records > 0 && len(h.Blocks) == 0:
		return nil, errors.New("index: records but no blocks")
	}
	for i, b := range h.Blocks {
		if b.R < 0 || b.C < 0 || b.U < 0 || b.C > h.SegSize || (b.R >= h.Records && h.Records > 0) ||
			(i == 0 && (b.R != 0 || b.C != 0 || b.U != 0)) ||
			(i > 0 && (b.R <= h.Blocks[i-1].R || b.C <= h.Blocks[i-1].C || b.U <= h.Blocks[i-1].U)) {
			return nil, fmt.Errorf("index: block %d out of order or range", i)
		}
	}
	x.terms = make(map[[2]string]indexTerm, len(h.Terms))
	for i, t := range h.Terms {
		if t.Off < 0 || t.Len < 0 || t.N < 0 || t.N > h.Records || t.Off > len(x.postings) || t.Len > len(x.postings)-t.Off {
			return nil, fmt.Errorf("index: term %d out of range", i)
		}
		x.terms[[2]string{t.F, t.V}] = t // its list is checked when decoded
	}
	return x, nil
}

// indexCache keeps parsed indexes of closed segments (immutable once
// written) by path, size and modification time, so that a node answering
// searches parses each index once.
var indexCache = struct {
	sync.Mutex
	m     map[string]cachedIndex
	bytes int64 // index file bytes held
}{m: map[string]cachedIndex{}}

type cachedIndex struct {
	size  int64
	mtime time.Time
	x     *segIndex
}

// maxCachedIndexBytes bounds the cache (about 7 MB per million records
// indexed): past it, it starts over.
const maxCachedIndexBytes = 128 << 20

// list decodes one term's ordinals.
func (x *segIndex) list(t indexTerm) ([]int, error) {
	p := x.postings[t.Off : t.Off+t.Len]
	out := make([]int, 0, t.N)
	prev := -1
	for len(p) > 0 {
		d, k := binary.Uvarint(p)
		if k <= 0 || d > uint64(x.Records) {
			return nil, errors.New("bad varint")
		}
		p = p[k:]
		o := int(d)
		if prev >= 0 {
			o = prev + int(d)
			if d == 0 {
				return nil, errors.New("ordinals not increasing")
			}
		}
		if o >= x.Records {
			return nil, errors.New("ordinal out of range")
		}
		out = append(out, o)
		prev = o
	}
	if len(out) != t.N {
		return nil, fmt.Errorf("%d ordinals, header says %d", len(out), t.N)
	}
	return out, nil
}

// candidates returns the ordinals of records that may match f (sorted),
// all=true when the index narrows nothing (no term filter), or none when
// the segment cannot hold a match.
func (x *segIndex) candidates(f *Filter) (ords []int, all bool) {
	if x.Records == 0 {
		return nil, false
	}
	if (!f.Since.IsZero() && x.MaxTime < f.Since.UnixNano()) || (!f.Until.IsZero() && x.MinTime >= f.Until.UnixNano()) {
		return nil, false
	}
	kind := f.Kind
	var lists [][]int
	for _, kv := range [...][2]string{{fieldAgent, f.Agent}, {fieldUser, f.User}, {fieldPersona, f.Persona}, {fieldTool, f.Tool}, {fieldDecision, f.Decision}, {fieldKind, kind}} {
		if kv[1] == "" {
			continue
		}
		t, ok := x.terms[kv]
		if !ok {
			return nil, false
		}
		l, err := x.list(t)
		if err != nil {
			return nil, true // a damaged list narrows nothing: read every record
		}
		lists = append(lists, l)
	}
	timed := !f.Since.IsZero() || !f.Until.IsZero()
	if len(lists) == 0 && !timed {
		return nil, true
	}
	var out []int
	if len(lists) == 0 {
		out = make([]int, x.Records)
		for i := range out {
			out[i] = i
		}
	} else {
		slices.SortFunc(lists, func(a, b []int) int { return len(a) - len(b) })
		out = lists[0]
		for _, l := range lists[1:] {
			out = intersect(out, l)
		}
	}
	if timed {
		out = x.inTime(out, f)
	}
	return out, false
}

// inTime drops the ordinals of blocks whose time range is outside f's.
func (x *segIndex) inTime(ords []int, f *Filter) []int {
	var out []int
	bi := 0
	for _, o := range ords {
		for bi+1 < len(x.Blocks) && x.Blocks[bi+1].R <= o {
			bi++
		}
		b := x.Blocks[bi]
		if b.T1 != 0 && ((!f.Since.IsZero() && b.T1 < f.Since.UnixNano()) || (!f.Until.IsZero() && b.T0 >= f.Until.UnixNano())) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func intersect(a, b []int) []int {
	var out []int
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// readIndex loads the index of a compressed segment; nil when it has none
// or the one beside it does not describe this file.
func readIndex(s segmentFile) *segIndex {
	if !s.Compressed {
		return nil
	}
	ip := indexPath(s.Path)
	ifi, err := os.Stat(ip)
	if err != nil {
		return nil
	}
	fi, err := os.Stat(s.Path)
	if err != nil {
		return nil
	}
	indexCache.Lock()
	c, ok := indexCache.m[ip]
	indexCache.Unlock()
	if ok && c.size == ifi.Size() && c.mtime.Equal(ifi.ModTime()) {
		if c.x.SegSize != fi.Size() {
			return nil
		}
		return c.x
	}
	data, err := os.ReadFile(ip)
	if err != nil {
		return nil
	}
	x, err := parseIndex(data)
	if err != nil || x.Segment != s.No {
		return nil
	}
	indexCache.Lock()
	if indexCache.bytes+ifi.Size() > maxCachedIndexBytes {
		clear(indexCache.m)
		indexCache.bytes = 0
	}
	if old, ok := indexCache.m[ip]; ok {
		indexCache.bytes -= old.size
	}
	indexCache.m[ip] = cachedIndex{size: ifi.Size(), mtime: ifi.ModTime(), x: x}
	indexCache.bytes += ifi.Size()
	indexCache.Unlock()
	if x.SegSize != fi.Size() {
		return nil
	}
	return x
}

// readAt decodes the records of s with the given ordinals (sorted),
// decompressing only their blocks, and hands each to fn (stop with false).
func (x *segIndex) readAt(s segmentFile, ords []int, fn func(*Record) bool) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return err
	}
	defer dec.Close()
	var raw, buf []byte
	for i := 0; i < len(ords); {
		bi, _ := slices.BinarySearchFunc(x.Blocks, ords[i], func(b indexBlock, o int) int { return b.R - o })
		if bi == len(x.Blocks) || x.Blocks[bi].R > ords[i] {
			bi--
		}
		b := x.Blocks[bi]
		end := x.SegSize
		if bi+1 < len(x.Blocks) {
			end = x.Blocks[bi+1].C
		}
		if cap(buf) < int(end-b.C) {
			buf = make([]byte, end-b.C)
		}
		buf = buf[:end-b.C]
		if _, err := f.ReadAt(buf, b.C); err != nil {
			return fmt.Errorf("%s: block %d: %w", s.Name(), bi, err)
		}
		raw, err = dec.DecodeAll(buf, raw[:0])
		if err != nil {
			return fmt.Errorf("%s: block %d: %w", s.Name(), bi, err)
		}
		p := raw
		if bi == 0 {
			if int64(len(p)) < x.DataOff {
				return fmt.Errorf("%s: block 0 shorter than the header", s.Name())
			}
			p = p[x.DataOff:]
		}
		ord := b.R
		for i < len(ords) && len(p) >= 4 {
			n := int(binary.BigEndian.Uint32(p))
			if n == 0 || n > maxRecord || len(p) < 4+n+hashSize {
				return fmt.Errorf("%s: record %d: damaged frame (run audit verify)", s.Name(), ord+1)
			}
			if ord == ords[i] {
				var r Record
				if err := json.Unmarshal(p[4:4+n], &r); err != nil {
					return fmt.Errorf("%s: record %d: %w", s.Name(), ord+1, err)
				}
				if !fn(&r) {
					return nil
				}
				i++
			}
			p = p[4+n+hashSize:]
			ord++
		}
		if i < len(ords) && ords[i] < ord {
			return fmt.Errorf("%s: index and segment disagree", s.Name())
		}
		if i < len(ords) && (bi+1 >= len(x.Blocks) || ords[i] < x.Blocks[bi+1].R) {
			return fmt.Errorf("%s: record %d is not where the index says", s.Name(), ords[i]+1)
		}
	}
	return nil
}

// compressAndIndex compresses a closed raw segment in blocks (see above),
// writes its index, and removes the raw file; every step through a temp
// file and a rename, so a crash at any point leaves a readable segment (a
// missing index is rebuilt by the next start).
func compressAndIndex(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	no, _, _ := parseSegmentName(filepath.Base(path))
	sr, err := newSegmentReader(bytes.NewReader(data))
	var cuts []int64 // uncompressed offsets where blocks start
	ib := newIndexBuilder(no)
	var ordAt []int
	var times [][2]int64 // per block
	if err == nil {
		ib.h.DataOff = sr.off
		cuts, ordAt = []int64{0}, []int{0}
		for {
			p, err := sr.next()
			if err != nil && !errors.Is(err, ErrHash) {
				break // the rest goes into the last block as it is
			}
			ib.add(p)
			if sr.off-cuts[len(cuts)-1] >= blockBytes && sr.off < int64(len(data)) {
				cuts, ordAt = append(cuts, sr.off), append(ordAt, sr.n)
				times = append(times, [2]int64{ib.t0, ib.t1})
				ib.t0, ib.t1 = 0, 0
			}
		}
	} else {
		cuts = []int64{0} // not a readable segment: compress it as is, no index
		ib = nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return err
	}
	defer enc.Close()
	var out []byte
	for i, c := range cuts {
		end := int64(len(data))
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		if ib != nil {
			if i == len(times) {
				times = append(times, [2]int64{ib.t0, ib.t1})
			}
			ib.h.Blocks = append(ib.h.Blocks, indexBlock{R: ordAt[i], C: int64(len(out)), U: c, T0: times[i][0], T1: times[i][1]})
		}
		out = enc.EncodeAll(data[c:end], out)
	}
	if err := writeFileSync(path+".zst", out); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if ib != nil && ib.h.Records > 0 {
		ib.h.SegSize = int64(len(out))
		if idx, err := ib.encode(); err == nil {
			_ = writeFileSync(indexPath(path), idx) // search scans without it
		}
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeFileSync writes file via a temp file, fsync and rename.
func writeFileSync(file string, data []byte) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(file))
}

// buildIndex indexes a compressed segment that has no index (written
// before indexes existed, or a crash came between compression and index):
// without frame offsets it is one block.
func buildIndex(s segmentFile) error {
	fi, err := os.Stat(s.Path)
	if err != nil {
		return err
	}
	sr, c, err := openSegment(s)
	if err != nil {
		return err
	}
	defer c.Close()
	ib := newIndexBuilder(s.No)
	ib.h.DataOff, ib.h.SegSize = sr.off, fi.Size()
	ib.h.Blocks = []indexBlock{{}}
	for {
		p, err := sr.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, ErrHash) {
			return fmt.Errorf("%s: %w", s.Name(), err)
		}
		ib.add(p)
	}
	if ib.h.Records == 0 {
		return nil
	}
	ib.h.Blocks[0].T0, ib.h.Blocks[0].T1 = ib.t0, ib.t1
	idx, err := ib.encode()
	if err != nil {
		return err
	}
	return writeFileSync(indexPath(s.Path), idx)
}

// indexMissing indexes, in the background, the compressed segments
// without a usable index (Close waits for it).
func (l *Log) indexMissing() {
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return
	}
	var unindexed []segmentFile
	for _, s := range segs {
		if s.Compressed && readIndex(s) == nil {
			unindexed = append(unindexed, s)
		}
	}
	if len(unindexed) == 0 {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for _, s := range unindexed {
			if err := buildIndex(s); err != nil {
				l.log.Warn("audit: could not index a segment (search scans it)", "segment", s.Name(), "err", err)
			}
		}
	}()
}
