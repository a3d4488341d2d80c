package cluster

import (
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

var (
	bench       = flag.Bool("cluster.bench", false, "run TestClusterFigures, which prints failover and write figures")
	benchRounds = flag.Int("cluster.rounds", 5, "leader kills in TestClusterFigures")
	benchConc   = flag.Int("cluster.conc", 4, "concurrent admin writers in TestClusterFigures")
	benchDur    = flag.Duration("cluster.dur", 3*time.Second, "length of each admin-write phase in TestClusterFigures")
)

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// writePhase runs conc closed-loop writers, each applying its own
// Upstream through the nodes in turn, for d; it returns the latencies of
// the acknowledged writes and the number that failed.
func writePhase(nodes []*harness.Node, conc int, d time.Duration) (lat []time.Duration, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; time.Now().Before(end); i++ {
				n := nodes[(w+i)%len(nodes)]
				start := time.Now()
				code, _, err := applyHTTP(n, client, upstreamYAML(fmt.Sprintf("bench-%d", w), fmt.Sprintf("http://127.0.0.1:9/%d", i)))
				el := time.Since(start)
				mu.Lock()
				if err == nil && code == http.StatusOK {
					lat = append(lat, el)
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, failed
}

// TestClusterFigures prints what the cluster costs and how it fails over
// (a qa benchmark: it asserts no timing). Run it with
//
//	go test ./qa/cluster -run TestClusterFigures -v -args -cluster.bench
func TestClusterFigures(t *testing.T) {
	if !*bench {
		t.Skip("figures only with -args -cluster.bench")
	}
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	key := setupEcho(t, c, up)
	var b strings.Builder

	// Failover: kill -9 the leader, under agent calls on the survivors;
	// time until a write through a survivor (invoked right after the kill,
	// then again and again) is acknowledged, and until every survivor
	// names the new leader.
	var accept, named []time.Duration
	var agentOK, agentFailed int64
	for round := range *benchRounds {
		leader := c.Leader(30 * time.Second)
		survivors := followers(c, leader)
		agents := startAgentLoad(t, survivors, "echoer", key, 2*time.Millisecond)
		time.Sleep(500 * time.Millisecond)
		client := &http.Client{Timeout: 2 * time.Second}
		killed := time.Now()
		leader.Kill()
		namedAt := make(chan time.Duration, 1)
		go func() { namedAt <- waitNamed(survivors, leader.ID(), killed) }()
		for i := 0; ; i++ {
			code, _, err := applyHTTP(survivors[i%2], client, upstreamYAML("failover", fmt.Sprintf("http://127.0.0.1:9/%d-%d", round, i)))
			if err == nil && code == http.StatusOK {
				accept = append(accept, time.Since(killed))
				break
			}
			if time.Since(killed) > time.Minute {
				t.Fatalf("round %d: no write acknowledged a minute after the kill", round)
			}
		}
		if d := <-namedAt; d > 0 {
			named = append(named, d)
		}
		time.Sleep(500 * time.Millisecond)
		agents.Stop()
		agentOK += agents.ok.Load()
		agentFailed += agents.failed.Load()
		if f := agents.failed.Load(); f > 0 {
			t.Logf("round %d: %d agent calls failed on survivors:\n%s", round, f, agents.Errors())
		}
		leader.Start()
		c.WaitFormed(60 * time.Second)
	}
	fmt.Fprintf(&b, "\nleader kill -9 (%d rounds, default raft timeouts: heartbeat, election and lease 500ms):\n", *benchRounds)
	fmt.Fprintf(&b, "  kill -> first write acknowledged through a survivor: p50 %v, max %v\n", pct(accept, .5).Round(time.Millisecond), pct(accept, 1).Round(time.Millisecond))
	fmt.Fprintf(&b, "  kill -> every survivor names the new leader:         p50 %v, max %v\n", pct(named, .5).Round(time.Millisecond), pct(named, 1).Round(time.Millisecond))
	fmt.Fprintf(&b, "  agent tools/call on survivors during the kills: %d of %d succeeded (%.3f%%)\n", agentOK, agentOK+agentFailed, 100*float64(agentOK)/float64(max(1, agentOK+agentFailed)))

	// Admin writes: 3 nodes (writes spread over every node, so 2 of 3 are
	// forwarded; then all through the leader) against a single node.
	lat3, failed3 := writePhase(c.Nodes, *benchConc, *benchDur)
	latL, failedL := writePhase([]*harness.Node{c.Leader(30 * time.Second)}, *benchConc, *benchDur)
	rss := map[string][2]int64{}
	for _, n := range c.Nodes {
		cur, peak := n.RSS()
		rss[n.ID()] = [2]int64{cur, peak}
	}
	single := harness.StartNode(t)
	lat1, failed1 := writePhase([]*harness.Node{single}, *benchConc, *benchDur)
	fmt.Fprintf(&b, "\nadmin writes (POST /v1/apply of one Upstream), %d closed-loop writers for %v:\n", *benchConc, *benchDur)
	fmt.Fprintf(&b, "  %-28s %8s %7s %9s %9s %9s\n", "", "writes/s", "failed", "p50", "p99", "max")
	for _, r := range []struct {
		name   string
		lat    []time.Duration
		failed int
	}{{"3 nodes, through every node", lat3, failed3}, {"3 nodes, through the leader", latL, failedL}, {"1 node", lat1, failed1}} {
		fmt.Fprintf(&b, "  %-28s %8.0f %7d %9v %9v %9v\n", r.name, float64(len(r.lat))/benchDur.Seconds(), r.failed,
			pct(r.lat, .5).Round(time.Microsecond), pct(r.lat, .99).Round(time.Microsecond), pct(r.lat, 1).Round(time.Microsecond))
	}
	fmt.Fprintf(&b, "\nmemory per node (RSS now / peak):\n")
	for _, n := range c.Nodes {
		r := rss[n.ID()]
		fmt.Fprintf(&b, "  %s: %.0f / %.0f MiB\n", n.ID(), mib(r[0]), mib(r[1]))
	}
	cur, peak := single.RSS()
	fmt.Fprintf(&b, "  single node: %.0f / %.0f MiB\n", mib(cur), mib(peak))
	t.Log(b.String())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// waitNamed polls until every node in nodes names the same leader other
// than dead and returns the time since from; 0 after a minute.
func waitNamed(nodes []*harness.Node, dead string, from time.Time) time.Duration {
	for time.Since(from) < time.Minute {
		leader := ""
		agreed := true
		for _, n := range nodes {
			st, err := n.Status()
			if err != nil || st.Leader == "" || st.Leader == dead || (leader != "" && st.Leader != leader) {
				agreed = false
				break
			}
			leader = st.Leader
		}
		if agreed {
			return time.Since(from)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0
}
