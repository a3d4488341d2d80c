package qa

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// BenchmarkCredentialInjectionThroughGateway measures what injecting a
// backend credential adds to a proxied tools/call through the real binary:
// the same upstream server is declared twice, once plain and once with a
// header credential it checks, and both are called alternately in one run
// (same node, same connections, same load). It reports each side's p50 and
// p99 and the difference; with the default cache (30s) the HSM unseal is
// paid once per TTL, so the figures show the steady-state cost.
//
//	go test ./qa -run '^$' -bench CredentialInjectionThroughGateway -benchtime 2000x
func BenchmarkCredentialInjectionThroughGateway(b *testing.B) {
	secret := canaryValue(b)
	up := startBackend(b, func(r *http.Request) bool {
		return r.URL.Path == "/plain" || r.Header.Get("X-Api-Key") == secret
	})
	n := harness.StartNode(b)
	f := writeTempTB(b, secret)
	n.MustCLI("secret", "put", "bench-key", "--from-file", f)
	n.Apply(recordsYAML("keyed", up.url, `{secret: bench-key, header: X-API-Key}`) + "---\n" +
		recordsYAML("plain", strings.TrimSuffix(up.url, "/mcp")+"/plain", ""))
	clients := map[string]*harness.RawClient{}
	for _, name := range []string{"plain", "keyed"} {
		c := harness.NewRawClient(n.GatewayURL()+"/p/"+name+"-reader/mcp", n.NewKey(name+"-bot"), 1)
		if err := c.Initialize(); err != nil {
			b.Fatalf("initialize %s: %v", name, err)
		}
		clients[name] = c
	}
	call := func(name string) time.Duration {
		start := time.Now()
		resp, err := clients[name].CallTool(name+"_lookup", map[string]any{"id": 1})
		if err != nil || resp.Error != nil {
			b.Fatalf("%s call: %v %+v", name, err, resp)
		}
		return time.Since(start)
	}
	for range 20 { // warm connections, catalogs and the credential cache
		call("plain")
		call("keyed")
	}
	lat := map[string][]time.Duration{}
	i := 0
	for b.Loop() {
		first, second := "plain", "keyed"
		if i%2 == 1 {
			first, second = second, first
		}
		i++
		lat[first] = append(lat[first], call(first))
		lat[second] = append(lat[second], call(second))
	}
	pp50, pp99 := pct(lat["plain"], 50), pct(lat["plain"], 99)
	kp50, kp99 := pct(lat["keyed"], 50), pct(lat["keyed"], 99)
	b.ReportMetric(usOf(pp50), "plain-p50-µs")
	b.ReportMetric(usOf(pp99), "plain-p99-µs")
	b.ReportMetric(usOf(kp50), "credential-p50-µs")
	b.ReportMetric(usOf(kp99), "credential-p99-µs")
	b.ReportMetric(usOf(kp50-pp50), "added-p50-µs")
	b.ReportMetric(usOf(kp99-pp99), "added-p99-µs")
	b.ReportMetric(0, "ns/op") // a pair's mean says little; the percentiles do
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func usOf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
