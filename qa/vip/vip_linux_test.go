//go:build linux

package vipqa

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/qa/internal/nscluster"
)

const (
	subnet  = "10.231.77."
	vipAddr = subnet + "100"
	// maxStale is above a raft election, so that survivors keep serving
	// while they elect a new leader.
	maxStale = "5s"
)

// cluster is a production cluster in namespaces (nscluster) with
// keepalived beside every node.
type cluster struct {
	*nscluster.Cluster
	t        *testing.T
	unicast  bool // VRRP to the peers' addresses, else multicast
	nodes    []*node
	vrrpPass string
}

// node is one node's namespace, its VRRP priority and keepalived.
type node struct {
	*nscluster.Node
	priority int
	keepal   *nscluster.Proc
}

// TestClusterAddressFailover: see the package doc. It runs once with
// multicast VRRP (the default) and once with unicast peers.
func TestClusterAddressFailover(t *testing.T) {
	nscluster.Prereqs(t, "keepalived", "curl")
	for _, unicast := range []bool{false, true} {
		name := map[bool]string{false: "multicast", true: "unicast"}[unicast]
		t.Run(name, func(t *testing.T) { testFailover(t, unicast) })
	}
}

func testFailover(t *testing.T, unicast bool) {
	c := newCluster(t, unicast, []int{200, 150, 100})
	for _, n := range c.nodes {
		c.startKeepalived(n)
	}
	// No node serves yet: nobody may hold the address.
	time.Sleep(4 * time.Second)
	if h := c.holders(); len(h) != 0 {
		t.Fatalf("%v hold the cluster address before any node serves", names(h))
	}

	c.StartNode(c.nodes[0].Node, "")
	c.waitServing(c.nodes[0], 30*time.Second)
	for _, n := range c.nodes[1:] {
		c.Join(n.Node)
	}
	key := c.AgentKey()
	// The key works on every node, directly (polled: it reaches the
	// followers through raft).
	created := time.Now()
	for _, n := range c.nodes {
		for c.agentErr(n.IP, key) != nil && time.Since(created) < 20*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		c.checkAgentAt(n.IP, key)
	}
	t.Logf("a new agent key worked on every node %v after it was created", time.Since(created).Round(time.Millisecond))

	// 1. The healthy node of highest priority holds the address; an agent
	// reaches the cluster through it.
	n1, n2 := c.nodes[0], c.nodes[1]
	c.waitHolder(n1, 20*time.Second)
	c.checkAgent(key)
	session, err := c.connect(vipAddr, key)
	if err != nil {
		t.Fatalf("MCP session through the cluster address: %v", err)
	}
	defer session.Close()
	if got := c.servedBy(session); got != n1.Name {
		t.Fatalf("a tool call through the cluster address was served on %q, want %s (the holder)", got, n1.Name)
	}

	// 2. kill -9 the holder's node: the address moves to the next healthy
	// node. Measure how long an agent finds it unreachable.
	killed := time.Now()
	n1.Proc.Kill()
	gap, firstOK := c.outage(killed, 30*time.Second)
	c.waitHolder(n2, 10*time.Second)
	// The agent's client goes on calling through the same address and
	// lands on the new holder.
	if got := c.servedBy(session); got != n2.Name {
		t.Fatalf("after the failover a tool call through the cluster address was served on %q, want %s", got, n2.Name)
	}
	t.Logf("FIGURE failover after kill -9 of the holder: cluster address unreachable for %v (kill → first good /healthz through the VIP on %s: %v)", gap.Round(time.Millisecond), n2.Name, firstOK.Sub(killed).Round(time.Millisecond))
	c.checkAgent(key)

	// 3. Restart the killed node cut off from the raft port: it never hears
	// a leader, so its /healthz stays 503. It has the highest priority, yet
	// it must never take the address while it answers 503.
	c.NFT(n1.Node, "add table inet vipcut", "add chain inet vipcut in { type filter hook input priority 0; }",
		"add chain inet vipcut out { type filter hook output priority 0; }",
		"add rule inet vipcut in tcp dport 9444 drop", "add rule inet vipcut out tcp dport 9444 drop")
	c.StartNode(n1.Node, "") // not waiting for health
	deadline := time.Now().Add(30 * time.Second)
	for c.health(n1.IP) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatalf("%s cut off from raft does not answer 503 on /healthz (last %d):\n%s", n1.Name, c.health(n1.IP), nscluster.Tail(n1.Proc.Logs()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Long enough for keepalived to preempt (rise 2 × 1s + 3 adverts) if it
	// took a 503 for healthy.
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if code := c.health(n1.IP); code != http.StatusServiceUnavailable {
			t.Fatalf("%s answered %d while cut off from raft, want 503", n1.Name, code)
		}
		if h := c.holders(); len(h) != 1 || h[0] != n2 {
			t.Fatalf("holders of the cluster address while %s answers 503: %v, want only %s", n1.Name, names(h), n2.Name)
		}
	}
	if got := c.servedBy(session); got != n2.Name {
		t.Fatalf("while %s answers 503 a tool call through the cluster address was served on %q, want %s", n1.Name, got, n2.Name)
	}

	// 4. Heal the cut: the node catches up, turns healthy and, having the
	// highest priority, takes the address back (preemption).
	c.NFT(n1.Node, "delete table inet vipcut")
	healed := time.Now()
	c.waitHolder(n1, 60*time.Second)
	t.Logf("FIGURE preemption: %s healthy again and holding the address %v after the cut healed", n1.Name, time.Since(healed).Round(time.Millisecond))
	if code := c.vipHealth(); code != http.StatusOK {
		t.Fatalf("GET /healthz through the cluster address after preemption: %d", code)
	}
	if got := c.servedBy(session); got != n1.Name {
		t.Fatalf("after preemption a tool call through the cluster address was served on %q, want %s", got, n1.Name)
	}
	c.checkAgent(key)
}

// newCluster makes the namespaces, one node per priority (none running),
// and the VRRP password.
func newCluster(t *testing.T, unicast bool, priorities []int) *cluster {
	nc := nscluster.New(t, nscluster.Config{Prefix: "pcvip", Subnet: subnet, Nodes: len(priorities), ExtraIPs: []string{vipAddr},
		Args: []string{"--max-stale", maxStale}})
	c := &cluster{Cluster: nc, t: t, unicast: unicast}
	for i, n := range nc.Nodes {
		c.nodes = append(c.nodes, &node{Node: n, priority: priorities[i]})
	}
	c.vrrpPass = filepath.Join(t.TempDir(), "vrrp-pass")
	nscluster.Write(t, c.vrrpPass, []byte(rand.Text()[:8]+"\n"))
	return c
}

// startKeepalived generates n's keepalived.conf with the CLI, as an admin
// would, and runs keepalived with it (VRRP only).
func (c *cluster) startKeepalived(n *node) {
	t := c.t
	args := []string{"cluster", "vip-config", "--vip", vipAddr + "/24", "--iface", "eth0", "--router-id", "51",
		"--priority", strconv.Itoa(n.priority), "--health-url", "https://127.0.0.1:" + nscluster.GatewayPort + "/healthz",
		"--auth-pass-file", c.vrrpPass}
	if c.unicast {
		args = append(args, "--src-ip", n.IP)
	}
	for _, p := range c.nodes {
		if p != n && c.unicast {
			args = append(args, "--peer", p.IP)
		}
	}
	out, err := exec.Command(c.Bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("portcullis %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	conf := filepath.Join(n.Dir, "keepalived.conf")
	nscluster.Write(t, conf, out)
	n.keepal = c.Start(n.Node, "keepalived.log", nil, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"--use-file", conf, "--pid", filepath.Join(n.Dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(n.Dir, "vrrp.pid"))
}

// servedBy calls get_ticket through s and returns the node whose upstream
// answered ("" on error, which fails the test).
func (c *cluster) servedBy(s *mcp.ClientSession) string {
	c.t.Helper()
	by, err := nscluster.GetTicket(s, 7)
	if err != nil {
		c.t.Errorf("tools/call get_ticket through the cluster address: %v", err)
	}
	return by
}

// checkAgent connects a real MCP client through the cluster address.
func (c *cluster) checkAgent(key string) {
	c.t.Helper()
	c.checkAgentAt(vipAddr, key)
}

// checkAgentAt connects a real MCP client to the gateway at ip, from the
// bridge's namespace.
func (c *cluster) checkAgentAt(ip, key string) {
	t := c.t
	t.Helper()
	if err := c.agentErr(ip, key); err != nil {
		for _, n := range c.nodes {
			if n.IP == ip || ip == vipAddr {
				t.Logf("%s log:\n%s", n.Name, nscluster.Tail(n.Proc.Logs()))
			}
		}
		t.Fatalf("MCP initialize at %s (cluster address held by %v): %v", ip, names(c.holders()), err)
	}
}

// agentErr is the error of an MCP initialize at ip's gateway, or nil.
func (c *cluster) agentErr(ip, key string) error {
	s, err := c.connect(ip, key)
	if err != nil {
		return err
	}
	return s.Close()
}

// connect opens an MCP session at ip's gateway from the bridge's namespace.
func (c *cluster) connect(ip, key string) (*mcp.ClientSession, error) {
	return c.Connect(c.Bridge, ip, key)
}

// health is the status of GET https://ip:8443/healthz from the bridge's
// namespace, 0 when there is no answer.
func (c *cluster) health(ip string) int { return c.HealthAt(c.Bridge, ip) }

func (c *cluster) vipHealth() int { return c.health(vipAddr) }

// waitServing waits until n answers /healthz 200 from the bridge.
func (c *cluster) waitServing(n *node, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for c.health(n.IP) != http.StatusOK {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not serve after %v:\n%s", n.Name, limit, nscluster.Tail(n.Proc.Logs()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outage probes the cluster address every 50 ms from start until it
// answers 200 after having failed; it returns how long it failed and when
// it first answered again.
func (c *cluster) outage(start time.Time, limit time.Duration) (time.Duration, time.Time) {
	var firstFail time.Time
	for time.Since(start) < limit {
		now := time.Now()
		ok := c.vipHealth() == http.StatusOK
		switch {
		case !ok && firstFail.IsZero():
			firstFail = now
		case ok && !firstFail.IsZero():
			return now.Sub(firstFail), now
		}
		time.Sleep(time.Until(now.Add(50 * time.Millisecond)))
	}
	c.t.Fatalf("the cluster address did not answer again within %v (holders %v)\n%s", limit, names(c.holders()), c.keepalivedLogs())
	return 0, time.Time{}
}

// holders are the nodes that have the cluster address on eth0.
func (c *cluster) holders() []*node {
	var h []*node
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("ip", "-n", n.NS.Name, "-4", "-br", "addr", "show", "dev", "eth0").CombinedOutput()
			if err != nil {
				c.t.Errorf("ip addr in %s: %v %s", n.Name, err, out)
				return
			}
			if strings.Contains(string(out), " "+vipAddr+"/") {
				mu.Lock()
				h = append(h, n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return h
}

// waitHolder waits until n, and only n, holds the address and it answers.
func (c *cluster) waitHolder(n *node, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		h := c.holders()
		if len(h) == 1 && h[0] == n && c.vipHealth() == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %v the cluster address is held by %v, want %s\n%s", limit, names(h), n.Name, c.keepalivedLogs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) keepalivedLogs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- keepalived %s:\n%s\n", n.Name, nscluster.Tail(n.keepal.Logs()))
	}
	return b.String()
}

func names(ns []*node) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}
