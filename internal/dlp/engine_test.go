package dlp

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func testMAC(t testing.TB) MAC {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	m, err := NewHMAC(key)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// issuePolicy is the example from the Persona spec.
var issuePolicy = Policy{Rules: []Rule{
	{Categories: []Category{PCI, Secrets}, Direction: "both", Action: ActionRedact},
	{Categories: []Category{PII}, Direction: "response", Action: ActionMask},
}}

func ptr[T any](v T) *T { return &v }

func mustEngine(t *testing.T, cfg EngineConfig) *Engine {
	t.Helper()
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEngineIssuePolicy(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: issuePolicy})
	resp := `{"result":{"content":[{"type":"text","text":"Card 4111 1111 1111 1111 on file, contact jane.doe@example.com"}],"card":5555555555554444,"owner":"Jane"}}`
	out, v, err := e.Apply(Response, []byte(resp))
	if err != nil {
		t.Fatal(err)
	}
	if v.Decision != Modify {
		t.Fatalf("decision = %v, want modify (%v)", v.Decision, v.Reasons)
	}
	if !json.Valid(out) {
		t.Fatalf("rewritten document is not valid JSON: %s", out)
	}
	var doc struct {
		Result struct {
			Content []struct{ Text string }
			Card    string
			Owner   string
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	txt := doc.Result.Content[0].Text
	if !strings.Contains(txt, "[REDACTED:card-visa]") || strings.Contains(txt, "4111") {
		t.Errorf("card not redacted: %q", txt)
	}
	if !strings.Contains(txt, "*******@*******.com") && !strings.Contains(txt, ".com") || strings.Contains(txt, "jane.doe") {
		t.Errorf("email not masked: %q", txt)
	}
	if doc.Result.Card != "[REDACTED:card-mastercard]" {
		t.Errorf("numeric card = %q", doc.Result.Card)
	}
	if doc.Result.Owner != "Jane" {
		t.Errorf("unrelated field changed: %q", doc.Result.Owner)
	}
	// pii rules are response-only: an email in a request passes
	req := `{"method":"tools/call","params":{"arguments":{"to":"jane.doe@example.com"}}}`
	out, v, _ = e.Apply(Request, []byte(req))
	if v.Decision != Allow || string(out) != req {
		t.Errorf("request with email: %v %s", v.Decision, out)
	}
}

func TestEngineMaskKeepsTail(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{PCI}, Direction: "both", Action: ActionMask, KeepTail: ptr(4)}}}})
	out, _, err := e.Apply(Response, []byte(`{"pan":"4111-1111-1111-1111"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"pan":"****-****-****-1111"}` {
		t.Errorf("got %s", out)
	}
}

func TestEngineBlock(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{NationalID}, Direction: "request", Action: ActionBlock}}}})
	out, v, err := e.Apply(Request, []byte(`{"params":{"arguments":{"query":"customer with SSN 536-22-1846"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.Decision != Block || out != nil {
		t.Fatalf("decision %v out %s", v.Decision, out)
	}
	if len(v.Reasons) == 0 || !strings.Contains(v.Reasons[0], "us-ssn") || !strings.Contains(v.Reasons[0], "$.params.arguments.query") {
		t.Errorf("reasons = %v", v.Reasons)
	}
	for _, r := range v.Reasons {
		if strings.Contains(r, "536-22-1846") {
			t.Errorf("reason leaks the value: %s", r)
		}
	}
	// the same document as a response is allowed (rule is request-only)
	if _, v, _ := e.Apply(Response, []byte(`{"q":"SSN 536-22-1846"}`)); v.Decision != Allow {
		t.Errorf("response decision = %v", v.Decision)
	}
}

func TestEngineRedactsCredentialsInRequests(t *testing.T) {
	e := mustEngine(t, EngineConfig{}) // no rules at all
	tok := genCRCToken(mrand.New(mrand.NewPCG(1, 2)), "ghp_")
	req := `{"params":{"arguments":{"cmd":"git clone https://x:` + tok + `@github.com/o/r"}}}`
	out, v, err := e.Apply(Request, []byte(req))
	if err != nil {
		t.Fatal(err)
	}
	if v.Decision != Modify || strings.Contains(string(out), tok) || !json.Valid(out) {
		t.Errorf("credential reached the upstream: %v %s", v.Decision, out)
	}
}

func TestEngineTokenize(t *testing.T) {
	mac := testMAC(t)
	tk, _ := NewTokenizer(TokenizerConfig{MAC: mac})
	fpe, _ := NewTokenizer(TokenizerConfig{MAC: mac, FormatPreserving: true})
	pol := Policy{Rules: []Rule{{Categories: []Category{PCI, NationalID}, Direction: "response", Action: ActionTokenize}}}
	doc := []byte(`{"a":"4111 1111 1111 1111","b":"4111-1111-1111-1111","c":"SSN 536-22-1846"}`)
	e := mustEngine(t, EngineConfig{Policy: pol, Tokenizer: tk})
	out, _, err := e.Apply(Response, doc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m["a"], "tok_") || m["a"] != m["b"] {
		t.Errorf("tokens not deterministic across layouts: %q %q", m["a"], m["b"])
	}
	e2 := mustEngine(t, EngineConfig{Policy: pol, Tokenizer: fpe})
	out, _, _ = e2.Apply(Response, doc)
	// the same through a rule with format ff1 and the default tokenizer
	polFF1 := Policy{Rules: []Rule{{Categories: []Category{PCI, NationalID}, Direction: "response", Action: ActionTokenize, Format: "ff1"}}}
	out3, _, _ := mustEngine(t, EngineConfig{Policy: polFF1, Tokenizer: tk}).Apply(Response, doc)
	if string(out3) != string(out) {
		t.Errorf("format ff1 rule: %s, tokenizer default: %s", out3, out)
	}
	_ = json.Unmarshal(out, &m)
	if len(m["a"]) != 19 || m["a"][4] != ' ' || m["a"] == "4111 1111 1111 1111" || !allDigits([]byte(strings.ReplaceAll(m["a"], " ", ""))) {
		t.Errorf("format-preserving token = %q", m["a"])
	}
	if !strings.HasPrefix(m["c"], "SSN ") || len(m["c"]) != len("SSN 536-22-1846") || m["c"][7] != '-' {
		t.Errorf("ssn token = %q", m["c"])
	}
	if _, err := NewEngine(EngineConfig{Policy: pol}); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("tokenize without tokenizer: err = %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	bad := []Rule{
		{Direction: "both", Action: ActionRedact},
		{Categories: []Category{"nope"}, Direction: "both", Action: ActionRedact},
		{Detectors: []string{"no-such"}, Direction: "both", Action: ActionRedact},
		{Categories: []Category{PCI}, Direction: "sideways", Action: ActionRedact},
		{Categories: []Category{PCI}, Direction: "both", Action: "shred"},
		{Categories: []Category{PCI}, Direction: "both", Action: ActionMask, KeepTail: ptr(99)},
		{Categories: []Category{PCI}, Direction: "both", Action: ActionRedact, Format: "ff1"},
		{Categories: []Category{PCI}, Direction: "both", Action: ActionTokenize, Format: "aes"},
	}
	for _, r := range bad {
		if err := (Policy{Rules: []Rule{r}}).Validate(); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%+v: err = %v", r, err)
		}
	}
	if err := issuePolicy.Validate(); err != nil {
		t.Error(err)
	}
}

func TestTaintFlows(t *testing.T) {
	mac := testMAC(t)
	taint, _ := NewTaint(TaintConfig{MAC: mac})
	e := mustEngine(t, EngineConfig{Taint: taint})
	crmProd := Upstream{Name: "crm", Environment: Prod, Egress: Internal}
	sandbox := Upstream{Name: "sandbox", Environment: Dev, Egress: Internal}
	reports := Upstream{Name: "reports", Environment: Prod, Egress: Internal}
	saas := Upstream{Name: "translator", Environment: Prod, Egress: External}

	if _, v, _ := e.ApplyFlow(Flow{"s1", crmProd}, Response, []byte(`{"customer":{"ssn":"536-22-1846"}}`)); v.Decision != Allow {
		t.Fatalf("response: %v", v.Decision)
	}
	req := []byte(`{"params":{"arguments":{"note":"SSN 536221846 please"}}}`)
	for _, tc := range []struct {
		to   Upstream
		sess string
		want Decision
	}{
		{sandbox, "s1", Block}, // prod → dev
		{reports, "s1", Allow}, // prod → prod, internal
		{saas, "s1", Block},    // sensitive → external
		{sandbox, "s2", Allow}, // another session never saw it
	} {
		_, v, err := e.ApplyFlow(Flow{tc.sess, tc.to}, Request, req)
		if err != nil {
			t.Fatal(err)
		}
		if v.Decision != tc.want {
			t.Errorf("to %s (%s): decision %v, want %v (%v)", tc.to.Name, tc.sess, v.Decision, tc.want, v.Reasons)
		}
	}
	taint.Forget("s1")
	if _, v, _ := e.ApplyFlow(Flow{"s1", sandbox}, Request, req); v.Decision != Allow {
		t.Errorf("after Forget: %v", v.Decision)
	}
	err := taint.Check("s1", sandbox, "x", []byte("y"))
	if err != nil {
		t.Errorf("unknown value flagged: %v", err)
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`[{"categories":["pci","secrets"],"action":"redact"},{"categories":["pii"],"direction":"response","action":"mask","keepTail":2}]`))
	if err != nil || len(p.Rules) != 2 || *p.Rules[1].KeepTail != 2 || p.Rules[1].Action != ActionMask || !p.Rules[0].applies(Request) {
		t.Fatalf("parse: %+v %v", p, err)
	}
	if _, err := ParsePolicy([]byte(`{"rules":[{"categories":["pci"],"direction":"both","action":"redact","colour":"red"}]}`)); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := ParsePolicy([]byte(`[{"categories":["pci"],"direction":"up","action":"redact"}]`)); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("bad direction: %v", err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`[{"categories":["pci"],"direction":"both","action":"block"}]`))
	f.Add([]byte(`{"rules":[{"detectors":["iban"],"direction":"request","action":"mask","keepTail":4}]}`))
	f.Add([]byte(`[{"categories":["pci"],"action":"tokenize","format":"ff1"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		tok, _ := NewTokenizer(TokenizerConfig{MAC: &HMAC{key: make([]byte, 32)}})
		if _, err := NewEngine(EngineConfig{Policy: p, Tokenizer: tok}); err != nil {
			t.Fatalf("validated policy rejected by NewEngine: %v", err)
		}
	})
}

// A response that is blocked never reaches the agent, so it taints nothing.
func TestTaintNotRecordedWhenBlocked(t *testing.T) {
	taint, _ := NewTaint(TaintConfig{MAC: testMAC(t)})
	e := mustEngine(t, EngineConfig{Taint: taint, Policy: Policy{Rules: []Rule{{Categories: []Category{Secrets}, Direction: "response", Action: ActionBlock}}}})
	prod := Upstream{Name: "crm", Environment: Prod, Egress: Internal}
	dev := Upstream{Name: "sandbox", Environment: Dev, Egress: Internal}
	resp := `{"ssn":"536-22-1846","key":"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"}`
	if _, v, _ := e.ApplyFlow(Flow{"s", prod}, Response, []byte(resp)); v.Decision != Block {
		t.Fatalf("response not blocked: %v", v.Decision)
	}
	if _, v, _ := e.ApplyFlow(Flow{"s", dev}, Request, []byte(`{"q":"SSN 536-22-1846"}`)); v.Decision == Block {
		t.Errorf("value of a blocked response was tainted: %v", v.Reasons)
	}
}

// TestConcurrentUse shares one scanner, engine and taint tracker between
// goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	taint, _ := NewTaint(TaintConfig{MAC: testMAC(t), MaxSessions: 8, MaxValuesPerSession: 4})
	e := mustEngine(t, EngineConfig{Taint: taint, Policy: issuePolicy})
	s := mustScanner(t, Config{})
	doc := []byte(`{"a":"4111 1111 1111 1111","b":"x@example.com","c":"SSN 536-22-1846","d":[1,2,{"k":"AKIAIOSFODNN7EXAMPL3"}]}`)
	want, _ := s.ScanJSON(doc)
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				fs, err := s.ScanJSON(doc)
				if err != nil || len(fs) != len(want) {
					done <- fmt.Errorf("scan: %d findings, want %d (%v)", len(fs), len(want), err)
					return
				}
				sess := fmt.Sprintf("s%d-%d", g, i%20)
				if _, _, err := e.ApplyFlow(Flow{sess, Upstream{Name: "u", Environment: Prod}}, Response, doc); err != nil {
					done <- err
					return
				}
				if _, _, err := e.ApplyFlow(Flow{sess, Upstream{Name: "v", Environment: Dev}}, Request, doc); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
