package cluster

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// gauge reads one unlabelled gauge from n's admin /metrics.
func gauge(t *testing.T, n *harness.Node, name string) float64 {
	t.Helper()
	code, b, err := n.AdminDo(http.MethodGet, "/metrics", "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d %v", n.ID(), code, err)
	}
	m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+-]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics on %s has no %s", n.ID(), name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTransferRemoveReplace is the fourth story: hand leadership
// to a chosen node, replace a dead node (remove it, join a new one), and
// see it all in status and metrics. The removed node, started again with
// its old data, is not let back in.
func TestTransferRemoveReplace(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3, "--max-stale", maxStale.String())
	key := setupEcho(t, c, up)

	// Metrics: one leader, three members, one term, same applied index
	// (once idle).
	st := c.WaitFormed(30 * time.Second)
	leaders := 0.0
	for _, n := range c.Nodes {
		leaders += gauge(t, n, "portcullis_cluster_leader")
		if v := gauge(t, n, "portcullis_cluster_members"); v != 3 {
			t.Errorf("portcullis_cluster_members on %s = %v, want 3", n.ID(), v)
		}
		if v := gauge(t, n, "portcullis_cluster_term"); v != float64(st.Term) {
			t.Errorf("portcullis_cluster_term on %s = %v, status says term %d", n.ID(), v, st.Term)
		}
		if v := gauge(t, n, "portcullis_cluster_applied_index"); v == 0 {
			t.Errorf("portcullis_cluster_applied_index on %s = 0", n.ID())
		}
	}
	if leaders != 1 {
		t.Errorf("portcullis_cluster_leader sums to %v over the nodes, want 1", leaders)
	}

	// Transfer, asked through a follower, to the other follower.
	leader := c.Leader(10 * time.Second)
	fs := followers(c, leader)
	fs[0].MustCLI("cluster", "transfer-leader", fs[1].ID())
	if got := c.Leader(30 * time.Second); got != fs[1] {
		t.Fatalf("after transfer-leader %s: leader %s", fs[1].ID(), got.ID())
	}
	// Without a target, to some other voter.
	before := c.Leader(10 * time.Second)
	before.MustCLI("cluster", "transfer-leader")
	if got := c.Leader(30 * time.Second); got == before {
		t.Errorf("transfer-leader without a node: %s still leads", got.ID())
	}

	// A follower dies for good; it is removed and replaced.
	dead := followers(c, c.Leader(10*time.Second))[0]
	dead.Kill()
	var live *harness.Node
	for _, n := range c.Nodes {
		if n != dead {
			live = n
			break
		}
	}
	live.MustCLI("cluster", "remove", dead.ID())
	c.Nodes = slices.DeleteFunc(c.Nodes, func(n *harness.Node) bool { return n == dead })
	st = c.WaitFormed(30 * time.Second)
	if st.Member(dead.ID()) != nil || len(st.Members) != 2 {
		t.Fatalf("after cluster remove %s: members %+v", dead.ID(), st.Members)
	}
	if _, errOut, err := live.CLI("cluster", "remove", dead.ID()); err == nil || !strings.Contains(errOut, "not a member") {
		t.Errorf("removing %s again: %v %s, want refused: not a member", dead.ID(), err, errOut)
	}
	repl := c.Join("n4", "--max-stale", maxStale.String())
	st = c.WaitFormed(60 * time.Second)
	if m := st.Member("n4"); m == nil || !m.Voter || !m.Healthy {
		t.Fatalf("replacement n4: %+v", m)
	}
	waitAgentOK(t, repl, "echoer", key)
	repl.Apply(upstreamYAML("after-replace", "http://127.0.0.1:9/r"))
	for _, n := range c.Nodes {
		waitVisible(t, n, "upstreams/after-replace")
	}

	// The removed node comes back with its old data dir and certificate:
	// the members do not take it back, and it does not serve agents.
	if err := dead.Launch(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(maxStale + 2*time.Second)
	if code, body := dead.Healthz(); code == http.StatusOK {
		t.Errorf("the removed %s, restarted, answers /healthz 200 %s", dead.ID(), body)
	}
	a := harness.NewRawClient(endpoint(dead, "echoer"), key, 1)
	if err := a.Initialize(); err == nil {
		if err := callEcho(a, "removed?"); err == nil {
			t.Errorf("the removed %s, restarted, serves agents", dead.ID())
		}
	}
	st = c.WaitFormed(30 * time.Second)
	if st.Member(dead.ID()) != nil || len(st.Members) != 3 {
		t.Errorf("after the removed node came back: members %+v", st.Members)
	}
	t.Logf("removed node's output after its restart:\n%s", errorLines(dead.Logs(), 3))
}
