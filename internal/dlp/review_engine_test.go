package dlp

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReviewTaintSeesThroughEscapes: a value the session received from prod
// must be refused towards dev however the agent spells it in JSON. Before
// the fix the fingerprint was taken over the raw escaped bytes, so
// "\u0034111 1111 1111 1111" slipped past a taint on "4111 1111 1111 1111".
func TestReviewTaintSeesThroughEscapes(t *testing.T) {
	taint, _ := NewTaint(TaintConfig{MAC: testMAC(t)})
	e := mustEngine(t, EngineConfig{Taint: taint})
	prod := Upstream{Name: "crm", Environment: Prod, Egress: Internal}
	dev := Upstream{Name: "sandbox", Environment: Dev, Egress: Internal}
	if _, _, err := e.ApplyFlow(Flow{"s", prod}, Response, []byte(`{"card":"4111 1111 1111 1111"}`)); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{
		`{"note":"4111 1111 1111 1111"}`,
		`{"note":"\u0034111 1111 1111 1111"}`,
		`{"note":"4111\u00201111\u00201111\u00201111"}`,
		`{"note":"{\"pan\":\"4111 1111 1111 1111\"}"}`,
	} {
		_, v, err := e.ApplyFlow(Flow{"s", dev}, Request, []byte(req))
		if err != nil {
			t.Fatal(err)
		}
		if v.Decision != Block {
			t.Errorf("prod card sent to dev as %s: decision %v", req, v.Decision)
		}
	}
}

// TestReviewTokenizeEscapedDeterministic: tokenize is deterministic per
// value, so the same card written plainly and with JSON escapes gets the
// same token (plain and FF1), and the output stays valid JSON.
func TestReviewTokenizeEscapedDeterministic(t *testing.T) {
	tok, _ := NewTokenizer(TokenizerConfig{MAC: testMAC(t)})
	for _, format := range []string{"", "ff1"} {
		e := mustEngine(t, EngineConfig{Tokenizer: tok, Policy: Policy{Rules: []Rule{{Categories: []Category{PCI}, Action: ActionTokenize, Format: format}}}})
		var toks []string
		for _, doc := range []string{
			`{"c":"4111 1111 1111 1111"}`,
			`{"c":"\u0034111 1111 1111 1111"}`,
			`{"c":"4111\u00201111\u00201111\u00201111"}`,
		} {
			out, v, err := e.Apply(Response, []byte(doc))
			if err != nil || v.Decision != Modify {
				t.Fatalf("%s: %v %v", doc, v.Decision, err)
			}
			var got struct{ C string }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s → invalid JSON %s", doc, out)
			}
			toks = append(toks, got.C)
		}
		for _, x := range toks[1:] {
			if x != toks[0] {
				t.Errorf("format %q: tokens differ by spelling: %q", format, toks)
				break
			}
		}
		if format == "ff1" && (len(toks[0]) != 19 || strings.Count(toks[0], " ") != 3) {
			t.Errorf("ff1 token %q does not keep the layout", toks[0])
		}
	}
}

// TestReviewActionsOnStringsAndNumbers checks every rewriting action on a
// card written as a JSON string and as a JSON number: the output is valid
// JSON, the value is gone, mask keeps the configured tail, redact names the
// detector, tokenize is deterministic and FF1 decrypts back to the card.
func TestReviewActionsOnStringsAndNumbers(t *testing.T) {
	tok, _ := NewTokenizer(TokenizerConfig{MAC: testMAC(t)})
	doc := []byte(`{"s":"4111-1111-1111-1111","n":4111111111111111,"again":"4111 1111 1111 1111","x":[1.5e3,-0,"ok"]}`)
	type out struct {
		S, N, Again string
		X           []any
	}
	run := func(r Rule) out {
		t.Helper()
		e := mustEngine(t, EngineConfig{Tokenizer: tok, Policy: Policy{Rules: []Rule{r}}})
		b, v, err := e.Apply(Response, doc)
		if err != nil || v.Decision != Modify {
			t.Fatalf("%+v: %v %v", r, v.Decision, err)
		}
		var o out
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("%+v: invalid JSON %s", r, b)
		}
		if strings.Contains(string(b), "4111111111111111") || strings.Contains(string(b), "4111-1111-1111-1111") {
			t.Errorf("%+v: card left in %s", r, b)
		}
		if len(o.X) != 3 || o.X[0] != 1500.0 || o.X[2] != "ok" {
			t.Errorf("%+v: untouched values changed: %v", r, o.X)
		}
		return o
	}
	pci := []Category{PCI}
	two := 2
	if o := run(Rule{Categories: pci, Action: ActionMask, KeepTail: &two}); o.S != "****-****-****-**11" || o.N != "**************11" {
		t.Errorf("mask keep 2: %+v", o)
	}
	if o := run(Rule{Categories: pci, Action: ActionMask}); o.S != "****-****-****-1111" || o.N != "************1111" {
		t.Errorf("mask default: %+v", o)
	}
	if o := run(Rule{Categories: pci, Action: ActionRedact}); o.S != "[REDACTED:card-visa]" || o.N != "[REDACTED:card-visa]" {
		t.Errorf("redact: %+v", o)
	}
	o := run(Rule{Categories: pci, Action: ActionTokenize})
	if !strings.HasPrefix(o.S, "tok_") || o.S != o.N || o.S != o.Again {
		t.Errorf("tokenize not deterministic per value: %+v", o)
	}
	o = run(Rule{Categories: pci, Action: ActionTokenize, Format: "ff1"})
	if len(o.S) != 19 || o.S[4] != '-' || len(o.N) != 16 {
		t.Errorf("ff1 layout: %+v", o)
	}
	for _, c := range []string{o.S, o.N, o.Again} {
		d := strings.NewReplacer("-", "", " ", "").Replace(c)
		back, err := tok.ff1.encryptDigits([]byte("card-visa"), d, true)
		if err != nil || back != "4111111111111111" {
			t.Errorf("ff1 %q decrypts to %q, %v", c, back, err)
		}
	}
}

// TestReviewFF1RoundTripLengths: FF1 decrypts what it encrypts at every
// length an identifier can have.
func TestReviewFF1RoundTripLengths(t *testing.T) {
	tok, _ := NewTokenizer(TokenizerConfig{MAC: testMAC(t)})
	for n := 6; n <= 40; n++ {
		pt := strings.Repeat("9876543210", 4)[:n]
		ct, err := tok.ff1.encryptDigits([]byte("t"), pt, false)
		if err != nil || len(ct) != n || ct == pt {
			t.Fatalf("n=%d: %q %v", n, ct, err)
		}
		if back, _ := tok.ff1.encryptDigits([]byte("t"), ct, true); back != pt {
			t.Errorf("n=%d: round trip %q → %q → %q", n, pt, ct, back)
		}
	}
}
