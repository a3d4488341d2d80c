package dlp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Config selects the detectors a Scanner runs.
type Config struct {
	// Detectors lists detector ids to enable; empty enables all (subject to
	// Categories).
	Detectors []string
	// Categories restricts the enabled detectors to these categories; empty
	// means every category.
	Categories []Category
	// MinConfidence drops findings below it; 0 means 0.5.
	MinConfidence float64
}

// Errors returned by New.
var (
	ErrUnknownDetector = errors.New("dlp: unknown detector")
	ErrUnknownCategory = errors.New("dlp: unknown category")
)

const (
	maxGroupNorm  = 64 // longest normalized group a detector accepts
	maxGroupRaw   = 96 // longest raw group (with separators)
	maxGroupUnits = 16
	maxSpanUnits  = 8 // space-separated units tried as one candidate
)

type prefixEntry struct {
	lit string
	d   *Detector
}

// Scanner finds sensitive values. It is immutable after New and safe for
// concurrent use.
type Scanner struct {
	dets     []*Detector
	minConf  float64
	groupIdx [maxGroupNorm + 1][]*Detector
	// plainIdx holds the group detectors that can match a single unit
	// without separators (an IPv4 address never does)
	plainIdx [maxGroupNorm + 1][]*Detector
	prefix   [256][]prefixEntry
	special  [256][]*Detector
	// punct marks the non-word bytes the single pass looks at: punctSpecial
	// (a detector's trigger), punctNorm (normalisation may start there)
	punct     [256]uint8
	kwMap     map[string][]*Detector
	kwHeads   map[string][]string // first word of a two-word keyword → its second words
	kwHeadLen [25]bool            // the lengths of kwHeads' words, tested first
	kwBloom   [1024]uint64
	kwFirst2  [1024]uint64 // (lower(b0), lower(b1)) of keywords
	pfxFirst2 [1024]uint64 // (b0, b1) of literal prefixes
	enabled   map[*Detector]bool
}

const (
	punctSpecial = 1 << iota
	punctNorm
	punctJoin // '_' and '-' between the two words of a keyword (security_code)
)

func bit2(a, b byte) uint32 { return uint32(a)<<8 | uint32(b) }

// kwPre hashes a word's first two (lowercased) bytes and length into the
// 64K-bit keyword prefilter.
func kwPre(a, b byte, l int) uint32 {
	return (uint32(a)*961 + uint32(b)*31 + uint32(l)*7919) & 0xffff
}

// New builds a Scanner over the built-in detectors selected by cfg.
func New(cfg Config) (*Scanner, error) {
	if cfg.MinConfidence < 0 || cfg.MinConfidence > 1 {
		return nil, fmt.Errorf("dlp: min confidence %v outside 0..1", cfg.MinConfidence)
	}
	for _, c := range cfg.Categories {
		if !validCategory(c) {
			return nil, fmt.Errorf("%w %q", ErrUnknownCategory, c)
		}
	}
	var chosen []*Detector
	if len(cfg.Detectors) > 0 {
		for _, id := range cfg.Detectors {
			d, ok := byID[id]
			if !ok {
				return nil, fmt.Errorf("%w %q", ErrUnknownDetector, id)
			}
			chosen = append(chosen, d)
		}
	} else {
		chosen = All()
	}
	if len(cfg.Categories) > 0 {
		chosen = slices.DeleteFunc(chosen, func(d *Detector) bool { return !slices.Contains(cfg.Categories, d.Category) })
	}
	s := &Scanner{dets: chosen, minConf: cfg.MinConfidence, kwMap: map[string][]*Detector{}, enabled: map[*Detector]bool{}}
	for _, d := range chosen {
		s.enabled[d] = true
	}
	for c, t := range normTrig {
		if t != 0 {
			s.punct[c] |= punctNorm
		}
	}
	s.dets = slices.Clone(chosen)
	// family members are reached through their router
	for _, d := range chosen {
		if d.via != "" && !s.enabled[byID[d.via]] {
			chosen = append(chosen, byID[d.via])
			s.enabled[byID[d.via]] = false
		}
	}
	if s.minConf <= 0 {
		s.minConf = 0.5
	}
	for _, d := range chosen {
		if d.group != nil || d.groupRoute != nil {
			for l := d.minLen; l <= d.maxLen && l <= maxGroupNorm; l++ {
				s.groupIdx[l] = append(s.groupIdx[l], d)
				if !d.needsSep {
					s.plainIdx[l] = append(s.plainIdx[l], d)
				}
			}
		}
		for _, p := range d.prefixes {
			s.prefix[p[0]] = append(s.prefix[p[0]], prefixEntry{p, d})
			h := bit2(p[0], p[1])
			s.pfxFirst2[h>>6] |= 1 << (h & 63)
		}
		if d.special != 0 {
			s.special[d.special] = append(s.special[d.special], d)
			s.punct[d.special] |= punctSpecial
		}
		for _, k := range d.keywords {
			s.kwMap[k] = append(s.kwMap[k], d)
			s.kwFilter(k)
		}
		for _, ht := range d.kwSpaced {
			if s.kwHeads == nil {
				s.kwHeads = map[string][]string{}
			}
			if !slices.Contains(s.kwHeads[ht[0]], ht[1]) {
				s.kwHeads[ht[0]] = append(s.kwHeads[ht[0]], ht[1])
			}
			if len(ht[0]) < len(s.kwHeadLen) {
				s.kwHeadLen[len(ht[0])] = true
			}
			s.kwFilter(ht[0])
		}
	}
	s.punct['_'] |= punctJoin
	s.punct['-'] |= punctJoin
	// Longer literals first so "sk-ant-" wins over "sk-".
	for i := range s.prefix {
		slices.SortStableFunc(s.prefix[i], func(a, b prefixEntry) int { return len(b.lit) - len(a.lit) })
	}
	return s, nil
}

// kwFilter lets the word k through the keyword prefilters.
func (s *Scanner) kwFilter(k string) {
	h := kwHash([]byte(k))
	s.kwBloom[h>>6] |= 1 << (h & 63)
	h = kwPre(k[0], k[1], len(k))
	s.kwFirst2[h>>6] |= 1 << (h & 63)
}

// Detectors returns the enabled detectors.
func (s *Scanner) Detectors() []*Detector { return s.dets }

func kwHash(w []byte) uint32 {
	l := len(w)
	return (uint32(l)*2654435761 ^ uint32(w[0])*40503 ^ uint32(w[l-1])*9973 ^ uint32(w[l/2])*31) & 65535
}

// Byte classes for the main loop.
const (
	cOther = iota
	cDigit
	cUpper
	cLower
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLower
	}
	return
}()

// keyCtx carries the JSON key of the value being scanned.
type keyCtx struct {
	raw   string      // the key as written
	words []string    // lowercased words of the key
	dets  []*Detector // keyword detectors the key triggers

	// findings in the key itself (offsets in the raw key), scanned once
	// per document: nil until then, &noKeyFinds for none (one pointer
	// keeps keyCtx in a small size class)
	keyFinds *[]Finding
}

var noKeyFinds []Finding

// finds returns the findings in the key (none before scanKey ran).
func (kc *keyCtx) finds() []Finding {
	if kc == nil || kc.keyFinds == nil {
		return nil
	}
	return *kc.keyFinds
}

type scanner struct {
	s     *Scanner
	b     []byte
	key   *keyCtx
	out   []Finding
	buf   [maxGroupNorm]byte
	c     cand
	units [maxGroupUnits]unit
	memo  map[*Detector]*runMemo // token anchors' last body runs

	trig   bool     // the pass met a byte normalisation may change
	enc    [][2]int // encoded runs to decode
	encEnd int      // end of the last encoded run looked at
	depth  int      // decoding depth of this text
	normal bool     // scanning the normal form: no second normalisation
	nz     normalizer
	// colWork counts the bytes column lookups read in this scan; past
	// colBudget(len(b)) they stop, so a table whose every row could be a
	// header costs a bounded multiple of its size
	colWork int
	col     colMemo // the last table block found
}

// Scan finds sensitive values in text. Offsets are byte offsets in text.
func (s *Scanner) Scan(text []byte) []Finding {
	return s.scan(text, nil, nil)
}

var scannerPool = sync.Pool{New: func() any { return new(scanner) }}

func (s *Scanner) scan(b []byte, key *keyCtx, out []Finding) []Finding {
	st := scannerPool.Get().(*scanner)
	out = s.scanWith(st, b, key, out)
	st.b, st.key, st.out, st.s = nil, nil, nil, nil
	scannerPool.Put(st)
	return out
}

// scanWith scans b with the caller's scanner state (ScanJSON reuses one
// for every value of a document). When the pass met something
// normalisation changes, b is scanned again in normal form and the
// findings are mapped back to b; text that needs no normalisation costs
// one flag test.
func (s *Scanner) scanWith(st *scanner, b []byte, key *keyCtx, out []Finding) []Finding {
	if len(st.memo) > 0 {
		clear(st.memo)
	}
	st.s, st.b, st.key, st.out = s, b, key, out
	st.trig, st.enc, st.encEnd = false, st.enc[:0], 0
	st.colWork, st.col = 0, colMemo{}
	first := len(out)
	if key != nil {
		for _, d := range key.dets {
			if d.keyValue != nil {
				if conf := d.keyValue(b); conf > 0 {
					st.emit(d, 0, len(b), conf)
				}
				continue
			}
			if ks, ke, conf := d.kw(b, 0); conf > 0 {
				st.emit(d, ks, ke, conf)
			}
		}
	}
	st.run()
	if len(st.enc) > 0 {
		st.decodeScan()
	}
	st.out = resolve(st.out, first)
	if st.trig && !st.normal {
		return s.rescanNormal(st, b, key, st.out, first)
	}
	return st.out
}

// rescanNormal scans b again in normal form when normalisation changes it,
// replacing the findings of the first pass (out[first:]).
func (s *Scanner) rescanNormal(st *scanner, b []byte, key *keyCtx, out []Finding, first int) []Finding {
	if !st.nz.normalize(b) {
		return out
	}
	nb := st.nz.out
	st.normal = true
	out = s.scanWith(st, nb, key, out[:first])
	st.normal = false
	m := &st.nz.m
	for k := first; k < len(out); k++ {
		f := &out[k]
		ns, ne := f.Start, f.End
		f.Start, f.End = m.span(ns, ne)
		if f.plain == "" && string(b[f.Start:f.End]) != string(nb[ns:ne]) {
			f.plain = string(nb[ns:ne])
		}
	}
	st.b = nil
	return out
}

func (st *scanner) run() {
	b := st.b
	n := len(b)
	i := 0
	for i < n {
		c := b[i]
		if class[c] == cOther {
			p := st.s.punct[c]
			if p == 0 {
				i++
				continue
			}
			if p&punctJoin != 0 && i > 0 && class[b[i-1]] > cDigit { // after a letter
				if j := st.joined(i); j > i {
					i = j
					continue
				}
			}
			if p&punctNorm != 0 && !st.trig {
				st.trig = normWorth(b, i)
			}
			if p&punctSpecial != 0 && specialWorth(b, i, c) {
				if j := st.specials(st.s.special[c], i); j > i {
					i = j
					continue
				}
			}
			i++
			continue
		}
		// A word starts at i. Skip the letter of a JSON/C escape (\n123).
		if i > 0 && b[i-1] == '\\' && i+1 < n && class[b[i+1]] == cDigit {
			if c == 'n' || c == 't' || c == 'r' || c == 'b' || c == 'f' {
				i++
				continue
			}
		}
		if i+1 < n && st.s.pfxFirst2[bit2(c, b[i+1])>>6]&(1<<(bit2(c, b[i+1])&63)) != 0 {
			if j := st.prefixes(st.s.prefix[c], i); j > i {
				i = j
				continue
			}
		}
		j := i
		var cnt [4]int
		camel := false
		prev := uint8(cOther)
		for j < n {
			k := class[b[j]]
			if k == cOther {
				break
			}
			cnt[k]++
			if k == cUpper && prev == cLower {
				camel = true
			}
			prev = k
			j++
		}
		digits, lower := cnt[cDigit], cnt[cLower]
		// (encodedRun tests the first byte: a data-dependent branch here
		// would mispredict on every other word)
		if j-i >= minEncoded || j < n && b64Sep[b[j]] && (j-i)&3 != 0 {
			st.encoded(i, j)
			// a long mixed-case word starts a group too (one base58
			// address in ~250 has no digit); it is no keyword
			if j-i >= 25 && j-i <= 35 && digits == 0 && lower > 0 && cnt[cUpper] > 0 {
				i = st.groups(i, j, false)
				continue
			}
		}
		if l := j - i; l >= 2 && l <= 24 {
			if h := kwPre(lowerByte(c), lowerByte(b[i+1]), l); camel || st.s.kwFirst2[h>>6]&(1<<(h&63)) != 0 {
				st.keyword(i, j, camel)
			}
		}
		if digits > 0 || (lower == 0 && j-i <= 4 && j+1 < n && isSep(b[j]) && isAlnum(b[j+1])) {
			i = st.groups(i, j, digits == j-i)
			continue
		}
		i = j
	}
}

// specialWorth is a cheap test of whether a punctuation trigger can start
// anything at all ('"key":' in JSON never can).
func specialWorth(b []byte, i int, c byte) bool {
	switch c {
	case ':':
		if i+1 < len(b) && (b[i+1] == '/' || b[i+1] == ':' || b[i+1] == 'A') {
			return true
		}
		return i > 0 && (isHex(b[i-1]) || b[i-1] == ':')
	case '-':
		return i+4 < len(b) && b[i+1] == '-' && b[i+4] == '-'
	case '=':
		return i > 0 && isDigit(b[i-1])
	}
	return true
}

func lowerByte(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

func isSep(c byte) bool { return c == ' ' || c == '-' || c == '.' || c == '/' }

func (st *scanner) specials(ds []*Detector, i int) int {
	end := i
	for _, d := range ds {
		if d.route != nil {
			if rd, s, e, conf := d.route(st.b, i); conf > 0 && st.s.enabled[rd] {
				st.emit(rd, s, e, conf)
				end = max(end, e)
			}
			continue
		}
		if s, e, conf := d.anchor(st.b, i); conf > 0 {
			st.emit(d, s, e, conf)
			if e > end {
				end = e
			}
		}
	}
	return end
}

func (st *scanner) prefixes(ps []prefixEntry, i int) int {
	b := st.b
	for _, p := range ps {
		if len(b)-i < len(p.lit) || string(b[i:i+len(p.lit)]) != p.lit {
			continue
		}
		if p.d.anchorMemo != nil {
			if st.memo == nil {
				st.memo = map[*Detector]*runMemo{}
			}
			m := st.memo[p.d]
			if m == nil {
				m = &runMemo{start: -1, end: -1}
				st.memo[p.d] = m
			}
			if s, e, conf := p.d.anchorMemo(b, i, m); conf > 0 {
				st.emit(p.d, s, e, conf)
				return e
			}
			continue
		}
		if s, e, conf := p.d.anchor(b, i); conf > 0 {
			st.emit(p.d, s, e, conf)
			return e
		}
	}
	return i
}

// keyword looks the word b[i:j] (and its camel-case parts) up in the
// keyword table and runs the detectors it triggers.
func (st *scanner) keyword(i, j int, camel bool) {
	st.keywordPart(i, j, j)
	if !camel {
		return
	}
	b := st.b
	s := i
	// camel-case parts shorter than three letters are noise (random
	// tokens are full of them), so they never trigger
	for k := i + 1; k < j; k++ {
		if isUpper(b[k]) && isLower(b[k-1]) {
			if k-s >= 3 {
				st.keywordPart(s, k, j)
			}
			s = k
		}
	}
	if s > i && j-s >= 3 {
		st.keywordPart(s, j, j)
	}
}

func (st *scanner) keywordPart(i, j, after int) {
	if j-i < 2 || j-i > 24 {
		return
	}
	h2 := kwPre(lowerByte(st.b[i]), lowerByte(st.b[i+1]), j-i)
	if st.s.kwFirst2[h2>>6]&(1<<(h2&63)) == 0 {
		return
	}
	var lw [24]byte
	w := lw[:j-i]
	for k := range w {
		c := st.b[i+k]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		w[k] = c
	}
	h := kwHash(w)
	if st.s.kwBloom[h>>6]&(1<<(h&63)) == 0 {
		return
	}
	for _, d := range st.s.kwMap[string(w)] {
		if s, e, conf := d.kw(st.b, after); conf > 0 {
			st.emit(d, s, e, conf)
		} else {
			st.keywordColumn(d, i, j)
		}
	}
	if j == after && st.s.kwHeadLen[len(w)] {
		if tails := st.s.kwHeads[string(w)]; tails != nil {
			st.keywordSpaced(w, tails, i, j)
		}
	}
}

// keywordSpaced runs the detectors of a two-word keyword written with a
// space ("security code: 538") when the word b[i:j] is its head.
//
//go:noinline
func (st *scanner) keywordSpaced(head []byte, tails []string, i, j int) {
	b := st.b
	if j+1 >= len(b) || b[j] != ' ' || !isAlpha(b[j+1]) {
		return
	}
	k := j + 1
	for k < len(b) && k-j <= 24 && isAlpha(b[k]) {
		k++
	}
	if k < len(b) && isAlnum(b[k]) {
		return
	}
	for _, t := range tails {
		if len(t) != k-j-1 || !bytes.EqualFold(b[j+1:k], []byte(t)) {
			continue
		}
		for _, d := range st.s.kwMap[string(head)+t] {
			if s, e, conf := d.kw(b, k); conf > 0 {
				st.emit(d, s, e, conf)
			} else {
				st.keywordColumn(d, i, k)
			}
		}
	}
}

// joined handles the '_' or '-' at b[i] after a word: a MAC address whose
// first pair is letters (ee-66-bd-…) starts a group there, and a keyword
// may be written as two words (security_code, SECURITY_CODE, expiry-date
// for securitycode, expirydate). It returns where the main loop continues
// (i when it goes on as usual). Out of line: the main loop keeps its
// registers.
//
//go:noinline
func (st *scanner) joined(i int) int {
	b := st.b
	if i < 2 || i+2 >= len(b) {
		return i
	}
	if b[i] == '-' && isHex(b[i-1]) && isHex(b[i-2]) && (i == 2 || class[b[i-3]] == cOther) && isHex(b[i+1]) && isHex(b[i+2]) {
		if j := st.groups(i-2, i, false); j > i {
			return j
		}
	}
	if !isAlpha(b[i-1]) || !isAlpha(b[i+1]) {
		return i
	}
	ws := i - 1
	for ws > 0 && i-ws < 24 && isAlpha(b[ws-1]) {
		ws--
	}
	if i-ws < 2 || ws > 0 && isAlnum(b[ws-1]) {
		return i
	}
	k := i + 1
	for k < len(b) && k-i <= 24 && isAlpha(b[k]) {
		k++
	}
	l := i - ws + k - i - 1
	if k-i-1 < 2 || l > 24 || k < len(b) && isAlnum(b[k]) {
		return i
	}
	// the same prefilter as one-word keywords, on the joined length
	if h := kwPre(lowerByte(b[ws]), lowerByte(b[ws+1]), l); st.s.kwFirst2[h>>6]&(1<<(h&63)) == 0 {
		return i
	}
	var lw [24]byte
	w := append(lw[:0], b[ws:i]...)
	w = append(w, b[i+1:k]...)
	for x, c := range w {
		if isUpper(c) {
			w[x] = c + 'a' - 'A'
		} else if !isLower(c) {
			return i
		}
	}
	h := kwHash(w)
	if st.s.kwBloom[h>>6]&(1<<(h&63)) == 0 {
		return i
	}
	for _, d := range st.s.kwMap[string(w)] {
		if s, e, conf := d.kw(b, k); conf > 0 {
			st.emit(d, s, e, conf)
		} else {
			st.keywordColumn(d, ws, k)
		}
	}
	return i
}

// keywordColumn runs a keyword detector on the column below a table header
// that holds its keyword (a CSV export: the header labels every row).
func (st *scanner) keywordColumn(d *Detector, i, j int) {
	if st.colWork > colBudget(len(st.b)) {
		return
	}
	ls, le, sep, nf, col, ok := headerColumn(st.b, i, j)
	if !ok {
		return
	}
	budget := colBudget(len(st.b)) - st.colWork
	columnRows(st.b, ls, le, sep, nf, col, &budget, func(fs, fe int) bool {
		if d.keyValue != nil { // the header is the value's key, as in JSON
			if fe-fs >= 2 && st.b[fs] == '"' && st.b[fe-1] == '"' {
				fs, fe = fs+1, fe-1
			}
			if conf := d.keyValue(st.b[fs:fe]); conf > 0 {
				st.emit(d, fs, fe, conf)
			}
		} else if s, e, conf := d.kw(st.b, fs); conf > 0 && e <= fe {
			st.emit(d, s, e, conf)
		}
		return true
	})
	st.colWork = colBudget(len(st.b)) - budget
}

type unit struct {
	s, e int
	sep  byte // separator before this unit (0 for the first)
}

// groups builds the group of units starting with the word b[i:j], tries its
// candidate spans against the length-indexed detectors and returns where the
// main loop continues.
func (st *scanner) groups(i, j int, digitsOnly0 bool) int {
	b := st.b
	n := len(b)
	us := &st.units
	us[0] = unit{s: i, e: j}
	nu := 1
	pre := byte(0)
	if i > 0 && (b[i-1] == '+' || b[i-1] == '(') {
		pre = b[i-1]
	}
	for nu < maxGroupUnits && j < n {
		c := b[j]
		k := j + 1
		if c == ')' && nu == 1 && pre == '(' {
			if k < n && b[k] == ' ' {
				k++
			}
		} else if !isSep(c) {
			break
		}
		if k >= n || !isAlnum(b[k]) {
			break
		}
		e := k
		dg, up, lo := 0, 0, 0
		for e < n && class[b[e]] != cOther {
			switch class[b[e]] {
			case cDigit:
				dg++
			case cUpper:
				up++
			default:
				lo++
			}
			e++
		}
		l := e - k
		// a lone lower-case letter after a dash is a check character
		// written small (RUT 26681836-k)
		ok := dg > 0 || (l <= 4 && lo == 0) || (l <= 2 && allIn(b[k:e], isHex)) || (l == 1 && c == '-')
		if !ok || e-i > maxGroupRaw {
			break
		}
		if c == ' ' && dg == 0 && (l > 4 || lo > 0) {
			break
		}
		us[nu] = unit{s: k, e: e, sep: c}
		nu++
		j = e
		if l >= 2 && l <= 24 {
			st.keyword(k, e, false) // a joined word may still be a keyword (SSN 123…, cvv2)
		}
	}
	units := us[:nu]
	iban := nu >= 4 && ibanShaped(b, units)
	// Candidate spans: runs of units between space separators, longest first.
	a := 0
	for a < nu {
		if units[a].sep == '-' || units[a].sep == '.' || units[a].sep == '/' || units[a].sep == ')' {
			a++ // candidates start after a space (or at the group start)
			continue
		}
		matched := -1
		// collect the ends: unit index z where the next sep is a space or end
		var ends [maxSpanUnits]int
		ne := 0
		for z := a; z < nu && ne < maxSpanUnits; z++ {
			if z+1 == nu || units[z+1].sep == ' ' {
				ends[ne] = z
				ne++
			}
		}
		for x := ne - 1; x >= 0; x-- {
			z := ends[x]
			if st.candidate(units[a].s, units[z].e, a == 0, pre, a == z, a == 0 && digitsOnly0) {
				matched = z
				break
			}
		}
		if matched >= 0 {
			a = matched + 1
		} else if pre == '+' {
			break // "+44 …": the parts of a phone number are not values of their own
		} else if a == 0 && iban {
			break // nor are the groups of an IBAN in paper format (one that failed mod 97)
		} else {
			a++
		}
	}
	return j
}

// ibanShaped reports whether units read as an IBAN in paper format: a
// country and check digits ("GB82"), then groups of four.
func ibanShaped(b []byte, units []unit) bool {
	if len(units) < 4 {
		return false
	}
	u := units[0]
	if u.e-u.s != 4 || !isUpper(b[u.s]) || !isUpper(b[u.s+1]) || !isDigit(b[u.s+2]) || !isDigit(b[u.s+3]) {
		return false
	}
	for _, u := range units[1:3] {
		if u.sep != ' ' || u.e-u.s != 4 {
			return false
		}
	}
	return true
}

// cand is a group candidate handed to group detectors.
type cand struct {
	raw       []byte // the span text
	norm      []byte // its alphanumerics
	pre       byte   // '+' or '(' just before raw, else 0
	allDigits bool
	usePre    bool // set by a detector to include pre in the finding
}

func (st *scanner) candidate(s, e int, first bool, pre byte, single, digitsOnly bool) bool {
	raw := st.b[s:e]
	var nb []byte
	dg := digitsOnly
	if single {
		// one unit: the raw text is its own normal form
		if len(raw) > maxGroupNorm || st.s.plainIdx[len(raw)] == nil {
			return false
		}
		nb = raw
		if !dg {
			dg = true
			for _, c := range raw {
				if class[c] != cDigit {
					dg = false
					break
				}
			}
		}
	} else {
		nb = st.buf[:0]
		dg = true
		for _, c := range raw {
			if class[c] != cOther {
				if len(nb) == maxGroupNorm {
					return false
				}
				nb = append(nb, c)
				if class[c] != cDigit {
					dg = false
				}
			}
		}
	}
	ds := st.s.groupIdx[len(nb)]
	if single {
		ds = st.s.plainIdx[len(nb)]
	}
	if len(ds) == 0 {
		return false
	}
	c := &st.c
	*c = cand{raw: raw, norm: nb, allDigits: dg}
	if first {
		c.pre = pre
	}
	hit := false
	for _, d := range ds {
		if d.digitsOnly && !dg {
			continue
		}
		c.usePre = false
		if d.groupRoute != nil {
			if rd, conf := d.groupRoute(c); conf > 0 && st.s.enabled[rd] && st.emit(rd, s, e, conf) {
				hit = true
			}
			continue
		}
		if conf := d.group(c); conf > 0 {
			fs := s
			if c.usePre {
				fs--
			}
			if st.emit(d, fs, e, conf) {
				hit = true
			}
		}
	}
	return hit
}

// emit adjusts the confidence from context and records the finding when it
// reaches the threshold.
func (st *scanner) emit(d *Detector, s, e int, conf float64) bool {
	conf += st.context(d, s, e)
	if conf > 0.99 {
		conf = 0.99
	}
	if conf < st.s.minConf {
		return false
	}
	st.out = append(st.out, Finding{Detector: d.ID, Category: d.Category, Start: s, End: e, Confidence: round2(conf)})
	return true
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

const (
	ctxBefore = 48
	ctxAfter  = 24
)

// context returns the confidence adjustment from words around b[s:e] and
// from the JSON key. When both a raising and a lowering word are present,
// the one nearer to the value decides (the JSON key counts as nearest), so
// "tfn: 389 958 596. Last updated 2026-11-02" is still a tax file number.
func (st *scanner) context(d *Detector, s, e int) float64 {
	if len(d.ctxSet) == 0 {
		return 0
	}
	const far = 1 << 30
	posD, negD := far, far
	foreign := d.Category == NationalID || d.Category == PHI || d.yieldsToLabels
	weakD := far   // nearest weak word (one that names other types too)
	after := false // looking at the words after the value
	look := func(w []byte, dist int) {
		switch d.ctxSet[string(w)] {
		case 1:
			posD = min(posD, dist)
		case 2:
			weakD = min(weakD, dist)
		case -1:
			negD = min(negD, dist)
		case -2:
			if dist <= 2 && !after { // the JSON key, or the word and one separator before the value
				negD = min(negD, dist)
			}
		default:
			// the label of another identifier type lowers like a negative word
			if o := labelOwner[string(w)]; foreign && o != nil && o != d {
				negD = min(negD, dist)
			}
		}
	}
	// a word and the one before it also count as a phrase ("tax file"),
	// looked up only after one of the phrases' first words
	var cat [64]byte
	head := ""
	word := func(w []byte, dist int) {
		look(w, dist)
		if head != "" {
			if c := append(append(cat[:0], head...), w...); phrases[string(c)] {
				look(c, dist)
			}
			head = ""
		}
		for _, h := range phraseHeads {
			if len(h) == len(w) && h == string(w) {
				head = h
			}
		}
	}
	if st.key != nil {
		for _, w := range st.key.words {
			word([]byte(w), 0)
		}
	}
	lo := sentenceStart(st.b, max(0, s-ctxBefore), s)
	hi := sentenceEnd(st.b, e, min(len(st.b), e+ctxAfter))
	head = ""
	forWordsAt(st.b[lo:s], func(w []byte, _, j int) { word(w, 1+(s-lo)-j) })
	head, after = "", true
	forWordsAt(st.b[e:hi], func(w []byte, i, _ int) { word(w, 1+i) })
	after = false
	if posD == far && st.key == nil && st.colWork <= colBudget(len(st.b)) {
		// a table row: the column's header is the value's label
		if hs, he, ok := columnHeader(st.b, s, e, &st.col, &st.colWork); ok {
			head = ""
			forWords(st.b[hs:he], func(w []byte) { word(w, 0) })
		}
	}
	if posD == far && weakD == far && d.longIDs && st.key != nil && s == 0 && e == len(st.b) && e-s >= 17 && allDigits(st.b) && !carrierKey(st.key.words) {
		// a whole JSON value under a key that does not name the type:
		// the key labels it, and 17-19 digits under "id", "ts" or "big"
		// are that integer
		negD = 0
	}
	weak := posD == far && weakD < far
	if weak {
		posD = weakD
	}
	pos, neg := posD < far, negD < far
	if pos && neg {
		if posD < negD {
			neg = false
		} else {
			pos = false
		}
	}
	adj := 0.0
	if pos && len(d.keywords) == 0 { // a keyword detector's trigger already is its context
		adj += 0.3
		if weak {
			adj -= 0.15
		}
	}
	if neg {
		adj -= 0.5
	}
	return adj
}

// carrierKey reports whether a JSON key's words name a container of free
// content ("text" of an MCP content block, "body", "value") rather than
// what the value is.
func carrierKey(words []string) bool {
	for _, w := range words {
		switch w {
		case "text", "content", "body", "message", "msg", "value", "data", "result", "payload", "output":
			return true
		}
	}
	return false
}

// sentenceEnd returns the end of the context window b[e:hi]: the first
// sentence or line end in it, so words of the next sentence ("… 389 958
// 596. Last updated …") do not count as context of the value.
func sentenceEnd(b []byte, e, hi int) int {
	for i := e; i < hi; i++ {
		if b[i] == '\n' || (isSentencePunct(b[i]) && i+1 < len(b) && b[i+1] == ' ') {
			return i
		}
	}
	return hi
}

// sentenceStart is sentenceEnd for the window b[lo:s] before a value.
func sentenceStart(b []byte, lo, s int) int {
	for i := s - 1; i >= lo; i-- {
		if b[i] == '\n' || (isSentencePunct(b[i]) && i+1 < s && b[i+1] == ' ' && !abbrevStop(b, i)) {
			return i + 1
		}
	}
	return lo
}

func isSentencePunct(c byte) bool { return c == '.' || c == '!' || c == '?' || c == ';' }

// abbrevStop reports whether the '.' at b[i] ends an abbreviation that
// introduces a number ("NHS no. 943 …", "Tel. 020 …"), not a sentence.
func abbrevStop(b []byte, i int) bool {
	if b[i] != '.' {
		return false
	}
	s := i
	for s > 0 && i-s < 5 && isAlpha(b[s-1]) {
		s--
	}
	if s > 0 && isAlpha(b[s-1]) {
		return false
	}
	switch strings.ToLower(string(b[s:i])) {
	case "no", "nr", "num", "nos", "tel", "ref", "acct", "ph", "mob", "nº":
		return true
	}
	return false
}

// forWords calls f with each lowercased letter word (camel case split) of b.
func forWords(b []byte, f func([]byte)) {
	forWordsAt(b, func(w []byte, _, _ int) { f(w) })
}

// forWordsAt is forWords that also passes the word's span b[i:j].
func forWordsAt(b []byte, f func(w []byte, i, j int)) {
	var lw [32]byte // context words run long: steueridentifikationsnummer
	i := 0
	for i < len(b) {
		if !isAlpha(b[i]) && b[i] < 0x80 {
			i++
			continue
		}
		j := i + 1
		for j < len(b) && (isLower(b[j]) || b[j] >= 0x80 || (isUpper(b[j]) && (isUpper(b[j-1]) || (b[j-1] >= 0x80 && j-i > 1 && isUpper(b[i+1]))))) {
			j++
		}
		// digits glued to letters (cvv2, icd10) stay part of the word
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j-i <= len(lw) {
			w := lw[:j-i]
			wide := false
			for k := range w {
				c := b[i+k]
				if isUpper(c) {
					c += 'a' - 'A'
				}
				wide = wide || c >= 0x80
				w[k] = c
			}
			if wide { // HENKILÖTUNNUS, ΑΜΚΑ: fold non-ASCII letters too
				w = bytes.ToLower(w)
			}
			f(w, i, j)
		}
		i = j
	}
}

// better orders equally confident findings of one span: checksum-validated
// detectors first, then by id, so the choice never depends on scan order.
func better(a, b Finding) int {
	ca, cb := byID[a.Detector].Checksum, byID[b.Detector].Checksum
	switch {
	case ca && !cb:
		return -1
	case cb && !ca:
		return 1
	}
	return strings.Compare(a.Detector, b.Detector)
}

// resolve sorts findings from index first on and drops overlaps, keeping the
// more confident (then longer) finding.
func resolve(fs []Finding, first int) []Finding {
	tail := fs[first:]
	if len(tail) < 2 {
		return fs
	}
	slices.SortFunc(tail, func(a, b Finding) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		if a.End != b.End {
			return b.End - a.End
		}
		return better(a, b)
	})
	out := tail[:1]
	for _, f := range tail[1:] {
		last := &out[len(out)-1]
		if f.Start >= last.End {
			out = append(out, f)
			continue
		}
		if f.Confidence > last.Confidence || (f.Confidence == last.Confidence && f.End-f.Start > last.End-last.Start) ||
			(f.Confidence == last.Confidence && f.Start == last.Start && f.End == last.End && better(f, *last) < 0) {
			*last = f
		}
	}
	return fs[:first+len(out)]
}
