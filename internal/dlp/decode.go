package dlp

import (
	"encoding/base64"
	"unicode/utf8"
)

// Decoding: a sensitive value hidden in base64 (standard or URL alphabet,
// padded or not) or hex is found by decoding the run and scanning the
// decoded text (which may itself be encoded: the depth is bounded). Only
// runs the single pass met are decoded, and only when the decoded bytes
// are printable text, so hashes, ids and base64 images cost one short
// decode. A finding inside an encoded run is reported on the whole run:
// redacting or blocking it removes the encoded token.

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

// encodedRun returns the end of the base64/hex run starting at i (padding
// included).
func encodedRun(b []byte, i int) int {
	e := i
	for e < len(b) && b64Byte[b[e]] {
		e++
	}
	for k := 0; k < 2 && e < len(b) && b[e] == '='; k++ {
		e++
	}
	return e
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

// decodeScan decodes the encoded runs the pass collected and scans the
// decoded text; a finding inside is reported on the whole run.
func (st *scanner) decodeScan() {
	if len(st.enc) == 0 {
		return
	}
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
