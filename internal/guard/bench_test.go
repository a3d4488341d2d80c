package guard

import (
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// BenchmarkAdmit is the guard stage's cost per call with a limit on every
// key (agent, tool, persona, upstream) and the breakers, over agents
// active agents calling in parallel; it reports p50/p99 of single Admit +
// Done pairs and the memory the guard holds per active agent.
func BenchmarkAdmit(b *testing.B) {
	for _, agents := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			g, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			p := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 1e9, Concurrency: 100,
				Tools: map[string]state.Rates{"helpdesk/search_tickets": {CallsPerMinute: 1e9}}, Persona: &state.Rates{CallsPerDay: 1e9}}},
				map[string]*state.Upstream{"helpdesk": {Limits: &state.Rates{CallsPerMinute: 1e9}}})
			calls := make([]Call, agents)
			for i := range calls {
				calls[i] = Call{Persona: "triage", Agent: fmt.Sprintf("agent-%d", i), Upstream: "helpdesk", Tool: "search_tickets"}
			}
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for _, c := range calls { // every agent active
				t, _ := g.Admit(p, c)
				t.Done(Succeeded)
			}
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			perAgent := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(agents)
			var next atomic.Int64
			latc := make(chan []time.Duration, 64)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					c := calls[int(next.Add(1))%agents]
					t0 := time.Now()
					t, r := g.Admit(p, c)
					if r != nil {
						panic(r.Reason)
					}
					t.Done(Succeeded)
					if len(mine) < 100000 {
						mine = append(mine, time.Since(t0))
					}
				}
				latc <- mine
			})
			b.StopTimer()
			close(latc)
			var all []time.Duration
			for l := range latc {
				all = append(all, l...)
			}
			b.ReportMetric(perAgent, "B/agent")
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}
