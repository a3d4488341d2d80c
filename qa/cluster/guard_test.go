package cluster

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// TestClusterWideRateLimit: one agent calls through all three nodes of a
// real cluster at once, as fast as it can, under a persona limit of 600
// calls per minute with a burst of 10; the cluster, not each node, admits
// about burst + 10/s (nodes tell each other every 200 ms what they
// admitted). It prints the admitted count against the exact figure and
// fails only if the nodes plainly do not share (each admitting the limit
// on its own would be three times the figure).
func TestClusterWideRateLimit(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	leader := c.Leader(10 * time.Second)
	leader.Apply(echoConfig(up, "limited", "limited-bot"))
	leader.Apply(`apiVersion: portcullis/v1
kind: Persona
metadata: {name: limited}
spec:
  skills: [echo]
  limits: {callsPerMinute: 600, burst: 10}
`)
	key := leader.NewKey("limited-bot")
	agents := make([]*harness.RawClient, 0, 3)
	for _, n := range c.Nodes {
		waitAgentOK(t, n, "limited", key)
		agents = append(agents, newAgent(t, n, "limited", key, "2025-11-25"))
	}
	// Let the buckets the warm-up calls used refill.
	time.Sleep(2 * time.Second)

	const run = 6 * time.Second
	var admitted, refused, other atomic.Int64
	var otherErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for _, a := range agents {
		for range 2 { // two callers per node
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Since(start) < run; i++ {
					err := callEcho(a, fmt.Sprint(i))
					switch {
					case err == nil:
						admitted.Add(1)
					case strings.Contains(err.Error(), "rate limit"):
						refused.Add(1)
					default:
						other.Add(1)
						otherErr.Store(err.Error())
					}
				}
			}()
		}
	}
	wg.Wait()
	took := time.Since(start)
	if n := other.Load(); n > 0 {
		t.Errorf("%d calls failed otherwise than by the rate limit; last: %v", n, otherErr.Load())
	}
	exact := 10 + 10*took.Seconds()
	got := float64(admitted.Load())
	t.Logf("FIGURE cluster-wide rate limit (600/min, burst 10, 3 nodes, 6 callers): admitted %d in %v where the limit allows %.0f (error %+.1f%%), refused %d",
		admitted.Load(), took.Round(time.Millisecond), exact, 100*(got-exact)/exact, refused.Load())
	if got > 2*exact {
		t.Errorf("the cluster admitted %.0f calls where the limit allows %.0f: the nodes do not share what they admit", got, exact)
	}
	if got < exact/2 {
		t.Errorf("the cluster admitted only %.0f calls where the limit allows %.0f", got, exact)
	}
}
