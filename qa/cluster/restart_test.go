package cluster

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// TestFollowerKill: kill -9 of a follower under admin writes and agent
// calls on the others costs no write and no call; the follower, restarted,
// catches up.
func TestFollowerKill(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	key := setupEcho(t, c, up)
	leader := c.Leader(10 * time.Second)
	victim := followers(c, leader)[0]
	var others []*harness.Node
	for _, n := range c.Nodes {
		if n != victim {
			others = append(others, n)
		}
	}
	agents := startAgentLoad(t, others, "echoer", key, 5*time.Millisecond)
	writes := startWriteLoad(t, others, 20*time.Millisecond)
	time.Sleep(time.Second)
	victim.Kill()
	time.Sleep(3 * time.Second)
	agents.Stop()
	writes.Stop()
	if f := agents.failed.Load(); f != 0 || agents.ok.Load() == 0 {
		t.Errorf("agent calls on the others while a follower died: %d ok, %d failed:\n%s", agents.ok.Load(), f, agents.Errors())
	}
	for _, n := range others {
		for _, r := range writes.records(n.ID()) {
			if r.err != nil {
				t.Errorf("write through %s while a follower died: %v", n.ID(), r.err)
			}
		}
	}
	if got := c.Leader(10 * time.Second); got != leader {
		t.Errorf("a follower's death moved leadership from %s to %s", leader.ID(), got.ID())
	}
	victim.Start()
	c.WaitFormed(60 * time.Second)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, n := range others {
		want := last(writes.records(n.ID())).value
		if got, code, err := upstreamURL(victim, client, "w-"+n.ID()); err != nil || got != want {
			t.Errorf("restarted %s: upstream w-%s = %q (%d %v), want %q", victim.ID(), n.ID(), got, code, err, want)
		}
	}
}

// TestWholeClusterRestart: every node stopped (SIGTERM), then all started
// again at once: they elect a leader from their own data, with nothing
// lost and no join token, and serve the agents they served before.
func TestWholeClusterRestart(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	key := setupEcho(t, c, up)
	c.Nodes[1].Apply(upstreamYAML("before-restart", "http://127.0.0.1:9/b"))
	for _, n := range c.Nodes {
		n.Stop()
		if !n.Exited(0) {
			t.Fatalf("%s did not stop", n.ID())
		}
	}
	// No node can be healthy alone, so start all before waiting on any.
	for _, n := range c.Nodes {
		if err := n.Launch(); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitFormed(60 * time.Second)
	for _, n := range c.Nodes {
		waitVisible(t, n, "upstreams/before-restart")
		waitAgentOK(t, n, "echoer", key)
	}
	// A node restarted alone (the others up) also comes back.
	n := c.Nodes[2]
	if err := n.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n.Exited(10 * time.Second)
	n.Start()
	c.WaitFormed(60 * time.Second)
}
