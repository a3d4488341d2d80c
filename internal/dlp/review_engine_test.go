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
