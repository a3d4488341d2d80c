package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kvCodec carries kvFSM answers: an int, or an error's text.
type kvCodec struct{}

func (kvCodec) EncodeResponse(resp any, err error) ([]byte, error) {
	if err != nil {
		return json.Marshal(map[string]string{"err": err.Error()})
	}
	return json.Marshal(map[string]any{"n": resp})
}

func (kvCodec) DecodeResponse(b []byte) (any, error) {
	var w struct {
		N   *int
		Err string
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.Err != "" {
		return errors.New(w.Err), nil
	}
	return *w.N, nil
}

func peerNode(t testing.TB, dir string, tc *tls.Config, fsm *kvFSM, bootstrap bool) *Node {
	return startNode(t, dir, fsm, bootstrap, func(c *Config) { c.TLS, c.Codec = tc, kvCodec{} })
}

// Three nodes on one mutual-TLS port each: a write on any follower reaches
// the leader and comes back replicated with the leader's answer (also its
// FSM's refusal), followers become ready, the status reaches every member,
// leadership moves on request from a follower, and Reconcile removes a
// member that is no longer wanted.
func TestThreeNodesOverTheNodePort(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	root := t.TempDir()
	fsms := []*kvFSM{newKV(), newKV(), newKV()}
	n1 := peerNode(t, filepath.Join(root, "1"), ca.nodeTLS(t, "node-1"), fsms[0], true)
	ready(t, n1)
	n2 := peerNode(t, filepath.Join(root, "2"), ca.nodeTLS(t, "node-2"), fsms[1], false)
	n3 := peerNode(t, filepath.Join(root, "3"), ca.nodeTLS(t, "node-3"), fsms[2], false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]string{"node-1": n1.Addr(), "node-2": n2.Addr(), "node-3": n3.Addr()}
	// Reconcile is retried by its caller (a loaded machine can lose a
	// leader while the configuration grows), as the appliance does.
	// New members join as non-voters and are promoted once caught up.
	for err := n1.Reconcile(ctx, want); err != nil || voters(n1) != 3; err = leaderOf(n1, n2, n3).Reconcile(ctx, want) {
		if ctx.Err() != nil {
			t.Fatalf("reconcile: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready(t, n2)
	ready(t, n3)

	if got := apply(t, n2, "from", "n2"); got != 1 {
		t.Fatalf("forwarded write answered %v, want the leader's FSM answer 1", got)
	}
	apply(t, n3, "also", "n3")
	b, _ := json.Marshal(kvCmd{})
	if _, err := n3.Apply(ctx, b); err == nil || err.Error() != "empty key" {
		t.Fatalf("the FSM's refusal through a follower: %v", err)
	}
	for _, f := range fsms {
		for f.get("from") != "n2" || f.get("also") != "n3" {
			if ctx.Err() != nil {
				t.Fatal("forwarded writes did not replicate everywhere")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	st := n3.ClusterStatus(ctx)
	if st.Leader != "node-1" || len(st.Members) != 3 {
		t.Fatalf("status from a follower: %+v", st)
	}
	for _, m := range st.Members {
		if !m.Healthy || !m.Voter || m.LastIndex == 0 {
			t.Fatalf("member %+v not healthy in %+v", m, st)
		}
	}

	if err := n2.TransferLeadership(ctx, "node-3"); err != nil {
		t.Fatalf("transfer from a follower: %v", err)
	}
	for !n3.IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("node-3 never became leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := n2.TransferLeadership(ctx, "node-9"); err == nil || !strings.Contains(err.Error(), "not a voter") {
		t.Fatalf("transfer to a stranger: %v", err)
	}

	delete(want, "node-2")
	if err := n3.Reconcile(ctx, want); err != nil {
		t.Fatal(err)
	}
	if st := n1.ClusterStatus(ctx); len(st.Members) != 2 {
		t.Fatalf("after removing node-2: %+v", st)
	}
	// The leader itself removed: it hands over, and the next leader
	// takes it out.
	delete(want, "node-3")
	for leaderOf(n1, n3) == n3 || len(n1.Status().Members) != 1 {
		if ctx.Err() != nil {
			t.Fatalf("removing the leader: %+v", n1.Status())
		}
		leaderOf(n1, n3).Reconcile(ctx, want)
		time.Sleep(50 * time.Millisecond)
	}
}

// A host whose certificate another CA issued cannot use the node port:
// neither raft nor a forwarded write gets through, and the refusal is
// logged on the node.
func TestNodePortRefusesForeignCertificates(t *testing.T) {
	ca, other := newTestCA(t, "cluster CA"), newTestCA(t, "another cluster")
	n1 := peerNode(t, filepath.Join(t.TempDir(), "1"), ca.nodeTLS(t, "node-1"), newKV(), true)
	ready(t, n1)
	stranger := peerNode(t, filepath.Join(t.TempDir(), "x"), other.nodeTLS(t, "node-x"), newKV(), false)
	if _, err := stranger.peers.dial(context.Background(), n1.Addr(), alpnRPC, 2*time.Second); err == nil {
		t.Fatal("a certificate of another cluster reached the RPC server")
	}
	if _, err := stranger.peers.Dial("127.0.0.1:1", time.Second); err == nil {
		t.Fatal("dial to nothing succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := stranger.peers.dial(ctx, n1.Addr(), alpnRaft, 2*time.Second); err == nil {
		t.Fatal("a certificate of another cluster reached raft")
	}
	if _, err := n1.peers.dial(ctx, stranger.Addr(), alpnRaft, 2*time.Second); err == nil {
		t.Fatal("the node trusted a peer of another cluster it dialled")
	}
}

func leaderOf(nodes ...*Node) *Node {
	for _, n := range nodes {
		if n.IsLeader() {
			return n
		}
	}
	return nodes[0]
}

func voters(n *Node) int {
	v := 0
	for _, m := range n.Status().Members {
		if m.Voter {
			v++
		}
	}
	return v
}

// A leader cut off from its majority steps down; its staleness then counts
// from when it last led, not from when it started, and grows until it
// hears a leader again.
func TestStalenessOfADeposedLeader(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	root := t.TempDir()
	t0 := time.Now()
	n1 := peerNode(t, filepath.Join(root, "1"), ca.nodeTLS(t, "node-1"), newKV(), true)
	ready(t, n1)
	n2 := peerNode(t, filepath.Join(root, "2"), ca.nodeTLS(t, "node-2"), newKV(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]string{"node-1": n1.Addr(), "node-2": n2.Addr()}
	for voters(n1) != 2 {
		if ctx.Err() != nil {
			t.Fatal("node-2 never became a voter")
		}
		leaderOf(n1, n2).Reconcile(ctx, want)
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // n1 has been up a while, leading
	if s := leaderOf(n1, n2).Staleness(); s != 0 {
		t.Fatalf("leader staleness %v", s)
	}
	leader, other := leaderOf(n1, n2), n2
	if leader == n2 {
		other = n1
	}
	other.Close() // the majority is gone
	for leader.IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("the leader never stepped down without its majority")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s1 := leader.Staleness()
	time.Sleep(300 * time.Millisecond)
	s2 := leader.Staleness()
	if up := time.Since(t0); s1 >= up-time.Second || s2 <= s1 {
		t.Fatalf("deposed leader's staleness: %v then %v (up %v); want it counted from when it led, and growing", s1, s2, up)
	}
}
