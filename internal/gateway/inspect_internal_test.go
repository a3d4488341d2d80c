package gateway

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

type fixedSource struct{ v *View }

func (s fixedSource) View() *View                          { return s.v }
func (s fixedSource) Subscribe() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// benchResult is a ≈4 KB tools/call result: prose and order lines with a
// card, an IBAN and an e-mail address.
func benchResult(b *testing.B) json.RawMessage {
	r := mrand.New(mrand.NewPCG(9, 9))
	val := func(id string) string {
		d, err := dlp.Lookup(id)
		if err != nil {
			b.Fatal(err)
		}
		s, x, y := d.Sample(r)
		return s[x:y]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Customer Jane Roe (%s) pays with card %s; refunds go to IBAN %s.\n", val("email"), val("card-visa"), val("iban"))
	for i := 0; sb.Len() < 4000; i++ {
		fmt.Fprintf(&sb, "Order %d placed 2026-%02d-%02d: %d x item-%d at %d.%02d EUR, shipped, tracking DH-%05d.\n", 48210+i, 1+i%12, 1+i%28, 1+i%3, i%9, 10+i*7%300, i%100, 10000+i*37)
	}
	res, _ := json.Marshal(map[string]any{"content": []map[string]string{{"type": "text", "text": sb.String()}}})
	return res
}

// BenchmarkInspectResult measures stage 9 alone on a ≈4 KB result: a
// persona without rules (no upstream labels, so nothing to scan), with
// redact/mask rules, and with rules plus taint tracking (labelled upstreams).
func BenchmarkInspectResult(b *testing.B) {
	res := benchResult(b)
	rules := []state.DLPRule{
		{Categories: []string{"pci", "banking", "secrets"}, Action: "redact"},
		{Categories: []string{"pii"}, Direction: "response", Action: "mask"},
	}
	for _, c := range []struct {
		name   string
		rules  []state.DLPRule
		labels bool
	}{{"no-rules", nil, false}, {"rules", rules, false}, {"rules+taint", rules, true}} {
		b.Run(c.name, func(b *testing.B) {
			up := &UpstreamSpec{Name: "crm"}
			if c.labels {
				up.Environment, up.Egress = "prod", "internal"
			}
			v := &View{Index: 1, Upstreams: map[string]*UpstreamSpec{"crm": up}, DLP: map[string][]state.DLPRule{}}
			if c.rules != nil {
				v.DLP["p"] = c.rules
			}
			g, err := New(Config{Source: fixedSource{v}, Authenticator: &authn.APIKeys{}, SessionKey: make([]byte, 32), DLPKey: mustHMAC(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			rc := &reqCtx{r: httptest.NewRequest("POST", "/p/p/mcp", nil), persona: "p", view: v, start: time.Now(), p: authn.Principal{Agent: "a", KeyID: "k"}}
			b.SetBytes(int64(len(res)))
			b.ResetTimer()
			for range b.N {
				var d Decision
				out, e := g.inspectResult(rc, &d, "tools/call", "crm", res)
				if e != nil || len(out) == 0 {
					b.Fatal(e)
				}
			}
		})
	}
}

func mustHMAC(b *testing.B) dlp.MAC {
	h, err := dlp.NewHMAC([]byte("benchmark-only-key-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// FuzzInspectResult feeds arbitrary upstream results through stage 9 with
// rules of every action: it never panics, and a valid JSON result stays
// valid JSON (or is refused).
func FuzzInspectResult(f *testing.F) {
	f.Add([]byte(`{"content":[{"type":"text","text":"card 4111 1111 1111 1111, mail a@b.example"}]}`))
	f.Add([]byte(`{"structuredContent":{"card":4111111111111111,"note":"{\"iban\":\"DE89370400440532013000\"}"}}`))
	f.Add([]byte(`{"contents":[{"uri":"x://1","text":"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"}]}`))
	f.Add([]byte(`[1,"2",{"a":null}]`))
	f.Add([]byte(`{"a":"\u0034111111111111111"}`))
	f.Add([]byte(`not json`))
	rules := []state.DLPRule{
		{Categories: []string{"pci"}, Action: "mask"},
		{Categories: []string{"banking"}, Action: "tokenize", Format: "ff1"},
		{Categories: []string{"secrets"}, Action: "redact"},
		{Categories: []string{"pii"}, Action: "tokenize"},
		{Categories: []string{"phi"}, Action: "block"},
	}
	up := &UpstreamSpec{Name: "crm", Environment: "prod", Egress: "internal"}
	v := &View{Index: 1, Upstreams: map[string]*UpstreamSpec{"crm": up}, DLP: map[string][]state.DLPRule{"p": rules}}
	h, _ := dlp.NewHMAC([]byte("fuzz-only-key-0123456789abcdefgh"))
	g, err := New(Config{Source: fixedSource{v}, Authenticator: &authn.APIKeys{}, SessionKey: make([]byte, 32), DLPKey: h})
	if err != nil {
		f.Fatal(err)
	}
	defer g.Close()
	rc := &reqCtx{r: httptest.NewRequest("POST", "/p/p/mcp", nil), persona: "p", view: v, start: time.Now(), p: authn.Principal{Agent: "a", KeyID: "k"}}
	f.Fuzz(func(t *testing.T, res []byte) {
		var d Decision
		out, e := g.inspectResult(rc, &d, "tools/call", "crm", res)
		if e != nil {
			if d.DLPResponse != "block" {
				t.Fatalf("refused without a block verdict: %+v", d)
			}
			return
		}
		if json.Valid(res) && !json.Valid(out) {
			t.Fatalf("valid result %q became invalid %q", res, out)
		}
	})
}

// A DELETEd session's taint is forgotten: the key forgetSession drops is
// the one flow() records under.
func TestTaintForgottenWithSession(t *testing.T) {
	up := &UpstreamSpec{Name: "vault", Environment: "prod"}
	dev := &UpstreamSpec{Name: "sandbox", Environment: "dev"}
	v := &View{Index: 1, Upstreams: map[string]*UpstreamSpec{"vault": up, "sandbox": dev}}
	h, _ := dlp.NewHMAC([]byte("test-only-key-0123456789abcdefgh"))
	g, err := New(Config{Source: fixedSource{v}, Authenticator: &authn.APIKeys{}, SessionKey: make([]byte, 32), DLPKey: h})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rc := &reqCtx{r: httptest.NewRequest("POST", "/p/p/mcp", nil), persona: "p", view: v, sess: &session{Nonce: "n1"}}
	ds := g.dlp.compiled(v)
	value := []byte("4111111111111111")
	g.dlp.taint.Record(g.flow(rc, ds, "vault").Session, dlp.UpstreamFromSpec(&state.Upstream{Meta: state.Meta{Name: "vault"}, Environment: "prod"}), "card-visa", value)
	to := g.flow(rc, ds, "sandbox").Upstream
	if err := g.dlp.taint.Check(g.flow(rc, ds, "sandbox").Session, to, "card-visa", value); err == nil {
		t.Fatal("prod value allowed to dev before the session ended")
	}
	g.forgetSession("n1")
	if err := g.dlp.taint.Check(g.flow(rc, ds, "sandbox").Session, to, "card-visa", value); err != nil {
		t.Fatalf("taint kept after the session ended: %v", err)
	}
}
