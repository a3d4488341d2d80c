package qa

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

var ruleRounds = flag.Int("cluster.rule-rounds", 6, "rounds of TestNetworkRuleOnEveryNode (each flips one persona's network rule)")

// startThree starts a dev-mode cluster of three nodes on loopback: node 1
// bootstraps, nodes 2 and 3 join it with their own join tokens. Node 1's
// admin token is the admin token of every node.
func startThree(t *testing.T) []*harness.Node {
	t.Helper()
	t0 := time.Now()
	defer func() { t.Logf("three-node cluster up in %v", time.Since(t0).Round(time.Millisecond)) }()
	n1 := harness.StartNode(t, "--node-id", "n1")
	nodes := []*harness.Node{n1}
	for _, id := range []string{"n2", "n3"} {
		tok := filepath.Join(t.TempDir(), "join-token")
		if err := os.WriteFile(tok, []byte(n1.MustCLI("cluster", "join-token", "create", "--ttl", "10m")), 0o600); err != nil {
			t.Fatal(err)
		}
		n := harness.StartNode(t, "--node-id", id, "--join", n1.AdminURL(), "--join-token-file", tok)
		n.TokenFile = n1.TokenFile
		nodes = append(nodes, n)
	}
	return nodes
}

// A persona's network rule committed through one node is enforced by every
// node's gateway (userspace rules; each node also loads them into its own
// XDP maps when it has an interface attached). It prints commit → enforced
// on every node, p50 and max over the rounds.
func TestNetworkRuleOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	nodes := startThree(t)
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
