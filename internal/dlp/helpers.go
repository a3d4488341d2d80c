package dlp

import (
	"math/rand/v2"
	"strings"
)

// shape reports whether raw matches one of the patterns: 'd' digit, 'A'
// upper-case letter, 'a' letter, 'x' alphanumeric, 'X' upper-case letter or
// digit, 'h' hex digit; any other byte matches itself.
func shape(raw []byte, pats ...string) bool {
	for _, p := range pats {
		if len(p) == len(raw) && shape1(raw, p) {
			return true
		}
	}
	return false
}

func shape1(raw []byte, p string) bool {
	for i := 0; i < len(p); i++ {
		c := raw[i]
		switch p[i] {
		case 'd':
			if !isDigit(c) {
				return false
			}
		case 'A':
			if !isUpper(c) {
				return false
			}
		case 'a':
			if !isAlpha(c) {
				return false
			}
		case 'x':
			if !isAlnum(c) {
				return false
			}
		case 'X':
			if !isUpper(c) && !isDigit(c) {
				return false
			}
		case 'h':
			if !isHex(c) {
				return false
			}
		default:
			if c != p[i] {
				return false
			}
		}
	}
	return true
}

// uniformSeps reports whether all separators in raw are the same byte.
func uniformSeps(raw []byte) bool {
	var s byte
	for _, c := range raw {
		if !isAlnum(c) {
			if s != 0 && c != s {
				return false
			}
			s = c
		}
	}
	return true
}

// plainOrGrouped accepts a digit string written without separators or in
// the given group sizes with one uniform separator (space, '-' or '.').
func plainOrGrouped(c *cand, sizes ...int) bool {
	if len(c.raw) == len(c.norm) {
		return true
	}
	if !uniformSeps(c.raw) {
		return false
	}
	p := 0
	for gi, sz := range sizes {
		for k := 0; k < sz; k++ {
			if p >= len(c.raw) || !isAlnum(c.raw[p]) {
				return false
			}
			p++
		}
		if gi < len(sizes)-1 {
			if p >= len(c.raw) || isAlnum(c.raw[p]) {
				return false
			}
			p++
		}
	}
	return p == len(c.raw)
}

// kwValue builds a keyword trigger: it looks up to window bytes after the
// keyword for a value accepted by check, trying up to six separator-joined
// units longest first, and skipping at most four tokens.
func kwValue(window int, check func(v []byte) float64) func(b []byte, from int) (int, int, float64) {
	return func(b []byte, from int) (int, int, float64) {
		limit := min(len(b), from+window)
		p := from
		for tries := 0; tries < 5; tries++ {
			for p < limit && !isAlnum(b[p]) {
				if b[p] == '\n' && tries > 0 {
					return 0, 0, 0
				}
				p++
			}
			if p >= limit {
				return 0, 0, 0
			}
			ts := p
			var ends [6]int
			ne := 0
			q := p
			for ne < len(ends) {
				for q < len(b) && isAlnum(b[q]) {
					q++
				}
				ends[ne] = q
				ne++
				if q+1 < len(b) && isSep(b[q]) && isAlnum(b[q+1]) && q-ts < 40 {
					q++
					continue
				}
				break
			}
			if ts > 0 && (isAlnum(b[ts-1])) {
				return 0, 0, 0
			}
			for x := ne - 1; x >= 0; x-- {
				if conf := check(b[ts:ends[x]]); conf > 0 {
					return ts, ends[x], conf
				}
			}
			// only filler words ("number", "code", "of") may sit between the
			// keyword and its value
			if !allIn(b[ts:ends[0]], isAlpha) {
				return 0, 0, 0
			}
			p = ends[0]
		}
		return 0, 0, 0
	}
}

// normAlnum returns the alphanumerics of v (at most 64).
func normAlnum(v []byte) []byte {
	out := make([]byte, 0, min(len(v), 64))
	for _, c := range v {
		if isAlnum(c) && len(out) < 64 {
			out = append(out, c)
		}
	}
	return out
}

// Generators for test vectors and the qa corpus.

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func pick(r *rand.Rand, xs ...string) string { return xs[r.IntN(len(xs))] }

func fromSet(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

const (
	setDigits   = "0123456789"
	setUpper    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	setLower    = "abcdefghijklmnopqrstuvwxyz"
	setAlnum    = setDigits + setUpper + setLower
	setHexLower = "0123456789abcdef"
	setB64URL   = setAlnum + "-_"
	setB64      = setAlnum + "+/"
)

// bump changes the last digit of s (a checksum failure look-alike).
func bump(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if isDigit(b[i]) {
			b[i] = '0' + (b[i]-'0'+1)%10
			return string(b)
		}
	}
	return s + "0"
}

// bumpAt changes the digit at index i.
func bumpAt(s string, i int) string {
	b := []byte(s)
	if isDigit(b[i]) {
		b[i] = '0' + (b[i]-'0'+5)%10
	}
	return string(b)
}

// group formats digits s with separator sep in the given sizes.
func groupDigits(s, sep string, sizes ...int) string {
	var parts []string
	p := 0
	for _, n := range sizes {
		parts = append(parts, s[p:p+n])
		p += n
	}
	return strings.Join(parts, sep)
}

// fixed returns a generator that picks from values with a context prefix.
func fixed(ctx string, vals ...string) func(r *rand.Rand) (string, string) {
	return func(r *rand.Rand) (string, string) { return ctx, pick(r, vals...) }
}

func fixedNear(vals ...string) func(r *rand.Rand) string {
	return func(r *rand.Rand) string { return pick(r, vals...) }
}

// genRetry draws from f until ok accepts the value (bounded).
func genRetry(r *rand.Rand, f func() string, ok func(string) bool) string {
	for range 1000 {
		if v := f(); ok(v) {
			return v
		}
	}
	panic("dlp: generator could not produce a value")
}

func tags(ts ...string) []string { return ts }
