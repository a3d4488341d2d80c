package dlp

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// evasion rewrites a context word and a value the way someone hiding the
// value from a filter would.
type evasion struct {
	name    string
	grouped bool // applies to values written in groups (cards, IBANs), not tokens
	apply   func(ctx, val string) string
}

// mapDigits writes the digits of s in the script whose zero is zero.
func mapDigits(s string, zero rune) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(zero + r - '0')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// regroup writes the alphanumerics of s in groups of four joined by seps
// (cycled).
func regroup(s string, seps ...string) string {
	var al []byte
	for i := 0; i < len(s); i++ {
		if isAlnum(s[i]) {
			al = append(al, s[i])
		}
	}
	var b strings.Builder
	for i := 0; i < len(al); i += 4 {
		if i > 0 {
			b.WriteString(seps[(i/4-1)%len(seps)])
		}
		b.Write(al[i:min(i+4, len(al))])
	}
	return b.String()
}

func entities(s string, hexForm bool) string {
	var b strings.Builder
	for _, r := range s {
		if hexForm {
			fmt.Fprintf(&b, "&#x%x;", r)
		} else {
			fmt.Fprintf(&b, "&#%d;", r)
		}
	}
	return b.String()
}

func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

var evasions = []evasion{
	{"dots", true, func(c, v string) string { return c + " " + regroup(v, ".") }},
	{"mixed separators", true, func(c, v string) string { return c + " " + regroup(v, ".", "-", " ") }},
	{"nbsp", true, func(c, v string) string { return c + " " + regroup(v, "\u00a0") }},
	{"narrow nbsp", true, func(c, v string) string { return c + " " + regroup(v, "\u202f") }},
	{"newlines", true, func(c, v string) string { return c + " " + regroup(v, "\n") }},
	{"crlf", true, func(c, v string) string { return c + " " + regroup(v, "\r\n") }},
	{"zero width", true, func(c, v string) string { return c + " " + regroup(v, "\u200b") }},
	{"zero width inside groups", false, func(c, v string) string {
		var b strings.Builder
		for i, r := range v {
			if i > 0 && i%3 == 0 {
				b.WriteString("\u2060")
			}
			b.WriteRune(r)
		}
		return c + " " + b.String()
	}},
	{"fullwidth", false, func(c, v string) string {
		var b strings.Builder
		for _, r := range v {
			if r > ' ' && r < 0x7f {
				r += 0xFEE0
			}
			b.WriteRune(r)
		}
		return c + " " + b.String()
	}},
	{"arabic-indic digits", true, func(c, v string) string { return c + " " + mapDigits(v, 0x0660) }},
	{"persian digits", true, func(c, v string) string { return c + " " + mapDigits(v, 0x06F0) }},
	{"devanagari digits", true, func(c, v string) string { return c + " " + mapDigits(v, 0x0966) }},
	{"base64", false, func(c, v string) string { return "blob " + base64.StdEncoding.EncodeToString([]byte(c+" "+v)) }},
	{"base64 unpadded", false, func(c, v string) string { return "blob " + base64.RawStdEncoding.EncodeToString([]byte(c+" "+v+"!")) }},
	{"base64url", false, func(c, v string) string { return "blob " + base64.URLEncoding.EncodeToString([]byte(c+"??>"+v)) }},
	{"base64 of base64", false, func(c, v string) string {
		return "blob " + base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString([]byte(c+" "+v))))
	}},
	{"hex", false, func(c, v string) string { return "blob " + hex.EncodeToString([]byte(c+" "+v)) }},
	{"url-encoded", false, func(c, v string) string { return "q=" + url.QueryEscape(c+" "+v) + "&x=1" }},
	{"percent every byte", false, func(c, v string) string { return c + " " + percentAll(v) }},
	{"html decimal entities", false, func(c, v string) string { return c + " " + entities(v, false) }},
	{"html hex entities", false, func(c, v string) string { return c + " " + entities(v, true) }},
	{"html named entities", true, func(c, v string) string { return c + " " + regroup(v, "&nbsp;", "&#160;", "&NonBreakingSpace;") }},
	{"unicode hyphens", true, func(c, v string) string { return c + " " + regroup(v, "\u2011", "\u2010", "\u2212") }},
}

type evasionValue struct {
	det, ctx, val string
	grouped       bool
}

func evasionValues(t *testing.T) []evasionValue {
	r := mrand.New(mrand.NewPCG(9, 9))
	return []evasionValue{
		{"card-visa", "card", "4111 1111 1111 1111", true},
		{"card-mastercard", "paid with", "5555 5555 5555 4444", true},
		{"iban", "iban", "GB82 WEST 1234 5698 7654 32", true},
		{"github-pat", "token", genCRCToken(r, "ghp_"), false},
	}
}

// TestEvasionsRedactedBothWays runs every evasion of every value through
// Apply as a tool argument and as a tool result: the value is redacted in
// the original bytes, the rest of the text is kept, and the document stays
// valid JSON.
func TestEvasionsRedactedBothWays(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{PCI, Banking, Secrets}, Action: ActionRedact}}}})
	for _, v := range evasionValues(t) {
		for _, ev := range evasions {
			if ev.grouped && !v.grouped {
				continue
			}
			if v.det == "iban" && (ev.name == "dots" || ev.name == "mixed separators" || ev.name == "unicode hyphens" || strings.Contains(ev.name, "digits") || ev.name == "newlines" || ev.name == "crlf") {
				continue // IBANs are written in space-separated groups of letters and digits
			}
			text := "before. " + ev.apply(v.ctx, v.val) + " after"
			for _, dir := range []Direction{Request, Response} {
				doc := map[string]any{"params": map[string]any{"name": "notes.add", "arguments": map[string]any{"body": text}}}
				if dir == Response {
					doc = map[string]any{"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}}
				}
				in, _ := json.Marshal(doc)
				out, vd, err := e.Apply(dir, in)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", v.det, ev.name, dir, err)
				}
				if vd.Decision != Modify || !json.Valid(out) {
					t.Errorf("%s/%s/%s: decision %v, valid %v: %s", v.det, ev.name, dir, vd.Decision, json.Valid(out), in)
					continue
				}
				var got string
				if dir == Request {
					var d struct {
						Params struct{ Arguments struct{ Body string } }
					}
					_ = json.Unmarshal(out, &d)
					got = d.Params.Arguments.Body
				} else {
					var d struct {
						Result struct{ Content []struct{ Text string } }
					}
					_ = json.Unmarshal(out, &d)
					if len(d.Result.Content) == 1 {
						got = d.Result.Content[0].Text
					}
				}
				if !strings.Contains(got, "[REDACTED:"+v.det+"]") || !strings.HasPrefix(got, "before. ") || !strings.HasSuffix(got, " after") {
					t.Errorf("%s/%s/%s: %q → %q (%v)", v.det, ev.name, dir, text, got, vd.Reasons)
				}
				if strings.Contains(got, ev.apply(v.ctx, v.val)[len(v.ctx)+1:]) {
					t.Errorf("%s/%s/%s: the evaded value survived: %q", v.det, ev.name, dir, got)
				}
			}
		}
	}
}

// TestEvasionsInKeysAndEscapes covers values used as JSON object keys and
// values written with JSON \u escapes: found, redacted in place, the path
// never shows the key.
func TestEvasionsInKeysAndEscapes(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{PCI}, Action: ActionRedact}}}})
	for _, tc := range []struct{ name, doc string }{
		{"key", `{"result":{"cards":{"4111 1111 1111 1111":{"exp":"12/28"}}}}`},
		{"key fullwidth", `{"result":{"cards":{"４１１１１１１１１１１１１１１１":{"exp":"12/28"}}}}`},
		{"key escaped", `{"result":{"cards":{"\u0034111\u00a01111\u00a01111\u00a01111":{"exp":"12/28"}}}}`},
		{"value escaped nbsp", `{"result":{"text":"card 4111\u00a01111\u00a01111\u00a01111"}}`},
		{"value escaped zero width", `{"result":{"text":"card 4111\u200b1111\u200b1111\u200b1111"}}`},
		{"value escaped newline", `{"result":{"text":"card 4111\n1111\n1111\n1111"}}`},
		{"value escaped fullwidth", `{"result":{"text":"card \uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11"}}`},
	} {
		for _, dir := range []Direction{Request, Response} {
			out, v, err := e.Apply(dir, []byte(tc.doc))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if v.Decision != Modify || !json.Valid(out) || !strings.Contains(string(out), `[REDACTED:card-visa]`) {
				t.Errorf("%s/%s: %v valid=%v %s", tc.name, dir, v.Decision, json.Valid(out), out)
				continue
			}
			if strings.Contains(string(out), "1111") || strings.Contains(string(out), `\uff11`) || strings.Contains(string(out), "１") {
				t.Errorf("%s/%s: digits survived: %s", tc.name, dir, out)
			}
			for _, r := range v.Reasons {
				if strings.Contains(r, "1111") || strings.Contains(r, "１") {
					t.Errorf("%s: a reason shows the value: %q", tc.name, r)
				}
			}
		}
	}
	// the exp under a sensitive key has a path that does not show the key
	sc := mustScanner(t, Config{})
	fs, err := sc.ScanJSON([]byte(`{"4111 1111 1111 1111":{"ssn":"536-22-1846"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 {
		t.Fatalf("findings %+v", fs)
	}
	for _, f := range fs {
		if strings.Contains(f.Path, "4111") || !strings.HasPrefix(f.Path, `$["[REDACTED:card-visa]"]`) {
			t.Errorf("path %q", f.Path)
		}
	}
}

// TestEvasionMaskAndTokenize: mask writes the tail of the normalised value,
// an encoded run is redacted whole, and a token does not depend on how the
// digits were written.
func TestEvasionMaskAndTokenize(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{PCI}, Action: ActionMask}}}})
	full := "４１１１ １１１１ １１１１ １１１１"
	b64 := base64.StdEncoding.EncodeToString([]byte("card 4111 1111 1111 1111"))
	in, _ := json.Marshal(map[string]string{"a": full, "b": b64, "c": "4111\u00a01111\u00a01111\u00a01111"})
	out, _, err := e.Apply(Response, in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m["a"] != "**** **** **** 1111" || m["b"] != "[REDACTED:card-visa]" || m["c"] != "**** **** **** 1111" {
		t.Errorf("masked: %q", m)
	}
	tk, _ := NewTokenizer(TokenizerConfig{MAC: testMAC(t)})
	et := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{PCI}, Action: ActionTokenize}}}, Tokenizer: tk})
	in, _ = json.Marshal(map[string]string{"a": full, "b": "4111 1111 1111 1111", "c": "4111\u00a01111\u00a01111\u00a01111"})
	out, _, _ = et.Apply(Response, in)
	_ = json.Unmarshal(out, &m)
	if !strings.HasPrefix(m["a"], "tok_") || m["a"] != m["b"] || m["b"] != m["c"] {
		t.Errorf("tokens differ by writing: %q", m)
	}
}

// TestEvasionPrecision: normalising and decoding must not invent findings
// in clean text that merely looks encoded, and values their own checksum
// rejects are not re-reported by a generic detector.
func TestEvasionPrecision(t *testing.T) {
	sc := mustScanner(t, Config{})
	r := mrand.New(mrand.NewPCG(3, 4))
	tok := genCRCToken(r, "ghp_")
	badTok := tok[:len(tok)-1] + string("AB"[r.IntN(2)])
	if badTok == tok {
		badTok = tok[:len(tok)-1] + "C"
	}
	nhs := "943 476 5870" // the NHS's published example
	badNHS := bump(nhs)
	for _, text := range []string{
		"token: " + badTok,
		`{"github_token": "` + badTok + `"}`,
		"nhs number: " + badNHS,
		"NHS no. " + badNHS + " on file",
		`{"nhs_number": "` + badNHS + `"}`,
		"sha " + hex.EncodeToString([]byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}),
		"img " + base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR 4111 1111 1111 1111")),
		"https://example.com/search?q=caf%C3%A9&page=2&amp;x=1",
		"build 2026-11-25T10:00:00Z\n1234\nok",
		"Zürich café ﬁle ①②③ naïve",
		"latency_ms=41\n2026 rows",
	} {
		if fs := sc.Scan([]byte(text)); len(fs) > 0 {
			t.Errorf("%q: unexpected %+v", text, fs)
		}
	}
	// recall is kept: the valid ones are still found by their detector
	for text, det := range map[string]string{"token: " + tok: "github-pat", "nhs number: " + nhs: "uk-nhs", "phone: 415-555-2671": "phone-nanp"} {
		fs := sc.Scan([]byte(text))
		if len(fs) != 1 || fs[0].Detector != det {
			t.Errorf("%q: %+v, want %s", text, fs, det)
		}
	}
}

// FuzzNormalize checks the offset map: one entry per normalised byte,
// spans inside the input, in order, on UTF-8 boundaries of valid input,
// and untouched ASCII copied through.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"4111\u00a01111", "٤١١١", "a%41&#52;&nbsp;&amp", "12\n34\r\n56", "\u200b\u00ad", "%E2%80%8B", "&#x1F600;", "&#99999999;", "%zz%4", "\xff\xfe", "ﬁ①"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n normalizer
		if !n.normalize(b) {
			return
		}
		out, m := n.out, n.m
		if len(m.start) != len(out) || len(m.end) != len(out) {
			t.Fatalf("map length %d/%d for %d bytes", len(m.start), len(m.end), len(out))
		}
		for k := range out {
			s, e := int(m.start[k]), int(m.end[k])
			if s < 0 || e > len(b) || s >= e {
				t.Fatalf("byte %d maps to [%d,%d) of %d", k, s, e, len(b))
			}
			if k > 0 && (s < int(m.start[k-1]) || e < int(m.end[k-1])) {
				t.Fatalf("map not monotone at %d", k)
			}
			if e-s == 1 && b[s] < 0x80 && normTrig[b[s]] == 0 && out[k] != b[s] {
				t.Fatalf("ASCII byte %q at %d became %q", b[s], s, out[k])
			}
			if utf8.Valid(b) && (!utf8.RuneStart(b[s]) || (e < len(b) && !utf8.RuneStart(b[e]))) {
				t.Fatalf("span [%d,%d) cuts a character", s, e)
			}
		}
		// normalising is idempotent on what it produced, except for
		// entities and %-escapes that decode to new escapes ("%2541")
		var n2 normalizer
		if n2.normalize(out) && !strings.ContainsAny(string(out), "%&+\n\r\t") && utf8.Valid(out) {
			t.Fatalf("normalising %q again changed it to %q", out, n2.out)
		}
	})
}

// FuzzDecodeRun: decoding never panics, returns only printable text, and
// every text encoded in each supported form decodes back.
func FuzzDecodeRun(f *testing.F) {
	for _, s := range []string{"card 4111 1111 1111 1111", "ssn: 536-22-1846", "héllo wörld, plain text", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		if d, ok := decodeRun(text); ok && !printableText(d) {
			t.Fatalf("decoded %q is not text", d)
		}
		if !printableText(text) || len(text) > maxEncoded/3 {
			return
		}
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(text), base64.RawStdEncoding.EncodeToString(text),
			base64.URLEncoding.EncodeToString(text), base64.RawURLEncoding.EncodeToString(text),
			hex.EncodeToString(text),
		} {
			if len(enc) < minEncoded || allIn([]byte(enc), isHex) && !strings.HasPrefix(enc, hex.EncodeToString(text)) {
				continue // too short, or base64 that is also valid hex
			}
			d, ok := decodeRun([]byte(enc))
			if !ok || string(d) != string(text) {
				t.Fatalf("%q: decoded %q, %v; want %q", enc, d, ok, text)
			}
		}
	})
}

// FuzzEntitiesAndPercent: text written entirely as %XX escapes or numeric
// HTML entities normalises back to itself, each byte mapped to its escape.
func FuzzEntitiesAndPercent(f *testing.F) {
	f.Add("card 4111 1111 1111 1111")
	f.Add("a&b%c")
	f.Fuzz(func(t *testing.T, s string) {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] >= 0x7f {
				return // printable ASCII without spaces (spaces would be folded too)
			}
		}
		if s == "" {
			return
		}
		var n normalizer
		enc := percentAll(s)
		if !n.normalize([]byte(enc)) || string(n.out) != s {
			t.Fatalf("%q → %q, want %q", enc, n.out, s)
		}
		for k := range n.out {
			if int(n.m.start[k]) != 3*k || int(n.m.end[k]) != 3*k+3 {
				t.Fatalf("byte %d maps to [%d,%d)", k, n.m.start[k], n.m.end[k])
			}
		}
		enc = entities(s, len(s)%2 == 0)
		if !n.normalize([]byte(enc)) || string(n.out) != s {
			t.Fatalf("%q → %q, want %q", enc, n.out, s)
		}
	})
}

// FuzzEncodedRun: the single pass's cheap run filter (encodedRun) never
// drops a run decodeRun would decode, so filtering costs no recall, and
// every encoding of a text is kept whole.
func FuzzEncodedRun(f *testing.F) {
	for _, s := range []string{
		"d49e3c78-c4d0-3fb5-26b7-90dbc4f8d0ea", "com/api/v2/items/242915?x=1", "created_at_2025_11_25",
		"2025-11-25T10:00:00Z", base64.StdEncoding.EncodeToString([]byte("card 4111 1111 1111 1111")),
		base64.URLEncoding.EncodeToString([]byte("card??>4111 1111 1111 1111")), hex.EncodeToString([]byte("ssn 536-22-1846")),
		"AbstractSingletonProxyFactoryBean", "x",
	} {
		f.Add([]byte(s))
	}
	// fullRun is the run as decodeScan reads it: base64/hex bytes, then
	// up to two '='
	fullRun := func(b []byte) int {
		e := 0
		for e < len(b) && b64Byte[b[e]] {
			e++
		}
		for k := 0; k < 2 && e < len(b) && b[e] == '='; k++ {
			e++
		}
		return e
	}
	check := func(t *testing.T, b []byte) {
		if len(b) == 0 || !isAlnum(b[0]) {
			return
		}
		j := 0
		for j < len(b) && isAlnum(b[j]) {
			j++
		}
		e := fullRun(b)
		got, ok := encodedRun(b, 0, j)
		if ok && got != e {
			t.Fatalf("%q: run ends at %d, want %d", b, got, e)
		}
		if _, dec := decodeRun(b[:e]); dec && !ok {
			t.Fatalf("%q: decodeRun decodes b[:%d] but encodedRun drops it", b, e)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		if !printableText(b) || len(b) > maxEncoded/3 {
			return
		}
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
			base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
			hex.EncodeToString(b),
		} {
			check(t, []byte(enc+" tail"))
		}
	})
}
