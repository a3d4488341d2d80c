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
