package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// TestIncidentReportIsClusterWide: an agent's calls served by two nodes
// are all in the incident report asked of a third (it reads its replicas
// of the other nodes' trails), in time order.
func TestIncidentReportIsClusterWide(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	key := setupEcho(t, c, up)
	a, b, reporter := c.Nodes[1], c.Nodes[2], c.Nodes[0]
	for _, n := range []*harness.Node{a, b} {
		waitAgentOK(t, n, "echoer", key)
		agent := newAgent(t, n, "echoer", key, "2025-11-25")
		for i := range 5 {
			if err := callEcho(agent, fmt.Sprintf("%s-%d", n.ID(), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var rep struct {
		Totals struct{ Calls, Nodes int }
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := reporter.MustCLI("incident", "report", "--agent", "echo-bot", "--since", "10m", "-o", "-")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report: %v\n%.300s", err, out)
		}
		if rep.Totals.Calls >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report on %s counts %d of the 10 calls served by %s and %s (replicated within a group commit and a raft commit)", reporter.ID(), rep.Totals.Calls, a.ID(), b.ID())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rep.Totals.Nodes < 2 {
		t.Errorf("the report on %s saw calls served by %d nodes, want those of %s and %s", reporter.ID(), rep.Totals.Nodes, a.ID(), b.ID())
	}
}
