package cluster

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// setupEcho applies the echo persona through the first node and returns an
// agent key that works on every node.
func setupEcho(t *testing.T, c *harness.Cluster, up string) string {
	t.Helper()
	c.Nodes[0].Apply(echoConfig(up, "echoer", "echo-bot"))
	key := c.Nodes[0].NewKey("echo-bot")
	for _, n := range c.Nodes {
		waitVisible(t, n, "personas/echoer")
		waitAgentOK(t, n, "echoer", key)
	}
	return key
}

// waitAgentOK waits until an agent with key can initialize and call echo
// on n (its key replicated).
func waitAgentOK(t *testing.T, n *harness.Node, persona, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := harness.NewRawClient(endpoint(n, persona), key, 1)
		err := c.Initialize()
		if err == nil {
			err = callEcho(c, "ready?")
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent on %s: %v\n%s", n.ID(), err, n.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeaderKill is the second story: kill -9 the leader under
// admin writes through every node and agent traffic on the others. A new
// leader is elected, writes go on through the survivors, the survivors'
// agents see no failed call, and agents that were on the dead node go on
// with the same session on a survivor. The killed node, restarted, catches
// up without a new join token.
func TestLeaderKill(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	key := setupEcho(t, c, up)
	leader := c.Leader(10 * time.Second)
	var survivors []*harness.Node
	for _, n := range c.Nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}

	// Agents on the node that will die, one per stateful revision.
	movers := map[string]*harness.RawClient{}
	for _, v := range []string{"2025-06-18", "2025-11-25"} {
		a := newAgent(t, leader, "echoer", key, v)
		if a.SessionID() == "" {
			t.Fatalf("%s initialize on %s gave no Mcp-Session-Id", v, leader.ID())
		}
		if err := callEcho(a, "before "+v); err != nil {
			t.Fatalf("%s call on %s: %v", v, leader.ID(), err)
		}
		movers[v] = a
	}

	agents := startAgentLoad(t, survivors, "echoer", key, 5*time.Millisecond)
	writes := startWriteLoad(t, c.Nodes, 20*time.Millisecond)
	time.Sleep(time.Second)
	killedAt := time.Now()
	leader.Kill()
	newLeader := c.Leader(30 * time.Second)
	if newLeader == leader {
		t.Fatalf("the killed node %s is still named leader", leader.ID())
	}
	t.Logf("killed leader %s; new leader %s (named within %v)", leader.ID(), newLeader.ID(), time.Since(killedAt).Round(time.Millisecond))
	// Writes go on through every survivor: each has acknowledged writes
	// that started after the new leader was known.
	electedAt := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range survivors {
		for {
			acked := 0
			for _, r := range writes.records(n.ID()) {
				if r.err == nil && r.start.After(electedAt) {
					acked++
				}
			}
			if acked >= 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("writes through %s after the new leader: %d acknowledged, want 5; last: %+v\n%s", n.ID(), acked, last(writes.records(n.ID())), c.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond)
	agents.Stop()
	writes.Stop()

	if f := agents.failed.Load(); f != 0 {
		t.Errorf("agent calls on survivors during the leader kill: %d of %d failed:\n%s", f, f+agents.ok.Load(), agents.Errors())
	}
	if agents.ok.Load() == 0 {
		t.Errorf("no agent call succeeded on the survivors")
	}
	for _, n := range survivors {
		recs := writes.records(n.ID())
		failed := 0
		for _, r := range recs {
			if r.err != nil {
				failed++
				t.Logf("write through %s at +%v failed: %v", n.ID(), r.start.Sub(killedAt).Round(time.Millisecond), r.err)
				// A failure during the election must say "retry", not
				// "internal error".
				if !strings.Contains(r.err.Error(), "HTTP 503") {
					t.Errorf("write through %s during the election: %v, want a 503", n.ID(), r.err)
				}
			}
		}
		if l := last(recs); l.err != nil {
			t.Errorf("the last write through %s failed: %v", n.ID(), l.err)
		}
		t.Logf("writes through %s: %d, %d failed", n.ID(), len(recs), failed)
	}

	// The agents of the dead node reconnect to a survivor: same session,
	// same key, the call works.
	for v, a := range movers {
		sid := a.SessionID()
		a.URL = endpoint(survivors[0], "echoer")
		if err := callEcho(a, "after "+v); err != nil {
			t.Errorf("%s session %s moved from the killed %s to %s: %v\n%s", v, sid, leader.ID(), survivors[0].ID(), err, survivors[0].Logs())
		}
		if a.SessionID() != sid {
			t.Errorf("%s session changed from %s to %s", v, sid, a.SessionID())
		}
	}

	// Restarted, the killed node catches up by itself (no join token).
	joins := strings.Count(leader.Logs(), "joining a cluster")
	leader.Start()
	st := c.WaitFormed(60 * time.Second)
	if m := st.Member(leader.ID()); m == nil || !m.Voter || !m.Healthy || m.Lag != 0 {
		t.Errorf("restarted %s: %+v", leader.ID(), m)
	}
	if n := strings.Count(leader.Logs(), "joining a cluster"); n != joins {
		t.Errorf("the restarted node joined again (%d joins before, %d after)", joins, n)
	}
	// It holds every survivor's last acknowledged write.
	client := &http.Client{Timeout: 10 * time.Second}
	for _, n := range survivors {
		want := last(writes.records(n.ID())).value
		got, code, err := upstreamURL(leader, client, "w-"+n.ID())
		if err != nil || got != want {
			t.Errorf("restarted %s: upstream w-%s = %q (%d %v), want the last acknowledged %q", leader.ID(), n.ID(), got, code, err, want)
		}
	}
}

func last(recs []writeRec) writeRec {
	if len(recs) == 0 {
		return writeRec{}
	}
	return recs[len(recs)-1]
}
