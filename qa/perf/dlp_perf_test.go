package perf

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// customerReport is a realistic ≈4 KB tool result: an order history in
// prose and numbers, with a few sensitive values (cards, IBAN, e-mail,
// phone) among mostly clean text.
func customerReport(t *testing.T) string {
	r := mrand.New(mrand.NewPCG(4, 4))
	val := func(id string) string {
		d, err := dlp.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		s, a, b := d.Sample(r)
		return s[a:b]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Customer: Jane Roe, account 7731, e-mail %s, phone %s.\n", val("email"), val("phone-fr"))
	fmt.Fprintf(&b, "Payment methods on file: card %s (primary), card %s (backup), IBAN %s.\n", val("card-visa"), val("card-mastercard"), val("iban"))
	items := []string{"USB-C cable 2m", "27in monitor", "mechanical keyboard", "laptop stand", "noise-cancelling headset", "webcam 4K", "docking station", "ergonomic mouse"}
	carriers := []string{"DHL", "UPS", "La Poste", "GLS"}
	for i := 0; b.Len() < 4000; i++ {
		fmt.Fprintf(&b, "Order %d placed 2026-%02d-%02d: %d x %s at %d.%02d EUR, shipped via %s, tracking ref %s-%05d, status %s.\n",
			48210+i, 1+i%12, 1+i%28, 1+i%3, items[i%len(items)], 10+i*7%300, i%100, carriers[i%len(carriers)],
			strings.ToUpper(carriers[i%len(carriers)][:2]), 10000+i*37, []string{"delivered", "in transit", "returned"}[i%3])
	}
	return b.String()
}

func startReportUpstream(t *testing.T, report string) string {
	srv := mcp.NewServer(&mcp.Implementation{Name: "crm", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "report", Description: "A customer's order report"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: report}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{JSONResponse: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String() + "/mcp"
}

const dlpConfig = `
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: crm}
spec: {url: "%s"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: reports}
spec: {tools: [{tool: crm/report}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: plain}
spec: {skills: [reports]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: guarded}
spec:
  skills: [reports]
  dlp:
    - {categories: [pci, banking, secrets], direction: both, action: redact}
    - {categories: [pii], direction: response, action: mask}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: plain-bot}
spec: {persona: plain}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: guarded-bot}
spec: {persona: guarded}
`

// TestDLPOverhead prints the latency DLP adds to tools/call with a ≈4 KB
// result: the same upstream, tool and load through a persona without DLP
// rules and one with them, in one run (interleaved rounds, so drift of the
// shared machine hits both alike). It fails only if calls fail or the
// guarded persona's result is not rewritten.
func TestDLPOverhead(t *testing.T) {
	dur, rounds, perSec := time.Second, 2, 200
	if *full {
		dur, rounds, perSec = 5*time.Second, 3, 500
	}
	report := customerReport(t)
	up := startReportUpstream(t, report)
	node := harness.StartNode(t)
	node.Apply(fmt.Sprintf(dlpConfig, up))
	clients := map[string]*harness.RawClient{
		"plain":   harness.NewRawClient(node.GatewayURL()+"/p/plain/mcp", node.NewKey("plain-bot"), *conc),
		"guarded": harness.NewRawClient(node.GatewayURL()+"/p/guarded/mcp", node.NewKey("guarded-bot"), *conc),
	}
	for name, c := range clients {
		if err := c.Initialize(); err != nil {
			t.Fatalf("initialize %s: %v\n%s", name, err, node.Logs())
		}
		r, err := c.CallTool("crm_report", map[string]any{"text": "warm"})
		if err != nil || r.Error != nil {
			t.Fatalf("first call as %s: %v %+v", name, err, r)
		}
		redacted := strings.Contains(string(r.Result), "[REDACTED:")
		if redacted != (name == "guarded") {
			t.Fatalf("%s: result redacted = %v: %.300s", name, redacted, r.Result)
		}
	}
	all := map[string]*result{"plain": {name: "no DLP rules"}, "guarded": {name: "DLP rules"}}
	for i := 0; i < rounds; i++ {
		for _, name := range []string{"plain", "guarded"} {
			r := fixedRate(clients[name], name, "crm_report", perSec, dur)
			a := all[name]
			a.calls += r.calls
			a.errors += r.errors
			a.lat = append(a.lat, r.lat...)
			if a.firstErr == "" {
				a.firstErr = r.firstErr
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nDLP on tools/call, %d-byte result (%d sensitive values), fixed rate %d/s, %d rounds of %v per persona, interleaved\n", len(report), 5, perSec, rounds, dur)
	fmt.Fprintf(&b, "%-14s %7s %6s %9s %9s %9s\n", "persona", "calls", "errors", "p50", "p90", "p99")
	for _, name := range []string{"plain", "guarded"} {
		r := all[name]
		slices.Sort(r.lat)
		fmt.Fprintf(&b, "%-14s %7d %6d %9v %9v %9v\n", r.name, r.calls, r.errors, r.pct(.5).Round(time.Microsecond), r.pct(.9).Round(time.Microsecond), r.pct(.99).Round(time.Microsecond))
	}
	p, g := all["plain"], all["guarded"]
	fmt.Fprintf(&b, "added by DLP: p50 %v, p99 %v\n", (g.pct(.5) - p.pct(.5)).Round(time.Microsecond), (g.pct(.99) - p.pct(.99)).Round(time.Microsecond))
	t.Log(b.String())
	if *full {
		os.MkdirAll("../out", 0o755)
		os.WriteFile("../out/perf-dlp.txt", []byte(b.String()), 0o644)
	}
	for _, r := range all {
		if r.errors > 0 {
			t.Errorf("%s: %d of %d calls failed; first: %s", r.name, r.errors, r.calls, r.firstErr)
		}
	}
}
