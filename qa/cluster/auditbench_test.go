package cluster

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

var (
	auditBench    = flag.Bool("audit.bench", false, "run TestAuditFigures, which prints audit throughput and latency per mode")
	auditBenchDur = flag.Duration("audit.dur", 5*time.Second, "length of each load phase in TestAuditFigures")
	auditBenchPer = flag.Int("audit.per", 4, "closed-loop agents per node in TestAuditFigures")
)

// TestAuditFigures prints, for a 3-node cluster in each audit mode (off,
// async, strict), the records per second each node sustained under
// closed-loop agent load through every node, and p50/p99 per call, with
// what async and strict add to off (a qa benchmark: it asserts only that
// calls succeeded and were recorded). Run it with
//
//	go test ./qa/cluster -run TestAuditFigures -v -args -audit.bench
func TestAuditFigures(t *testing.T) {
	if !*auditBench {
		t.Skip("figures only with -args -audit.bench")
	}
	skipShort(t)
	up := startUpstream(t)
	type figure struct {
		mode     string
		calls    int
		perNode  float64
		p50, p99 time.Duration
		viaN1    int // calls through n1
		replica  int // n1's records on n2
	}
	var figs []figure
	for _, mode := range []string{"off", "async", "strict"} {
		c := harness.StartCluster(t, 3, "--audit-mode", mode)
		keys := setupAuditAgents(t, c, up, *auditBenchPer)
		load := startAuditLoad(t, c, keys, *auditBenchPer)
		start := time.Now()
		time.Sleep(*auditBenchDur)
		load.Stop()
		el := time.Since(start)
		f := figure{mode: mode, p50: pct(load.lat, .5), p99: pct(load.lat, .99)}
		for _, a := range load.acked {
			f.calls += len(a)
		}
		failed := 0
		for _, n := range load.failed {
			failed += n
		}
		if f.calls == 0 || failed > f.calls/100 {
			t.Fatalf("%s: %d calls succeeded, %d failed", mode, f.calls, failed)
		}
		f.perNode = float64(f.calls) / el.Seconds() / 3
		for i := range *auditBenchPer {
			f.viaN1 += len(load.acked[fmt.Sprintf("a-n1-%d", i)])
		}
		if mode != "off" {
			// What n2 holds of n1's agents' calls: replication kept up.
			time.Sleep(time.Second)
			for i := range *auditBenchPer {
				f.replica += len(recordTimes(t, filepath.Join(c.Nodes[1].DataDir, "audit", "replicas", "n1"), fmt.Sprintf("a-n1-%d", i)))
			}
		}
		figs = append(figs, f)
		for _, n := range c.Nodes {
			n.Stop()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\naudit on 3 nodes, %d closed-loop agents per node, %v per mode, echo upstream, one run:\n", *auditBenchPer, *auditBenchDur)
	fmt.Fprintf(&b, "%-7s %9s %14s %9s %9s %12s %12s %s\n", "mode", "calls", "records/s/node", "p50", "p99", "+p50 vs off", "+p99 vs off", "n1's records on n2 / calls via n1")
	for _, f := range figs {
		fmt.Fprintf(&b, "%-7s %9d %14.0f %9v %9v %12v %12v %d / %d\n", f.mode, f.calls, f.perNode, f.p50.Round(10*time.Microsecond), f.p99.Round(10*time.Microsecond),
			(f.p50 - figs[0].p50).Round(10*time.Microsecond), (f.p99 - figs[0].p99).Round(10*time.Microsecond), f.replica, f.viaN1)
	}
	b.WriteString("(off keeps no records: its records/s is calls/s; the machine is shared, so compare modes within one run)\n")
	t.Log(b.String())
}
