package dlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrInvalidJSON is returned (wrapped, with the offset) for malformed JSON.
var ErrInvalidJSON = errors.New("dlp: invalid JSON")

const maxJSONDepth = 512

// ScanJSON finds sensitive values in the string values and numbers of a JSON
// document. Key names are used as context and every finding carries the JSON
// path of its value. Strings that themselves hold a JSON document (common in
// MCP tool results) are scanned as JSON too; their findings' paths join the
// outer and inner path with '#'. Offsets are byte offsets in doc.
func (s *Scanner) ScanJSON(doc []byte) ([]Finding, error) {
	w := walkerPool.Get().(*walker)
	defer func() {
		// keys are cached per Scanner generation only within one call
		clear(w.keys)
		w.kcache = [len(w.kcache)]kcEntry{}
		w.s, w.b, w.out, w.path = nil, nil, nil, w.path[:0]
		w.depth, w.nest, w.p = 0, 0, 0
		walkerPool.Put(w)
	}()
	w.s, w.b = s, doc
	if err := w.document(); err != nil {
		return nil, err
	}
	return w.out, nil
}

var walkerPool = sync.Pool{New: func() any {
	return &walker{keys: map[string]*keyCtx{}, st: new(scanner)}
}}

// walker is a small JSON parser that scans values as it goes.
type walker struct {
	s      *Scanner
	b      []byte
	p      int
	path   []pathSeg
	keys   map[string]*keyCtx
	out    []Finding
	depth  int
	nest   int // JSON-in-string nesting level
	kcache [64]kcEntry
	st     *scanner
	exp    bool // the last number had an exponent
}

type kcEntry struct {
	raw string
	kc  *keyCtx
	set bool
}

type pathSeg struct {
	ks, ke int     // raw span of the key in the document
	esc    bool    // the key has escapes
	index  int     // -1 for object members
	kc     *keyCtx // the key's context, once looked up
}

func (w *walker) keyString(s pathSeg) string {
	k := string(w.b[s.ks:s.ke])
	if s.esc {
		if u, err := strconv.Unquote(`"` + k + `"`); err == nil {
			return u
		}
	}
	return k
}

func (w *walker) pathString() string {
	var sb strings.Builder
	sb.WriteByte('$')
	for _, s := range w.path {
		if s.index >= 0 {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.index))
			sb.WriteByte(']')
			continue
		}
		if fs := s.kc.finds(); len(fs) > 0 {
			// a key holding a sensitive value is never shown
			sb.WriteString(`["[REDACTED:` + fs[0].Detector + `]"]`)
			continue
		}
		key := w.keyString(s)
		if isPlainKey(key) {
			sb.WriteByte('.')
			sb.WriteString(key)
		} else {
			sb.WriteString("[")
			sb.WriteString(strconv.Quote(key))
			sb.WriteString("]")
		}
	}
	return sb.String()
}

func isPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func (w *walker) errf(format string, a ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrInvalidJSON, w.p, fmt.Sprintf(format, a...))
}

func (w *walker) ws() {
	for w.p < len(w.b) {
		switch w.b[w.p] {
		case ' ', '\t', '\n', '\r':
			w.p++
		default:
			return
		}
	}
}

func (w *walker) document() error {
	w.ws()
	if err := w.value(); err != nil {
		return err
	}
	w.ws()
	if w.p != len(w.b) {
		return w.errf("trailing data")
	}
	return nil
}

func (w *walker) value() error {
	if w.p >= len(w.b) {
		return w.errf("unexpected end of input")
	}
	switch c := w.b[w.p]; {
	case c == '{':
		return w.object()
	case c == '[':
		return w.array()
	case c == '"':
		s, e, esc, prose, err := w.str()
		if err != nil {
			return err
		}
		w.scanString(s, e, esc, prose)
		return nil
	case c == '-' || isDigit(c):
		s := w.p
		if !w.number() {
			return w.errf("bad number")
		}
		// 4111111111111111.0 (a float column, Python's json) is scanned
		// as its integer part; the rewrite still covers the whole token
		if w.exp {
			if x := expandExp(w.b[s:w.p]); x != nil {
				w.scanExp(s, x) // 4.111111111111111e+15: the integer it spells
				return nil
			}
		}
		e := intPart(w.b[s:w.p]) + s
		first := len(w.out)
		w.scanSpan(s, e, false, true)
		for k := first; k < len(w.out); k++ {
			w.out[k].tokEnd = w.p
		}
		return nil
	default:
		for _, lit := range [][]byte{[]byte("true"), []byte("false"), []byte("null")} {
			if bytes.HasPrefix(w.b[w.p:], lit) {
				w.p += len(lit)
				return nil
			}
		}
		return w.errf("unexpected character %q", c)
	}
}

// expandExp returns the digits of the integer that the exponent-form
// number n spells ("4.111111111111111e+15" → "4111111111111111"), or nil
// when n has no exponent, is not an integer, or is shorter than any
// identifier (8 digits) or longer than 24.
func expandExp(n []byte) []byte {
	ei := bytes.IndexAny(n, "eE")
	if ei < 0 {
		return nil
	}
	m, xs := n[:ei], n[ei+1:]
	if len(m) > 0 && m[0] == '-' {
		m = m[1:]
	}
	x, err := strconv.Atoi(strings.TrimPrefix(string(xs), "+"))
	if err != nil || x < 0 || x > 24 {
		return nil
	}
	ip, fp := m, []byte(nil)
	if d := bytes.IndexByte(m, '.'); d >= 0 {
		ip, fp = m[:d], bytes.TrimRight(m[d+1:], "0")
	}
	if len(fp) > x {
		return nil // a fraction remains
	}
	out := make([]byte, 0, 24)
	out = append(out, bytes.TrimLeft(ip, "0")...)
	fl := len(fp) // the exponent shifts the fraction's digits, leading zeros included
	if len(out) == 0 {
		fp = bytes.TrimLeft(fp, "0")
	}
	out = append(out, fp...)
	if len(out) == 0 {
		return nil // zero
	}
	for i := fl; i < x; i++ {
		out = append(out, '0')
	}
	if len(out) < 8 || len(out) > 24 {
		return nil
	}
	return out
}

// scanExp scans the integer digits x of the exponent-form number token
// starting at s; a finding covers the whole token and carries the digits.
func (w *walker) scanExp(s int, x []byte) {
	first := len(w.out)
	w.out = w.s.scanWith(w.st, x, w.key(), w.out)
	if len(w.out) == first {
		return
	}
	path := w.pathString()
	for k := first; k < len(w.out); k++ {
		f := &w.out[k]
		f.plain = string(x[f.Start:f.End])
		f.Start, f.End = s, w.p
		f.Path = path
		f.inNumber = true
		f.tokStart, f.tokEnd = s, w.p
	}
}

// intPart returns the length of number n without a fraction made only of
// zeros ("4111111111111111.000" → 16); other numbers are returned whole.
func intPart(n []byte) int {
	dot := bytes.IndexByte(n, '.')
	if dot < 0 {
		return len(n)
	}
	for _, c := range n[dot+1:] {
		if c != '0' {
			return len(n)
		}
	}
	return dot
}

// number consumes a JSON number (RFC 8259 grammar) at w.p.
func (w *walker) number() bool {
	b, p := w.b, w.p
	if p < len(b) && b[p] == '-' {
		p++
	}
	switch {
	case p < len(b) && b[p] == '0':
		p++
	case p < len(b) && b[p] >= '1' && b[p] <= '9':
		for p < len(b) && isDigit(b[p]) {
			p++
		}
	default:
		return false
	}
	if p < len(b) && b[p] == '.' {
		p++
		if p >= len(b) || !isDigit(b[p]) {
			return false
		}
		for p < len(b) && isDigit(b[p]) {
			p++
		}
	}
	w.exp = false
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		w.exp = true
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		if p >= len(b) || !isDigit(b[p]) {
			return false
		}
		for p < len(b) && isDigit(b[p]) {
			p++
		}
	}
	w.p = p
	return true
}

func (w *walker) object() error {
	if w.depth++; w.depth > maxJSONDepth {
		return w.errf("nesting deeper than %d", maxJSONDepth)
	}
	defer func() { w.depth-- }()
	w.p++
	w.ws()
	if w.p < len(w.b) && w.b[w.p] == '}' {
		w.p++
		return nil
	}
	for {
		w.ws()
		if w.p >= len(w.b) || w.b[w.p] != '"' {
			return w.errf("expected object key")
		}
		ks, ke, esc, prose, err := w.str()
		if err != nil {
			return err
		}
		w.ws()
		if w.p >= len(w.b) || w.b[w.p] != ':' {
			return w.errf("expected ':'")
		}
		w.p++
		w.ws()
		w.path = append(w.path, pathSeg{ks: ks, ke: ke, esc: esc, index: -1})
		if ke-ks >= 3 && !prose {
			w.scanKey(&w.path[len(w.path)-1])
		}
		if err := w.value(); err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
		w.ws()
		if w.p >= len(w.b) {
			return w.errf("unterminated object")
		}
		if w.b[w.p] == ',' {
			w.p++
			continue
		}
		if w.b[w.p] == '}' {
			w.p++
			return nil
		}
		return w.errf("expected ',' or '}'")
	}
}

func (w *walker) array() error {
	if w.depth++; w.depth > maxJSONDepth {
		return w.errf("nesting deeper than %d", maxJSONDepth)
	}
	defer func() { w.depth-- }()
	w.p++
	w.ws()
	if w.p < len(w.b) && w.b[w.p] == ']' {
		w.p++
		return nil
	}
	for i := 0; ; i++ {
		w.ws()
		w.path = append(w.path, pathSeg{index: i})
		if err := w.value(); err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
		w.ws()
		if w.p >= len(w.b) {
			return w.errf("unterminated array")
		}
		if w.b[w.p] == ',' {
			w.p++
			continue
		}
		if w.b[w.p] == ']' {
			w.p++
			return nil
		}
		return w.errf("expected ',' or ']'")
	}
}

// str parses a string at w.p and returns the span of its raw contents.
//
// prose reports, from the same pass, whether the string holds only
// proseByte bytes and no escape.
func (w *walker) str() (s, e int, esc, prose bool, err error) {
	w.p++
	s = w.p
	var seen uint8
	for w.p < len(w.b) {
		for w.p < len(w.b) {
			t := strByte[w.b[w.p]]
			if t&strSpecial != 0 {
				break
			}
			seen |= t
			w.p++
		}
		if w.p >= len(w.b) {
			break
		}
		c := w.b[w.p]
		switch {
		case c == '"':
			e = w.p
			w.p++
			return s, e, esc, !esc && seen&strNotProse == 0, nil
		case c == '\\':
			esc = true
			if w.p+1 >= len(w.b) || !bytesIn(w.b[w.p+1], "\"\\/bfnrtu") {
				return 0, 0, false, false, w.errf("bad escape")
			}
			if w.b[w.p+1] == 'u' && (w.p+6 > len(w.b) || !allIn(w.b[w.p+2:w.p+6], isHex)) {
				return 0, 0, false, false, w.errf("bad unicode escape")
			}
			w.p += 2
		case c < 0x20:
			return 0, 0, false, false, w.errf("control character in string")
		default:
			w.p++
		}
	}
	return 0, 0, false, false, w.errf("unterminated string")
}

// proseByte marks bytes that cannot start or complete any finding on their
// own: lower-case letters, spaces and sentence punctuation. Every detector
// needs a digit, a capital letter or a symbol such as '@', ':', '=', '-'
// or '_' in or around its value, so a string of prose bytes only cannot
// hold a finding.
var proseByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for _, c := range " ,.;!?'()" {
		t[c] = true
	}
	return
}()

// strByte classifies the bytes of a JSON string: strSpecial ends or
// interrupts its plain run, strNotProse is not a proseByte.
var strByte = func() (t [256]uint8) {
	for c := range t {
		if !proseByte[c] {
			t[c] |= strNotProse
		}
	}
	for c := 0; c < 0x20; c++ {
		t[c] |= strSpecial
	}
	t['"'] |= strSpecial
	t['\\'] |= strSpecial
	return
}()

const (
	strSpecial = 1 << iota
	strNotProse
)

// key returns the context of the innermost object key.
func (w *walker) key() *keyCtx {
	for i := len(w.path) - 1; i >= 0; i-- {
		if seg := &w.path[i]; seg.index < 0 {
			return w.keyCtx(seg)
		}
	}
	return nil
}

// keyCtx returns the context of the key of seg, remembered in seg.
func (w *walker) keyCtx(seg *pathSeg) *keyCtx {
	if seg.kc == nil {
		seg.kc = w.lookupKey(*seg)
	}
	return seg.kc
}

func (w *walker) lookupKey(seg pathSeg) *keyCtx {
	raw := w.b[seg.ks:seg.ke]
	// a direct-mapped cache in front of the map: keys repeat a lot
	slot := 0
	if len(raw) > 0 {
		slot = (len(raw)*31 + int(raw[0])*7 + int(raw[len(raw)-1])) & (len(w.kcache) - 1)
		if e := &w.kcache[slot]; e.set && string(raw) == e.raw {
			return e.kc
		}
	}
	if kc, ok := w.keys[string(raw)]; ok {
		w.kcache[slot] = kcEntry{raw: kc.raw, kc: kc, set: true}
		return kc
	}
	k := w.keyString(seg)
	kc := &keyCtx{raw: string(raw)}
	trigger := func(word []byte) {
		for _, d := range w.s.kwMap[string(word)] {
			if !slices.Contains(kc.dets, d) {
				kc.dets = append(kc.dets, d)
			}
		}
	}
	forWords([]byte(k), func(word []byte) {
		kc.words = append(kc.words, string(word))
		trigger(word)
	})
	if len(kc.words) > 1 {
		// a keyword written as one word in text is split by the key's case
		// or separators: "SecretAccessKey", "aws_secret_access_key"
		var jb [24]byte
		j := jb[:0]
		for _, wd := range kc.words {
			if len(j)+len(wd) > len(jb) {
				j = nil // longer than any keyword
				break
			}
			j = append(j, wd...)
		}
		if j != nil {
			trigger(j)
		}
	}
	w.keys[kc.raw] = kc
	w.kcache[slot] = kcEntry{raw: kc.raw, kc: kc, set: true}
	return kc
}

func (w *walker) scanString(s, e int, esc, prose bool) {
	if !esc {
		if w.nest < 2 && looksJSON(w.b[s:e]) && w.nested(w.b[s:e], nil, s) {
			return
		}
		w.scanSpan(s, e, prose, false)
		return
	}
	u, idx, ok := unescape(w.b[s:e])
	if !ok {
		w.scanSpan(s, e, false, false)
		return
	}
	for k := range idx {
		idx[k] += s
	}
	if w.nest < 2 && looksJSON(u) && w.nested(u, idx, s) {
		return
	}
	w.scanMapped(u, idx, false)
}

func looksJSON(v []byte) bool {
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return true
		default:
			return false
		}
	}
	return false
}

// nested scans a JSON document held in a string. idx maps offsets in v to
// offsets in the outer input (nil: v starts at base in the outer input).
func (w *walker) nested(v []byte, idx []int, base int) bool {
	inner := walker{s: w.s, b: v, keys: w.keys, nest: w.nest + 1, st: w.st}
	if inner.document() != nil {
		return false
	}
	outer := w.pathString()
	for _, f := range inner.out {
		if idx != nil {
			f.Start, f.End = idx[f.Start], idx[f.End]
			f.tokStart, f.tokEnd = idx[f.tokStart], idx[f.tokEnd]
		} else {
			f.Start, f.End = f.Start+base, f.End+base
			f.tokStart, f.tokEnd = f.tokStart+base, f.tokEnd+base
		}
		f.Path = outer + "#" + f.Path
		f.escaped = f.escaped || idx != nil
		w.out = append(w.out, f)
	}
	return true
}

// scanSpan scans the raw value w.b[s:e]; prose says it holds only
// proseByte bytes.
func (w *walker) scanSpan(s, e int, prose, number bool) {
	if e-s < 3 {
		return // no detector reports fewer than three characters
	}
	key := w.key()
	if prose && (key == nil || len(key.dets) == 0) {
		return // lower-case prose: no detector can match without digits, capitals or symbols
	}
	first := len(w.out)
	w.out = w.s.scanWith(w.st, w.b[s:e], key, w.out)
	if len(w.out) == first {
		return
	}
	path := w.pathString()
	for k := first; k < len(w.out); k++ {
		f := &w.out[k]
		f.Start += s
		f.End += s
		f.Path = path
		f.inNumber = number
		f.tokStart, f.tokEnd = s, e
	}
}

func (w *walker) scanMapped(u []byte, idx []int, number bool) {
	first := len(w.out)
	w.out = w.s.scanWith(w.st, u, w.key(), w.out)
	if len(w.out) == first {
		return
	}
	path := w.pathString()
	for k := first; k < len(w.out); k++ {
		f := &w.out[k]
		f.Start, f.End = idx[f.Start], idx[f.End]
		f.Path = path
		f.escaped = true
		f.tokStart, f.tokEnd = idx[0], idx[len(idx)-1]
	}
}

// unescape decodes the contents of a JSON string. idx[i] is the offset in
// raw where the byte u[i] came from; idx[len(u)] is len(raw).
func unescape(raw []byte) (u []byte, idx []int, ok bool) {
	u = make([]byte, 0, len(raw))
	idx = make([]int, 0, len(raw)+1)
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			u = append(u, c)
			idx = append(idx, i)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return nil, nil, false
		}
		start := i
		switch raw[i+1] {
		case '"', '\\', '/':
			u = append(u, raw[i+1])
			idx = append(idx, start)
			i += 2
		case 'b', 'f', 'n', 'r', 't':
			u = append(u, map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[raw[i+1]])
			idx = append(idx, start)
			i += 2
		case 'u':
			if i+6 > len(raw) {
				return nil, nil, false
			}
			r, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
			if err != nil {
				return nil, nil, false
			}
			i += 6
			ru := rune(r)
			if ru >= 0xD800 && ru < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32); err == nil && r2 >= 0xDC00 && r2 < 0xE000 {
					ru = (ru-0xD800)<<10 + (rune(r2) - 0xDC00) + 0x10000
					i += 6
				}
			}
			var buf [4]byte
			n := utf8.EncodeRune(buf[:], ru)
			for k := 0; k < n; k++ {
				u = append(u, buf[k])
				idx = append(idx, start)
			}
		default:
			return nil, nil, false
		}
	}
	idx = append(idx, len(raw))
	return u, idx, true
}

// scanKey scans the object key of path segment i as a value: a card number
// or a token used as a key is as sensitive as one in a value. The key's
// findings are cached with its context (keys repeat), and a key holding
// one is shown redacted in every path below it.
func (w *walker) scanKey(seg *pathSeg) {
	raw := w.b[seg.ks:seg.ke]
	kc := w.keyCtx(seg)
	if kc.keyFinds == nil {
		var fs []Finding
		if !seg.esc {
			fs = w.s.scanWith(w.st, raw, nil, nil)
		} else if u, idx, ok := unescape(raw); ok {
			fs = w.s.scanWith(w.st, u, nil, nil)
			for k := range fs {
				f := &fs[k]
				f.Start, f.End = idx[f.Start], idx[f.End]
				f.escaped = true
			}
		}
		kc.keyFinds = &noKeyFinds
		if len(fs) > 0 {
			kc.keyFinds = new([]Finding)
			*kc.keyFinds = fs
		}
	}
	finds := kc.finds()
	if len(finds) == 0 {
		return
	}
	path := w.pathString()
	for _, f := range finds {
		f.Start += seg.ks
		f.End += seg.ks
		f.tokStart, f.tokEnd = seg.ks, seg.ke
		f.Path = path
		w.out = append(w.out, f)
	}
}

// ScanJSONLines scans JSON Lines (NDJSON): every non-blank line is one JSON
// document, scanned as ScanJSON would. Offsets are byte offsets in doc; a
// finding's path starts with the 1-based line number ("3:$.user.email").
// A line that is not valid JSON fails the whole call with its line number.
func (s *Scanner) ScanJSONLines(doc []byte) ([]Finding, error) {
	var out []Finding
	line := 0
	for p := 0; p < len(doc); {
		line++
		e := bytes.IndexByte(doc[p:], '\n')
		if e < 0 {
			e = len(doc)
		} else {
			e += p
		}
		l := doc[p:e]
		if len(bytes.TrimSpace(l)) > 0 {
			fs, err := s.ScanJSON(l)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			prefix := strconv.Itoa(line) + ":"
			for _, f := range fs {
				f.Start += p
				f.End += p
				f.tokStart += p
				f.tokEnd += p
				f.Path = prefix + f.Path
				out = append(out, f)
			}
		}
		p = e + 1
	}
	return out, nil
}

// LooksJSONLines reports whether doc starts like JSON Lines: its first
// line is a complete JSON object or array and more lines follow.
func LooksJSONLines(doc []byte) bool {
	e := bytes.IndexByte(doc, '\n')
	if e < 0 || e+1 >= len(doc) {
		return false
	}
	first := bytes.TrimSpace(doc[:e])
	if len(first) == 0 || (first[0] != '{' && first[0] != '[') {
		return false
	}
	return json.Valid(first)
}
