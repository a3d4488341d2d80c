package dlp

import (
	"encoding/base64"
	"unicode/utf8"
)

// Decoding: a sensitive value hidden in base64 (standard or URL alphabet,
// padded or not) or hex is found by decoding the run and scanning the
// decoded text (which may itself be encoded: the depth is bounded). Only
// runs the single pass met are decoded, only those encodedRun cannot
// dismiss from their first bytes, and only when the decoded bytes are
// printable text, so ids, dates and paths cost a table lookup and hashes
// and base64 images one short decode. A finding inside an encoded run is
// reported on the whole run: redacting or blocking it removes the encoded
// token.

const (
	minEncoded     = 16      // shortest run decoded (base64 of "ssn 123-45-6789" is 20)
	maxEncoded     = 1 << 16 // longest run decoded
	maxDecodeDepth = 2       // encodings inside encodings followed
)

// b64Byte marks the bytes of a base64 (either alphabet) or hex run.
var b64Byte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isAlnum(byte(c))
	}
	t['+'], t['/'], t['-'], t['_'] = true, true, true, true
	return
}()

// b64Sep marks the base64 bytes that are not alphanumeric.
var b64Sep = [256]bool{'+': true, '/': true, '-': true, '_': true}

// b64First marks the bytes that cannot start the base64 of text nor hex:
// 'G', 'H' decode to a control byte and 'g'…'v' to a UTF-8 continuation
// byte (0x80–0xBF), which no text starts with.
var b64First = func() (t [256]bool) {
	t['G'], t['H'] = true, true
	for c := 'g'; c <= 'v'; c++ {
		t[c] = true
	}
	return
}()

// b64Val is the value of a byte in either base64 alphabet, -1 outside.
var b64Val = func() (t [256]int8) {
	for c := range t {
		t[c] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v, c := range []byte(std) {
		t[c] = int8(v)
	}
	t['-'], t['_'] = 62, 63
	return
}()

// textQuantum reports whether the first four bytes q of a run can start
// an encoding decodeRun accepts: hex digits, or base64 whose three bytes
// begin printable text.
func textQuantum(q []byte) bool {
	if hexByte[q[0]] && hexByte[q[1]] && hexByte[q[2]] && hexByte[q[3]] {
		return true
	}
	a, b, c, d := b64Val[q[0]], b64Val[q[1]], b64Val[q[2]], b64Val[q[3]]
	if a|b|c|d < 0 {
		return false // the run ends inside its first quantum: too short
	}
	h := [3]byte{byte(a)<<2 | byte(b)>>4, byte(b)<<4 | byte(c)>>2, byte(c)<<6 | byte(d)}
	// most runs that are not encodings fail on the first two bytes: a
	// control byte, or a continuation byte after a character
	t0, t1 := textStart[h[0]], textStart[h[1]]
	switch {
	case t0 == 0:
		return false
	case t0 == 1 && t1 == 0:
		return false
	case t0 == 1 && t1 == 1:
		return textStart[h[2]] != 0
	}
	return printablePrefix(h[:])
}

// hexByte marks hex digits.
var hexByte = func() (t [256]bool) {
	for c := range t {
		t[c] = isHex(byte(c))
	}
	return
}()

// textStart classifies a byte where a character starts in printable text:
// 1 a whole character (printable ASCII, tab, line break), 2 the lead byte
// of a UTF-8 sequence, 0 neither (control, continuation, invalid).
var textStart = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = 1
	}
	t['\t'], t['\n'], t['\r'] = 1, 1, 1
	for c := 0xC2; c <= 0xF4; c++ {
		t[c] = 2
	}
	return
}()

// encodedRun returns the end of the base64/hex run starting at the word
// b[i:j] (padding included) and whether the run is worth decoding. It
// rejects, without decoding, runs that decodeRun would reject: shorter
// than minEncoded or longer than maxEncoded, mixing the two base64
// alphabets, starting with a byte or a quantum no text's encoding starts
// with, or with '+', '/', '-' or '_' at the start of a 4-character quantum
// (those decode to a byte 0xF8–0xFF, never valid UTF-8). A UUID, a date,
// a URL path or a snake_case name ends there, usually at its first
// separator or in its first four bytes.
// On rejection the returned end may stop inside the run: words inside a
// run never start another one (they follow a run byte), so the end only
// has to be a lower bound.
func encodedRun(b []byte, i, j int) (int, bool) {
	if b64First[b[i]] || i+4 <= len(b) && !textQuantum(b[i:i+4]) {
		return j, false
	}
	e := j
	std, url := false, false
	for e < len(b) && b64Byte[b[e]] {
		switch b[e] {
		case '+', '/':
			std = true
		case '-', '_':
			url = true
		default:
			e++
			continue
		}
		if (e-i)&3 == 0 || std && url {
			return e, false
		}
		e++
	}
	for k := 0; k < 2 && e < len(b) && b[e] == '='; k++ {
		e++
	}
	return e, e-i >= minEncoded && e-i <= maxEncoded
}

// printableText reports whether d is text a person could have written:
// valid UTF-8 without control characters other than tab and line breaks.
func printableText(d []byte) bool {
	for _, c := range d {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(d)
}

// decodeRun decodes an encoded candidate. It returns the decoded bytes
// only when they are printable text; it allocates only for such runs.
func decodeRun(run []byte) ([]byte, bool) {
	var head [12]byte
	if len(run) < minEncoded || len(run) > maxEncoded {
		return nil, false
	}
	if len(run)%2 == 0 && allIn(run, isHex) {
		// check the first bytes before decoding all of it
		if d, ok := hexDecode(run[:16], head[:0]); !ok || !printablePrefix(d) {
			goto b64
		}
		if d, ok := hexDecode(run, make([]byte, 0, len(run)/2)); ok && printableText(d) {
			return d, true
		}
	}
b64:
	v := run
	for len(v) > 0 && v[len(v)-1] == '=' {
		v = v[:len(v)-1]
	}
	if len(v)%4 == 1 {
		return nil, false
	}
	std, url := false, false
	for _, c := range v {
		switch c {
		case '+', '/':
			std = true
		case '-', '_':
			url = true
		case '=':
			return nil, false
		}
	}
	if std && url {
		return nil, false
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	// 16 characters decode to 12 bytes: enough to reject binary
	hv := v[:min(len(v), 16)]
	if n, err := enc.Decode(head[:], hv); err != nil || !printablePrefix(head[:n]) {
		return nil, false
	}
	dst := make([]byte, enc.DecodedLen(len(v)))
	n, err := enc.Decode(dst, v)
	if err != nil || !printableText(dst[:n]) {
		return nil, false
	}
	return dst[:n], true
}

// printablePrefix is printableText for a prefix that may end inside a
// UTF-8 sequence.
func printablePrefix(d []byte) bool {
	for len(d) > 0 {
		c := d[0]
		if c < 0x80 {
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
				return false
			}
			d = d[1:]
			continue
		}
		if !utf8.FullRune(d) {
			return true
		}
		r, sz := utf8.DecodeRune(d)
		if r == utf8.RuneError {
			return false
		}
		d = d[sz:]
	}
	return true
}

func hexDecode(src, dst []byte) ([]byte, bool) {
	for i := 0; i+1 < len(src); i += 2 {
		if !isHex(src[i]) || !isHex(src[i+1]) {
			return nil, false
		}
		dst = append(dst, unhex(src[i])<<4|unhex(src[i+1]))
	}
	return dst, len(src)%2 == 0
}

// encoded looks at the base64/hex run that may start at the word b[i:j]
// and remembers it for decodeScan. The single pass calls it only for a
// word that is long or followed by a base64 separator that does not start
// a quantum (see encodedRun).
func (st *scanner) encoded(i, j int) {
	if i < st.encEnd || st.depth >= maxDecodeDepth || i > 0 && b64Byte[st.b[i-1]] {
		return
	}
	e, ok := encodedRun(st.b, i, j)
	st.encEnd = e
	if ok {
		st.enc = append(st.enc, [2]int{i, e})
	}
}

// decodeScan decodes the encoded runs the pass collected and scans the
// decoded text; a finding inside is reported on the whole run.
func (st *scanner) decodeScan() {
	for _, r := range st.enc {
		dec, ok := decodeRun(st.b[r[0]:r[1]])
		if !ok {
			continue
		}
		inner := scannerPool.Get().(*scanner)
		inner.depth = st.depth + 1
		fs := st.s.scanWith(inner, dec, st.key, nil)
		inner.b, inner.key, inner.out, inner.s, inner.depth = nil, nil, nil, nil, 0
		inner.enc = inner.enc[:0]
		scannerPool.Put(inner)
		best := -1
		for k, f := range fs {
			if best < 0 || f.Confidence > fs[best].Confidence {
				best = k
			}
		}
		if best < 0 {
			continue
		}
		f := fs[best]
		plain := f.plain
		if plain == "" {
			plain = string(dec[f.Start:f.End])
		}
		st.out = append(st.out, Finding{Detector: f.Detector, Category: f.Category, Start: r[0], End: r[1],
			Confidence: f.Confidence, plain: plain, encoded: true})
	}
}
