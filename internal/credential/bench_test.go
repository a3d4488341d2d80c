package credential

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkInjectionOverhead measures what credential injection adds to a
// proxied call: each iteration makes the same POST to a real loopback
// upstream once directly and once through a Transport, and reports the
// p50/p99 of both and the p99 difference. "cached" is the steady state (the
// unsealed secret is in memory for CacheTTL); "unseal-every-call" pays a
// SoftHSM unseal on every request (CacheTTL < 0).
// Run: go test -run '^$' -bench InjectionOverhead -benchtime 2000x ./internal/credential
func BenchmarkInjectionOverhead(b *testing.B) {
	for _, mode := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"unseal-every-call", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			s := newStore(b, "")
			s.put(b, "tok", canary(b))
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			}))
			defer up.Close()
			direct := http.DefaultTransport.(*http.Transport).Clone()
			defer direct.CloseIdleConnections()
			viaBase := http.DefaultTransport.(*http.Transport).Clone()
			defer viaBase.CloseIdleConnections()
			tr, err := New(Config{Upstream: "bench", Spec: Spec{Secret: "tok", Header: "Authorization", Format: "Bearer {secret}"},
				Unsealer: s.unsealer(), Base: viaBase, CacheTTL: mode.ttl})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			call := func(rt http.RoundTripper) time.Duration {
				req, _ := http.NewRequest(http.MethodPost, up.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`))
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return time.Since(start)
			}
			call(direct)
			call(tr) // warm connections and the cache
			var base, inj []time.Duration
			for b.Loop() {
				base = append(base, call(direct))
				inj = append(inj, call(tr))
			}
			bp50, bp99 := percentile(base, 50), percentile(base, 99)
			ip50, ip99 := percentile(inj, 50), percentile(inj, 99)
			b.ReportMetric(us(bp50), "direct-p50-µs")
			b.ReportMetric(us(bp99), "direct-p99-µs")
			b.ReportMetric(us(ip50), "injected-p50-µs")
			b.ReportMetric(us(ip99), "injected-p99-µs")
			b.ReportMetric(us(ip50-bp50), "added-p50-µs")
			b.ReportMetric(us(ip99-bp99), "added-p99-µs")
			b.ReportMetric(0, "ns/op") // the pair's mean says little; the percentiles do
		})
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
