//go:build linux

package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
	"github.com/portcullis-gw/portcullis/qa/internal/nscluster"
)

// netMaxStale is the minority's staleness bound in the network partition
// test: above a raft election, so that the majority's followers keep
// serving while they elect a leader without the cut-off one.
const netMaxStale = 5 * time.Second

// TestNetworkPartition is the third story with real network cuts,
// every process running on both sides: a three-node production cluster,
// one node per network namespace (qa/internal/nscluster). It cuts one node
// away four times, a follower and the leader, each once with nftables
// dropping everything on its interface and once with its cable pulled
// (the bridge port down). Agents beside every node call a tool throughout
// and several clients read and write one object through random nodes,
// each client beside the node it uses, so the minority keeps its own
// clients. Each time:
//   - the majority has a leader without the cut-off node, acknowledges
//     writes (a key revoked and a persona deleted among them) and its
//     agents see no failed call;
//   - the cut-off node serves its agents from its last state only until
//     --max-stale, never honours the revoked key or the deleted persona
//     after that, then answers 503 on /healthz and to agents, and says it
//     is stale in its status;
//   - healed, it catches up by itself: serves again, the same session
//     included, refuses the revoked key and the deleted persona, and reads
//     the majority's writes.
//
// The whole history of reads and writes, across the four partitions, is
// checked for linearizability with porcupine. Figures print with -v.
func TestNetworkPartition(t *testing.T) {
	skipShort(t)
	nscluster.Prereqs(t)
	c := nscluster.New(t, nscluster.Config{Prefix: "pcpart", Subnet: "10.231.78.", Nodes: 3, Args: []string{"--max-stale", netMaxStale.String()}})
	c.Form()
	key := c.AgentKey()
	for _, n := range c.Nodes {
		waitTicket(t, c, n, "support-triage", key, 20*time.Second)
	}

	h := &linHistory{base: time.Now()}
	v0 := "http://127.0.0.1:9/initial"
	call := h.now()
	if code, body, err := c.Admin(c.Nodes[0], nil, http.MethodPost, "/v1/apply", upstreamYAML("lin", v0)); err != nil || code != http.StatusOK {
		t.Fatalf("first write: %d %s %v", code, body, err)
	}
	h.add(porcupine.Operation{ClientId: 0, Input: linInput{true, v0}, Call: call, Output: "", Return: h.now()})
	const clients = 3
	stop := make(chan struct{})
	var wg sync.WaitGroup
	targets := nsTargets(c)
	for i := 1; i <= clients; i++ {
		wg.Add(1)
		go h.linClient(t, i, targets, stop, &wg)
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			close(stop)
			wg.Wait()
			stopped = true
		}
	}
	t.Cleanup(stopClients)

	for _, p := range []struct{ role, cut string }{
		{"follower", "nftables"}, {"leader", "unplugged"}, {"leader", "nftables"}, {"follower", "unplugged"},
	} {
		if !t.Run(p.role+"/"+p.cut, func(t *testing.T) { partitionNode(t, c, key, p.role, p.cut) }) {
			break
		}
	}

	stopClients()
	finals := map[string]string{}
	for _, n := range c.Nodes {
		call := h.now()
		v, code, err := nsUpstreamURL(c, n, nil, "lin")
		if err != nil || code != http.StatusOK {
			t.Fatalf("final read through %s: %d %v", n.Name, code, err)
		}
		h.add(porcupine.Operation{ClientId: clients + 1, Input: linInput{}, Call: call, Output: v, Return: h.now()})
		finals[n.Name] = v
	}
	h.check(t, finals)
}

// partitionNode cuts the leader or a follower away (role) with nftables or
// by unplugging it (cut), checks both sides, and heals the cut.
func partitionNode(t *testing.T, c *nscluster.Cluster, key, role, cut string) {
	leader := c.Leader(c.Nodes, 30*time.Second)
	m := leader
	for _, n := range c.Nodes {
		if role == "follower" && n != leader {
			m = n
			break
		}
	}
	var others []*nscluster.Node
	for _, n := range c.Nodes {
		if n != m {
			others = append(others, n)
		}
	}
	// A key the majority will revoke and a persona it will delete during
	// the cut, each working on m before.
	doomed := c.CLI(others[0], "agent", "key", "create", "triage-bot")
	gone := "gone-" + role + "-" + cut
	f := filepath.Join(t.TempDir(), "gone.yaml")
	nscluster.Write(t, f, []byte(fmt.Sprintf("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: %s}\nspec: {skills: [read-tickets]}\n---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: %s-bot}\nspec: {persona: %s}\n", gone, gone, gone)))
	c.CLI(others[0], "apply", "-f", f)
	goneKey := c.CLI(others[0], "agent", "key", "create", gone+"-bot")
	waitTicket(t, c, m, "support-triage", doomed, 20*time.Second)
	waitTicket(t, c, m, gone, goneKey, 20*time.Second)
	doomedAgent := nsAgent(t, c, m, "support-triage", doomed)
	goneAgent := nsAgent(t, c, m, gone, goneKey)
	mAgent := nsAgent(t, c, m, "support-triage", key)
	if _, err := callTicket(mAgent, 1); err != nil {
		t.Fatalf("call on %s before the cut: %v", m.Name, err)
	}
	load := startTicketLoad(t, c, others, key)

	switch cut {
	case "nftables":
		c.Firewall(m)
	case "unplugged":
		c.Unplug(m)
	}
	cutAt := time.Now()
	healed := false
	heal := func() {
		if healed {
			return
		}
		healed = true
		if cut == "nftables" {
			c.Unfirewall(m)
		} else {
			c.Plug(m)
		}
	}
	t.Cleanup(heal)
	t.Logf("%s (%s) cut off with %s", m.Name, role, cut)
	// When the cut-off node starts answering 503 (watched from its side).
	refused := make(chan time.Time, 1)
	go func() {
		for time.Since(cutAt) < netMaxStale+30*time.Second {
			if c.Health(m) == http.StatusServiceUnavailable {
				refused <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(refused)
	}()
	// Right after the cut the node still serves its agents.
	if by, err := callTicket(mAgent, 2); err != nil || by != m.Name {
		t.Errorf("call on %s right after the cut: served by %q, %v; want served by %s from its last state", m.Name, by, err, m.Name)
	}

	// The majority acknowledges writes (tried from the moment of the cut)
	// and has a leader of its own.
	var wroteAfter time.Duration
	for i := 0; ; i++ {
		code, body, err := c.Admin(others[i%2], nil, http.MethodPost, "/v1/apply", upstreamYAML("during-cut", "http://127.0.0.1:9/"+m.Name))
		if err == nil && code == http.StatusOK {
			wroteAfter = time.Since(cutAt)
			break
		}
		if time.Since(cutAt) > 30*time.Second {
			t.Fatalf("no write acknowledged through the majority 30s after the cut: %d %s %v\n%s", code, body, err, c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	newLeader := c.Leader(others, 30*time.Second)
	if newLeader == m {
		t.Fatalf("the majority %v names the cut-off %s as leader", nscluster.Names(others), m.Name)
	}
	id := strings.SplitN(strings.TrimPrefix(doomed, "pck_"), "_", 2)[0]
	c.CLI(newLeader, "agent", "key", "revoke", "triage-bot", id)
	c.CLI(newLeader, "delete", "agent", gone+"-bot")
	c.CLI(newLeader, "delete", "persona", gone)
	revokedAt := time.Now()

	// The minority: serves until --max-stale, then refuses with 503.
	var lastHonoured, refusedAt time.Time
	for refusedAt.IsZero() {
		select {
		case ts, ok := <-refused:
			if !ok {
				t.Fatalf("%s /healthz still %d %v after it was cut off (max-stale %v)\n%s", m.Name, c.Health(m), time.Since(cutAt), netMaxStale, nscluster.Tail(m.Proc.Logs()))
			}
			refusedAt = ts
			continue
		default:
		}
		for _, a := range []*harness.RawClient{doomedAgent, goneAgent} {
			if _, err := callTicket(a, 3); err == nil {
				lastHonoured = time.Now()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !lastHonoured.IsZero() && lastHonoured.Sub(cutAt) > netMaxStale+time.Second {
		t.Errorf("%s honoured the key revoked or the persona deleted by the majority %v after the cut (%v after the revocation); max-stale is %v",
			m.Name, lastHonoured.Sub(cutAt).Round(time.Millisecond), lastHonoured.Sub(revokedAt).Round(time.Millisecond), netMaxStale)
	}
	if _, err := callTicket(mAgent, 4); err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "max-stale") {
		t.Errorf("agent call on the stale %s: %v, want HTTP 503 naming --max-stale", m.Name, err)
	}
	if _, err := callTicket(doomedAgent, 5); err == nil {
		t.Errorf("the revoked key was honoured on the stale %s", m.Name)
	}
	if _, err := callTicket(goneAgent, 5); err == nil {
		t.Errorf("the deleted persona was served on the stale %s", m.Name)
	}
	st, err := c.Status(m)
	if err != nil {
		t.Errorf("status of the stale %s: %v", m.Name, err)
	} else if st.Serving || st.StaleSeconds <= netMaxStale.Seconds() {
		t.Errorf("status of the stale %s: serving %v, staleSeconds %v, want not serving and above %v", m.Name, st.Serving, st.StaleSeconds, netMaxStale.Seconds())
	}

	// Heal: it catches up by itself, its agent's session included.
	heal()
	healAt := time.Now()
	var servedAfter time.Duration
	for {
		by, err := callTicket(mAgent, 6)
		if err == nil && by == m.Name && c.Health(m) == http.StatusOK {
			servedAfter = time.Since(healAt)
			break
		}
		if time.Since(healAt) > 60*time.Second {
			t.Fatalf("%s 60s after the cut healed: healthz %d, call %v\n%s", m.Name, c.Health(m), err, c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	load.Stop()
	if err := func() error {
		if _, err := callTicket(doomedAgent, 7); err == nil || strings.Contains(err.Error(), "HTTP 503") {
			return fmt.Errorf("the revoked key on %s after it caught up: %v, want refused (not 503)", m.Name, err)
		}
		if _, err := callTicket(goneAgent, 7); err == nil || strings.Contains(err.Error(), "HTTP 503") {
			return fmt.Errorf("the deleted persona on %s after it caught up: %v, want refused (not 503)", m.Name, err)
		}
		v, code, err := nsUpstreamURL(c, m, nil, "during-cut")
		if err != nil || code != http.StatusOK || v != "http://127.0.0.1:9/"+m.Name {
			return fmt.Errorf("read through the healed %s of what the majority wrote during the cut: %q %d %v", m.Name, v, code, err)
		}
		return nil
	}(); err != nil {
		t.Error(err)
	}
	if back := c.Leader(c.Nodes, 30*time.Second); back == nil {
		t.Error("no agreed leader after the heal")
	}
	ok, failed := load.ok.Load(), load.failed.Load()
	if failed != 0 {
		t.Errorf("agents on the majority: %d of %d calls failed during the partition:\n%s", failed, ok+failed, load.Errors())
	}
	honoured := "never"
	if !lastHonoured.IsZero() {
		honoured = lastHonoured.Sub(cutAt).Round(time.Millisecond).String() + " after the cut"
	}
	t.Logf("FIGURE partition of the %s by %s: first write acknowledged through the majority after %v, its leader %s; minority refused after %v (max-stale %v), revoked key or deleted persona last honoured there %s; healed → serving in %v; majority agents %d/%d calls OK",
		role, cut, wroteAfter.Round(time.Millisecond), newLeader.Name, refusedAt.Sub(cutAt).Round(time.Millisecond), netMaxStale,
		honoured, servedAfter.Round(time.Millisecond), ok, ok+failed)
}

// nsTargets are c's nodes for linClient, each reached through a 3 s
// client beside it (from its own namespace).
func nsTargets(c *nscluster.Cluster) func() []linTarget {
	var out []linTarget
	for _, n := range c.Nodes {
		client := &http.Client{Timeout: 3 * time.Second, Transport: c.Transport(n.NS)}
		out = append(out, linTarget{
			name: n.Name,
			apply: func(yaml string) (int, string, error) {
				code, b, err := c.Admin(n, client, http.MethodPost, "/v1/apply", yaml)
				return code, string(b), err
			},
			read: func(name string) (string, int, error) { return nsUpstreamURL(c, n, client, name) },
			logs: func() string { return n.Proc.Logs() },
		})
	}
	return func() []linTarget { return out }
}

// nsUpstreamURL reads Upstream name's url through n (GET syncs with the
// leader).
func nsUpstreamURL(c *nscluster.Cluster, n *nscluster.Node, client *http.Client, name string) (string, int, error) {
	code, b, err := c.Admin(n, client, http.MethodGet, "/v1/upstreams/"+name, "")
	if err != nil || code != http.StatusOK {
		return "", code, err
	}
	var d struct {
		Spec struct {
			URL string `json:"url"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return "", code, fmt.Errorf("GET upstream %s: %s: %w", name, b, err)
	}
	return d.Spec.URL, code, nil
}

// nsAgent is an initialized raw MCP client of the helpdesk persona beside
// n (from n's namespace to n's gateway).
func nsAgent(t *testing.T, c *nscluster.Cluster, n *nscluster.Node, persona, key string) *harness.RawClient {
	t.Helper()
	a := harness.NewRawClient("https://"+n.IP+":"+nscluster.GatewayPort+"/p/"+persona+"/mcp", key, 1)
	a.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: c.Transport(n.NS)}
	if err := a.Initialize(); err != nil {
		t.Fatalf("initialize on %s: %v\n%s", n.Name, err, nscluster.Tail(n.Proc.Logs()))
	}
	return a
}

// callTicket calls get_ticket and returns the node that served it.
func callTicket(a *harness.RawClient, id int) (string, error) {
	r, err := a.CallTool("helpdesk_get_ticket", map[string]any{"id": id})
	if err != nil {
		return "", err
	}
	if r.Error != nil {
		return "", fmt.Errorf("tools/call: %d %s", r.Error.Code, r.Error.Message)
	}
	var res struct {
		IsError           bool             `json:"isError"`
		StructuredContent nscluster.Ticket `json:"structuredContent"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return "", fmt.Errorf("tools/call result %s: %w", r.Result, err)
	}
	if res.IsError || res.StructuredContent.ID != id {
		return "", fmt.Errorf("tools/call result %s", r.Result)
	}
	return res.StructuredContent.ServedBy, nil
}

// waitTicket waits until key works on n (it reaches a node through raft).
func waitTicket(t *testing.T, c *nscluster.Cluster, n *nscluster.Node, persona, key string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		a := harness.NewRawClient("https://"+n.IP+":"+nscluster.GatewayPort+"/p/"+persona+"/mcp", key, 1)
		a.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: c.Transport(n.NS)}
		err := a.Initialize()
		if err == nil {
			_, err = callTicket(a, 0)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key does not work on %s after %v: %v", n.Name, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ticketLoad is one agent beside each node calling get_ticket in a loop.
type ticketLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
	once       sync.Once
}

func startTicketLoad(t *testing.T, c *nscluster.Cluster, nodes []*nscluster.Node, key string) *ticketLoad {
	l := &ticketLoad{stop: make(chan struct{})}
	for _, n := range nodes {
		a := nsAgent(t, c, n, "support-triage", key)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if by, err := callTicket(a, i); err != nil || by != n.Name {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("%s %s: served by %q: %v", time.Now().Format("15:04:05.000"), n.Name, by, err))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the callers and waits for them (idempotent).
func (l *ticketLoad) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *ticketLoad) Errors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errs, "\n")
}
