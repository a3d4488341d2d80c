package dlp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	w := walker{s: s, b: doc, keys: map[string]*keyCtx{}}
	if err := w.document(); err != nil {
		return nil, err
	}
	return w.out, nil
}

// walker is a small JSON parser that scans values as it goes.
type walker struct {
	s     *Scanner
	b     []byte
	p     int
	path  []pathSeg
	keys  map[string]*keyCtx
	out   []Finding
	depth int
	nest  int // JSON-in-string nesting level
}

type pathSeg struct {
	key   string
	index int // -1 for object members
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
		if isPlainKey(s.key) {
			sb.WriteByte('.')
			sb.WriteString(s.key)
		} else {
			sb.WriteString("[")
			sb.WriteString(strconv.Quote(s.key))
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
		s, e, esc, err := w.str()
		if err != nil {
			return err
		}
		w.scanString(s, e, esc)
		return nil
	case c == '-' || isDigit(c):
		s := w.p
		w.p++
		for w.p < len(w.b) && (isDigit(w.b[w.p]) || bytesIn(w.b[w.p], ".eE+-")) {
			w.p++
		}
		if _, err := strconv.ParseFloat(string(w.b[s:w.p]), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return w.errf("bad number")
		}
		w.scanSpan(s, w.p, nil, true)
		return nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if strings.HasPrefix(string(w.b[w.p:min(len(w.b), w.p+5)]), lit) {
				w.p += len(lit)
				return nil
			}
		}
		return w.errf("unexpected character %q", c)
	}
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
		ks, ke, esc, err := w.str()
		if err != nil {
			return err
		}
		key := string(w.b[ks:ke])
		if esc {
			if u, err := strconv.Unquote(string(w.b[ks-1 : ke+1])); err == nil {
				key = u
			}
		}
		w.ws()
		if w.p >= len(w.b) || w.b[w.p] != ':' {
			return w.errf("expected ':'")
		}
		w.p++
		w.ws()
		w.path = append(w.path, pathSeg{key: key, index: -1})
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
func (w *walker) str() (s, e int, esc bool, err error) {
	w.p++
	s = w.p
	for w.p < len(w.b) {
		c := w.b[w.p]
		switch {
		case c == '"':
			e = w.p
			w.p++
			return s, e, esc, nil
		case c == '\\':
			esc = true
			if w.p+1 >= len(w.b) || !bytesIn(w.b[w.p+1], "\"\\/bfnrtu") {
				return 0, 0, false, w.errf("bad escape")
			}
			if w.b[w.p+1] == 'u' && (w.p+6 > len(w.b) || !allIn(w.b[w.p+2:w.p+6], isHex)) {
				return 0, 0, false, w.errf("bad unicode escape")
			}
			w.p += 2
		case c < 0x20:
			return 0, 0, false, w.errf("control character in string")
		default:
			w.p++
		}
	}
	return 0, 0, false, w.errf("unterminated string")
}

// key returns the context of the innermost object key.
func (w *walker) key() *keyCtx {
	for i := len(w.path) - 1; i >= 0; i-- {
		if w.path[i].index < 0 {
			return w.keyCtx(w.path[i].key)
		}
	}
	return nil
}

func (w *walker) keyCtx(k string) *keyCtx {
	if kc, ok := w.keys[k]; ok {
		return kc
	}
	kc := &keyCtx{}
	forWords([]byte(k), func(word []byte) {
		kc.words = append(kc.words, string(word))
		for _, d := range w.s.kwMap[string(word)] {
			if !slices.Contains(kc.dets, d) {
				kc.dets = append(kc.dets, d)
			}
		}
	})
	if len(kc.words) == 0 && len(kc.dets) == 0 {
		kc = nil
	}
	w.keys[k] = kc
	return kc
}

func (w *walker) scanString(s, e int, esc bool) {
	if !esc {
		if w.nest < 2 && looksJSON(w.b[s:e]) && w.nested(w.b[s:e], nil, s) {
			return
		}
		w.scanSpan(s, e, nil, false)
		return
	}
	u, idx, ok := unescape(w.b[s:e])
	if !ok {
		w.scanSpan(s, e, nil, false)
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
	inner := walker{s: w.s, b: v, keys: w.keys, nest: w.nest + 1}
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

func (w *walker) scanSpan(s, e int, _ []int, number bool) {
	first := len(w.out)
	w.out = w.s.scan(w.b[s:e], w.key(), w.out)
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
	w.out = w.s.scan(u, w.key(), w.out)
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
