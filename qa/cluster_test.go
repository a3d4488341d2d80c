package qa

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

var ruleRounds = flag.Int("cluster.rule-rounds", 6, "rounds of TestNetworkRuleOnEveryNode (each flips one persona's network rule)")

// startThree starts a dev-mode cluster of three nodes on loopback
// (harness.Cluster: n1 bootstraps, n2 and n3 join with tokens of their
// own; n1's admin token works on every node). extra, when given, adds flags
// per node (0, 1, 2).
func startThree(t *testing.T, extra ...func(i int) []string) *harness.Cluster {
	t.Helper()
	t0 := time.Now()
	defer func() { t.Logf("three-node cluster up in %v", time.Since(t0).Round(time.Millisecond)) }()
	more := func(i int) []string {
		if len(extra) == 0 {
			return nil
		}
		return extra[0](i)
	}
	c := harness.StartCluster(t, 1, more(0)...)
	c.Join("n2", more(1)...)
	c.Join("n3", more(2)...)
	c.WaitFormed(60 * time.Second)
	return c
}

// A persona's network rule committed through one node is enforced by every
// node's gateway (userspace rules; each node also loads them into its own
// XDP maps when it has an interface attached). It prints commit → enforced
// on every node, p50 and max over the rounds.
func TestNetworkRuleOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := startThree(t)
	nodes := c.Nodes
	persona := func(allow string) string {
		return fmt.Sprintf("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: netp}\nspec: {skills: [], network: {allowCIDRs: [%s]}}\n", allow)
	}
	nodes[0].Apply(persona("127.0.0.0/8"))
	status := func(n *harness.Node) int {
		req, _ := http.NewRequest(http.MethodPost, n.GatewayURL()+"/p/netp/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	var lat [3][]time.Duration
	for round := range *ruleRounds {
		deny := round%2 == 0 // deny loopback, then admit it again
		allow, want := "127.0.0.0/8", http.StatusUnauthorized
		if deny {
			allow, want = "10.0.0.0/8", http.StatusForbidden
		}
		via := nodes[round%3]
		start := time.Now()
		via.Apply(persona(allow))
		committed := time.Since(start)
		for i, n := range nodes {
			for status(n) != want {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("round %d: node %d does not enforce the rule committed through node %d (status %d, want %d)", round, i+1, round%3+1, status(n), want)
				}
				time.Sleep(time.Millisecond)
			}
			lat[i] = append(lat[i], time.Since(start)-committed)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nnetwork rule: acknowledged commit → enforced by the node's gateway, %d rounds (writes through each node in turn)\n", *ruleRounds)
	for i, l := range lat {
		slices.Sort(l)
		fmt.Fprintf(&b, "node %d: p50 %v, max %v\n", i+1, l[len(l)/2].Round(time.Microsecond), l[len(l)-1].Round(time.Microsecond))
	}
	t.Log(b.String())
}

// A rolling restart of all three nodes, one at a time (the leader hands
// over leadership first), under steady agent calls and admin writes: a call
// that meets a node going down is retried once on the next node, with the
// same session, and succeeds; no write is lost; every node ends healthy.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	h := startHelpdesk(t)
	c := startThree(t)
	nodes := c.Nodes
	nodes[0].Apply(strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", h.url))
	key := nodes[1].NewKey("triage-bot")
	time.Sleep(200 * time.Millisecond) // the key replicates to every node
	endpoint := func(i int) string { return nodes[i%3].GatewayURL() + "/p/support-triage/mcp" }
	agent := harness.NewRawClient(endpoint(0), key, 1)
	if err := agent.Initialize(); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	type tally struct{ ok, retried, failed int }
	var calls, writes tally
	var errMu sync.Mutex
	var firstErr []string
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		firstErr = append(firstErr, fmt.Sprintf(format, args...))
	}
	done := make(chan struct{}, 2)
	go func() { // the agent: one node at a time, the next when it fails
		defer func() { done <- struct{}{} }()
		at := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r, err := agent.CallTool("helpdesk_get_ticket", map[string]any{"project": "SUPPORT", "id": 7})
			if err != nil || r.Error != nil {
				at++
				agent.URL = endpoint(at)
				calls.retried++
				r, err = agent.CallTool("helpdesk_get_ticket", map[string]any{"project": "SUPPORT", "id": 7})
			}
			if err != nil || r.Error != nil || !strings.Contains(string(r.Result), "SUPPORT-7") {
				calls.failed++
				fail("call via %s: %v %+v", agent.URL, err, r)
				continue
			}
			calls.ok++
		}
	}()
	last := 0
	go func() { // the admin: writes through the nodes in turn
		defer func() { done <- struct{}{} }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			doc := fmt.Sprintf("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: rolling}\nspec: {url: \"http://127.0.0.1:9/v%d/mcp\"}\n", i)
			f := filepath.Join(t.TempDir(), "w.yaml")
			os.WriteFile(f, []byte(doc), 0o600)
			var err error
			for try := range 3 { // the node asked may be the one restarting
				if _, _, err = nodes[(i+try)%3].CLI("apply", "-f", f, "--timeout", "15s"); err == nil {
					break
				}
			}
			if err != nil {
				writes.failed++
				fail("write %d: %v", i, err)
				continue
			}
			writes.ok++
			last = i
		}
	}()

	leader := func() string {
		var st struct {
			Leader string `json:"leader"`
		}
		json.Unmarshal([]byte(nodes[0].MustCLI("cluster", "status", "-o", "json")), &st)
		return st.Leader
	}
	for i, n := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		if leader() == id {
			nodes[(i+1)%3].MustCLI("cluster", "transfer-leader")
		}
		n.Stop()
		time.Sleep(300 * time.Millisecond) // traffic meets the gap
		n.Start()
		c.WaitFormed(60 * time.Second)
	}
	close(stop)
	<-done
	<-done
	t.Logf("rolling restart: agent calls ok %d (retried on another node %d), failed %d; admin writes ok %d, failed %d", calls.ok, calls.retried, calls.failed, writes.ok, writes.failed)
	if calls.failed > 0 || writes.failed > 0 || calls.ok == 0 || writes.ok == 0 {
		t.Fatalf("during the rolling restart: %v", firstErr)
	}
	for i, n := range nodes {
		out := n.MustCLI("get", "upstream", "rolling", "-o", "json")
		if !strings.Contains(out, fmt.Sprintf("/v%d/mcp", last)) {
			t.Fatalf("node %d lost the last acknowledged write v%d: %s", i+1, last, out)
		}
	}
}

// A global network rule committed through any node is loaded into every
// node's XDP maps: each node of a three-node cluster attaches its XDP
// program to a veth of its own (root, a kernel with XDP), and the test
// prints commit → in the kernel on every node (the node's
// portcullis_netpolicy_state_index reaching the commit's index with
// portcullis_netpolicy_nic_enforced 1). Packet-level drops by those maps are
// proven in qa/xdp.
func TestNetworkRuleInEveryNodesKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach XDP")
	}
	var ifaces []string
	for i := range 3 {
		a, b := fmt.Sprintf("pcq%d%da", os.Getpid()%1000, i), fmt.Sprintf("pcq%d%db", os.Getpid()%1000, i)
		if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", b).CombinedOutput(); err != nil {
			t.Skipf("cannot make a veth pair: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "link", "del", a).Run() })
		for _, l := range []string{a, b} {
			if out, err := exec.Command("ip", "link", "set", l, "up").CombinedOutput(); err != nil {
				t.Fatalf("ip link set %s up: %v %s", l, err, out)
			}
		}
		ifaces = append(ifaces, a)
	}
	nodes := startThree(t, func(i int) []string {
		return []string{"--xdp-iface", ifaces[i], "--xdp-mode", "generic", "--xdp-fail", "closed"}
	}).Nodes
	tok, _ := os.ReadFile(nodes[0].TokenFile)
	get := func(n *harness.Node, path string) []byte {
		req, _ := http.NewRequest(http.MethodGet, n.AdminURL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return b
	}
	metric := func(n *harness.Node, name string) float64 {
		b := get(n, "/metrics")
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var f float64
				fmt.Sscan(v, &f)
				return f
			}
		}
		return -1
	}
	rounds := *ruleRounds
	var lat [3][]time.Duration
	for round := range rounds {
		via := nodes[round%3]
		start := time.Now()
		via.Apply(fmt.Sprintf("apiVersion: portcullis/v1\nkind: NetworkPolicy\nmetadata: {name: edge}\nspec: {denyCIDRs: [198.51.%d.0/24]}\n", round))
		committed := time.Since(start)
		var st struct {
			StateIndex float64 `json:"stateIndex"`
		}
		json.Unmarshal(get(via, "/v1/status"), &st)
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		for i, n := range nodes { // each node watched on its own
			wg.Add(1)
			go func() {
				defer wg.Done()
				for metric(n, "portcullis_netpolicy_state_index") < st.StateIndex || metric(n, "portcullis_netpolicy_nic_enforced") != 1 {
					if time.Since(start) > 10*time.Second {
						errs[i] = fmt.Errorf("round %d: node %d has not loaded state %v into its kernel (index %v, at NIC %v)", round, i+1, st.StateIndex, metric(n, "portcullis_netpolicy_state_index"), metric(n, "portcullis_netpolicy_nic_enforced"))
						return
					}
					time.Sleep(time.Millisecond)
				}
				lat[i] = append(lat[i], time.Since(start)-committed)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nglobal network rule: acknowledged commit → in the node's XDP maps, %d rounds (writes through each node in turn)\n", rounds)
	for i, l := range lat {
		slices.Sort(l)
		fmt.Fprintf(&b, "node %d: p50 %v, max %v\n", i+1, l[len(l)/2].Round(time.Microsecond), l[len(l)-1].Round(time.Microsecond))
	}
	t.Log(b.String())
}
