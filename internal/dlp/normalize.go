package dlp

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalisation: evasions that hide a value from byte-oriented detectors
// (full-width or Arabic-Indic digits, NBSP or zero-width characters between
// digit groups, a card number split over lines, %-encoded or HTML-entity
// encoded text) are folded into the ASCII form the detectors read. The
// normalised text carries an offset map, so every finding maps back to the
// exact original bytes and redaction rewrites those.
//
// The scanner only normalises when its single pass met a trigger byte (a
// non-ASCII byte, "%XX", "&…;", or a line break between digit groups), and
// only rescans when normalisation changed something, so clean ASCII text
// pays one table lookup per punctuation byte.

// normMap maps the bytes of a normalised text to the original: normalised
// byte k came from the original bytes [start[k], end[k]). Both slices are
// non-decreasing and start[k] < end[k].
type normMap struct {
	start, end []int32
}

// span returns the original byte span of the normalised span [s, e).
func (m *normMap) span(s, e int) (int, int) {
	if e <= s {
		return int(m.start[s]), int(m.start[s])
	}
	return int(m.start[s]), int(m.end[e-1])
}

const maxNormInput = 1 << 30 // offsets are int32

// normTrig marks bytes that may start something normalisation changes.
var normTrig = func() (t [256]uint8) {
	for c := 0x80; c < 0x100; c++ {
		t[c] = 1
	}
	t['%'], t['&'], t['+'] = 2, 2, 2
	t['\n'], t['\r'], t['\t'] = 3, 3, 3
	return
}()

// normWorth is the trigger test at b[i], a byte with normTrig set: whether
// normalisation could change the text there.
func normWorth(b []byte, i int) bool {
	switch b[i] {
	case '%':
		return i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2])
	case '&':
		return i+3 < len(b) && (b[i+1] == '#' || isAlpha(b[i+1]))
	case '\n', '\r', '\t':
		_, ok := lineBreakSep(b, i)
		return ok
	case '+':
		return plusSep(b, i)
	}
	return true
}

// plusSep reports whether the '+' at b[i] is a form-encoded space between
// the groups of a value ("card+4111+1111", "GB82+WEST+1234"): the words on
// both sides are bounded, and one is all digits or both are groups of at
// most four with a digit. Base64 and sums rarely look like that.
func plusSep(b []byte, i int) bool {
	if i == 0 || i+1 >= len(b) || !isAlnum(b[i-1]) || !isAlnum(b[i+1]) {
		return false
	}
	p, digitsBefore, dgB := i, true, false
	for p > 0 && i-p < 24 && isAlnum(b[p-1]) {
		p--
		digitsBefore = digitsBefore && isDigit(b[p])
		dgB = dgB || isDigit(b[p])
	}
	if p > 0 && (isAlnum(b[p-1]) || b[p-1] == '/') {
		return false
	}
	q, digitsAfter, dgA := i+1, true, false
	for q < len(b) && q-i < 24 && isAlnum(b[q]) {
		digitsAfter = digitsAfter && isDigit(b[q])
		dgA = dgA || isDigit(b[q])
		q++
	}
	if q < len(b) && (isAlnum(b[q]) || b[q] == '/' || b[q] == '=') {
		return false
	}
	return digitsBefore || digitsAfter || (i-p <= 4 && q-i-1 <= 4 && (dgA || dgB))
}

// lineBreakSep reports whether the whitespace at b[i] ('\n', "\r\n", '\t')
// sits between two digit groups ("4111\n1111") and returns its length. The
// group before must be 2–6 digits standing on its own (not "ms=41\n2026").
func lineBreakSep(b []byte, i int) (int, bool) {
	k := i
	if b[k] == '\r' && k+1 < len(b) && b[k+1] == '\n' {
		k++
	}
	k++
	// digits after
	d := k
	for d < len(b) && d-k <= 6 && isDigit(b[d]) {
		d++
	}
	if d-k < 2 || d-k > 6 {
		return 0, false
	}
	// digits before, then a boundary
	p := i
	for p > 0 && i-p <= 6 && isDigit(b[p-1]) {
		p--
	}
	if i-p < 2 || i-p > 6 {
		return 0, false
	}
	if p > 0 {
		switch c := b[p-1]; {
		case isAlpha(c), c == '=', c == ':', c == '_', c == '.', c == ',', c == '/':
			return 0, false
		}
	}
	return k - i, true
}

// zeroWidth lists the invisible characters dropped by normalisation.
func zeroWidth(r rune) bool {
	switch r {
	case 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E, 0x2061, 0x2062, 0x2063, 0x2064:
		return true
	}
	return false
}

// digitValue returns the value of a Unicode decimal digit (Nd). Every Nd
// range of the Unicode tables starts at a zero and runs in blocks of ten.
func digitValue(r rune) (byte, bool) {
	if r < 0x80 || !unicode.Is(unicode.Nd, r) {
		return 0, false
	}
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r-rune(rg.Lo))%10) + '0', true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r-rune(rg.Lo))%10) + '0', true
		}
	}
	return 0, false
}

// foldRune returns the ASCII text rune r stands for ("" with drop true for
// an invisible character), or ok false when r stays as it is.
func foldRune(r rune, buf *[8]byte) (out []byte, ok bool) {
	switch {
	case zeroWidth(r):
		return buf[:0], true
	case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
		buf[0] = byte(r - 0xFEE0)
		return buf[:1], true
	case r == 0x3000 || r == 0x00A0 || r == 0x202F || r == 0x205F || (r >= 0x2000 && r <= 0x200A) || r == 0x1680:
		buf[0] = ' '
		return buf[:1], true
	case (r >= 0x2010 && r <= 0x2015) || r == 0x2212 || r == 0xFE58 || r == 0xFE63 || r == 0x2043:
		buf[0] = '-'
		return buf[:1], true
	case r == 0x2024 || r == 0xFF0E || r == 0x00B7:
		buf[0] = '.'
		return buf[:1], true
	}
	if d, ok := digitValue(r); ok {
		buf[0] = d
		return buf[:1], true
	}
	if r < 0xA0 {
		return nil, false
	}
	// other compatibility characters whose NFKC form is ASCII (①, ², ﬁ,
	// mathematical alphanumerics); accented letters keep their form
	var rb [4]byte
	n := utf8.EncodeRune(rb[:], r)
	p := norm.NFKC.Properties(rb[:n])
	dec := p.Decomposition()
	if len(dec) == 0 || len(dec) > len(buf) {
		return nil, false
	}
	for _, c := range dec {
		if c >= 0x80 || c < 0x20 {
			return nil, false
		}
	}
	return append(buf[:0], dec...), true
}

// htmlNamed lists the named entities normalisation decodes (the ones that
// stand for digits' separators, letters of a keyword's punctuation, or
// markup).
var htmlNamed = map[string]rune{
	"nbsp": 0xA0, "amp": '&', "lt": '<', "gt": '>', "quot": '"', "apos": '\'', "hyphen": '-', "dash": '-',
	"minus": '-', "ndash": 0x2013, "mdash": 0x2014, "period": '.', "comma": ',', "colon": ':', "semi": ';',
	"equals": '=', "plus": '+', "sol": '/', "num": '#', "percnt": '%', "lowbar": '_', "commat": '@',
	"lpar": '(', "rpar": ')', "thinsp": 0x2009, "ensp": 0x2002, "emsp": 0x2003, "zwsp": 0x200B,
	"NonBreakingSpace": 0xA0, "ZeroWidthSpace": 0x200B, "zwj": 0x200D, "zwnj": 0x200C, "shy": 0xAD, "Tab": '\t', "NewLine": '\n',
}

// htmlEntity decodes an entity at b[i] ('&'): its rune and length.
func htmlEntity(b []byte, i int) (rune, int, bool) {
	p := i + 1
	if p < len(b) && b[p] == '#' {
		p++
		hex := p < len(b) && (b[p] == 'x' || b[p] == 'X')
		if hex {
			p++
		}
		s := p
		base := rune(10)
		if hex {
			base = 16
		}
		var v rune
	digits:
		for p < len(b) && p-s < 7 {
			var d rune
			switch c := b[p]; {
			case isDigit(c):
				d = rune(c - '0')
			case hex && isHex(c):
				d = rune(lowerByte(c)-'a') + 10
			default:
				break digits
			}
			v = v*base + d
			p++
		}
		if p == s || p >= len(b) || b[p] != ';' || v == 0 || v > unicode.MaxRune || (v >= 0xD800 && v < 0xE000) {
			return 0, 0, false
		}
		return v, p + 1 - i, true
	}
	s := p
	for p < len(b) && p-s < 16 && isAlpha(b[p]) {
		p++
	}
	if p == s || p >= len(b) || b[p] != ';' {
		return 0, 0, false
	}
	r, ok := htmlNamed[string(b[s:p])]
	if !ok {
		return 0, 0, false
	}
	return r, p + 1 - i, true
}

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// normalizer holds the reusable buffers of one normalisation.
type normalizer struct {
	out []byte
	m   normMap
}

// normalize folds b into the form detectors read. It returns false (and
// leaves n untouched) when nothing in b changes.
func (n *normalizer) normalize(b []byte) bool {
	if len(b) > maxNormInput {
		return false
	}
	n.out, n.m.start, n.m.end = n.out[:0], n.m.start[:0], n.m.end[:0]
	changed := false
	var fb [8]byte
	put := func(c byte, s, e int) {
		n.out = append(n.out, c)
		n.m.start = append(n.m.start, int32(s))
		n.m.end = append(n.m.end, int32(e))
	}
	// emitRune writes the folded form of r, which came from b[s:e]
	emitRune := func(r rune, s, e int) {
		if f, ok := foldRune(r, &fb); ok {
			for _, c := range f {
				put(c, s, e)
			}
			changed = true
			return
		}
		var rb [4]byte
		k := utf8.EncodeRune(rb[:], r)
		for _, c := range rb[:k] {
			put(c, s, e)
		}
	}
	for i := 0; i < len(b); {
		c := b[i]
		if normTrig[c] == 0 {
			put(c, i, i+1)
			i++
			continue
		}
		switch {
		case c >= 0x80:
			r, sz := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && sz == 1 {
				put(c, i, i+1)
				i++
				continue
			}
			emitRune(r, i, i+sz)
			i += sz
		case c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			v := unhex(b[i+1])<<4 | unhex(b[i+2])
			if v < 0x80 {
				put(v, i, i+3)
				changed = true
				i += 3
				continue
			}
			// a %-encoded UTF-8 sequence (%C2%A0, %EF%BC%94)
			var u [4]byte
			k, p := 0, i
			for k < 4 && p+2 < len(b) && b[p] == '%' && isHex(b[p+1]) && isHex(b[p+2]) {
				u[k] = unhex(b[p+1])<<4 | unhex(b[p+2])
				k++
				p += 3
				if utf8.FullRune(u[:k]) {
					break
				}
			}
			r, sz := utf8.DecodeRune(u[:k])
			if r == utf8.RuneError || sz != k {
				put(c, i, i+1)
				i++
				continue
			}
			emitRune(r, i, p)
			changed = true
			i = p
		case c == '&':
			r, l, ok := htmlEntity(b, i)
			if !ok {
				put(c, i, i+1)
				i++
				continue
			}
			emitRune(r, i, i+l)
			changed = true
			i += l
		case c == '+' && plusSep(b, i):
			put(' ', i, i+1)
			changed = true
			i++
		case c == '\n' || c == '\r' || c == '\t':
			if l, ok := lineBreakSep(b, i); ok {
				put(' ', i, i+l)
				changed = true
				i += l
				continue
			}
			put(c, i, i+1)
			i++
		default:
			put(c, i, i+1)
			i++
		}
	}
	return changed
}
