package dlp

// Column context: in a CSV (or TSV) export the label of a value is the
// header of its column, lines above it, not a word next to it
// ("name,city,ssn\n"Ana",Zürich,316552086"). The helpers here find that
// header; the scanner uses it like the JSON key of a value.

const (
	colMaxLines = 64   // rows walked up from a value to find its header
	colMaxBack  = 8192 // bytes walked up
)

// colBudget is how many bytes the column lookups of one scan of n bytes
// may read: a few times the input.
func colBudget(n int) int { return 4*n + 1<<16 }

// colSep returns the field separator of the line b[ls:le] (',', ';' or
// tab) and how many fields it has (1 when it has none).
func colSep(b []byte, ls, le int) (byte, int) {
	var n [3]int
	q := false
	for i := ls; i < le; i++ {
		switch b[i] {
		case '"':
			q = !q
		case ',':
			if !q {
				n[0]++
			}
		case ';':
			if !q {
				n[1]++
			}
		case '\t':
			if !q {
				n[2]++
			}
		}
	}
	best, sep := 0, byte(0)
	for k, c := range []byte{',', ';', '\t'} {
		if n[k] > best {
			best, sep = n[k], c
		}
	}
	return sep, best + 1
}

// colField returns the span of field number col (0-based) of the line
// b[ls:le], quotes included, or ok false when the line has fewer fields.
func colField(b []byte, ls, le int, sep byte, col int) (fs, fe int, ok bool) {
	q := false
	fs = ls
	for i := ls; i < le; i++ {
		switch c := b[i]; {
		case c == '"':
			q = !q
		case c == sep && !q:
			if col == 0 {
				return fs, i, true
			}
			col--
			fs = i + 1
		}
	}
	if col == 0 {
		return fs, le, true
	}
	return 0, 0, false
}

// lineBounds returns the line around offset i; ok is false when it is
// longer than colMaxBack either way (not a table row).
func lineBounds(b []byte, i int) (ls, le int, ok bool) {
	ls = i
	for ls > 0 && b[ls-1] != '\n' {
		if i-ls > colMaxBack {
			return 0, 0, false
		}
		ls--
	}
	le = i
	for le < len(b) && b[le] != '\n' {
		if le-i > colMaxBack {
			return 0, 0, false
		}
		le++
	}
	if le > ls && b[le-1] == '\r' {
		le--
	}
	return ls, le, true
}

func isLabelByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == ' ' || c == '.' }

// isFieldEdge reports whether b[s:e] is a whole field: a separator, line
// end or quote on both sides (cheap test before any line is read).
func isFieldEdge(b []byte, s, e int) bool {
	if s > 0 && b[s-1] == '"' {
		s--
	}
	if e < len(b) && b[e] == '"' {
		e++
	}
	edge := func(c byte) bool { return c == ',' || c == ';' || c == '\t' || c == '\n' || c == '\r' }
	return (s == 0 || edge(b[s-1])) && (e == len(b) || edge(b[e])) && (s > 0 && b[s-1] != '\n' || e < len(b) && b[e] != '\n' && b[e] != '\r')
}

// colMemo remembers the last table block whose header was found, so the
// rows of a long export find it again without walking up to it (which is
// bounded: a row more than colMaxLines below an unknown header gets none).
type colMemo struct {
	ok      bool
	hl, hle int // the header line
	end     int // end of the last row seen in the block
	sep     byte
	nf      int
}

// columnHeader returns the header field of the column that holds b[s:e]:
// the value's line has at least two fields and the lines above it up to
// the first one (the header) have as many. ok is false otherwise. m is the
// scan's memory of the last block; *work counts the bytes read.
func columnHeader(b []byte, s, e int, m *colMemo, work *int) (hs, he int, ok bool) {
	if !isFieldEdge(b, s, e) {
		return 0, 0, false
	}
	ls, le, ok := lineBounds(b, s)
	if !ok || ls == 0 || e > le {
		return 0, 0, false
	}
	sep, nf := colSep(b, ls, le)
	if nf < 2 {
		return 0, 0, false
	}
	// the value's column
	col, q := 0, false
	for i := ls; i < s; i++ {
		if b[i] == '"' {
			q = !q
		} else if b[i] == sep && !q {
			col++
		}
	}
	// walk up to the first line of the block with the same field count, or
	// to a row of the block already known
	hl, hle := ls, le
	for n := 0; ; n++ {
		if hl == 0 {
			break
		}
		pls, ple, ok := lineBounds(b, hl-1)
		*work += ple - pls + 1
		if !ok || ple <= pls {
			break // a blank line ends the block
		}
		if psep, pnf := colSep(b, pls, ple); psep != sep || pnf != nf {
			break
		}
		if m.ok && m.sep == sep && m.nf == nf && pls >= m.hl && pls <= m.end {
			hl, hle = m.hl, m.hle
			break
		}
		if n >= colMaxLines || s-pls > colMaxBack {
			return 0, 0, false // the header is out of reach
		}
		hl, hle = pls, ple
	}
	if hl == ls {
		return 0, 0, false
	}
	if !m.ok || m.hl != hl {
		*m = colMemo{ok: true, hl: hl, hle: hle, sep: sep, nf: nf}
	}
	m.end = max(m.end, le)
	return colField(b, hl, hle, sep, col)
}

// columnRows calls f with the span of field col in each row below the
// header line b[ls:le] (rows with its field count, until *budget bytes are
// read); f returns false to stop.
func columnRows(b []byte, ls, le int, sep byte, nf, col int, budget *int, f func(fs, fe int) bool) {
	p := le
	for p < len(b) && *budget > 0 {
		if b[p] == '\r' {
			p++
		}
		if p >= len(b) || b[p] != '\n' {
			return
		}
		rs, re, ok := lineBounds(b, p+1)
		*budget -= re - rs + 1
		if !ok || re <= rs {
			return
		}
		if rsep, rnf := colSep(b, rs, re); rsep != sep || rnf != nf {
			return
		}
		if fs, fe, ok := colField(b, rs, re, sep, col); ok && !f(fs, fe) {
			return
		}
		p = re
	}
}

// headerColumn reports whether the word b[i:j] is (part of) a field of a
// header line with rows below it, and returns that line's layout.
func headerColumn(b []byte, i, j int) (ls, le int, sep byte, nf, col int, ok bool) {
	// the field around the word: "routing_number", "Card Number"
	for n := 0; i > 0 && n < 32 && isLabelByte(b[i-1]); n++ {
		i--
	}
	for n := 0; j < len(b) && n < 32 && isLabelByte(b[j]); n++ {
		j++
	}
	if !isFieldEdge(b, i, j) {
		return 0, 0, 0, 0, 0, false
	}
	ls, le, ok = lineBounds(b, i)
	if !ok || le >= len(b) || j > le {
		return 0, 0, 0, 0, 0, false
	}
	sep, nf = colSep(b, ls, le)
	if nf < 2 {
		return 0, 0, 0, 0, 0, false
	}
	q := false
	for k := ls; k < i; k++ {
		if b[k] == '"' {
			q = !q
		} else if b[k] == sep && !q {
			col++
		}
	}
	return ls, le, sep, nf, col, true
}
