package cluster

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// bearer adds an agent's API key to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// TestClusterForms is the first story: three nodes join, agree on
// one leader, take admin writes through any node with the first node's
// admin token, and serve an agent whose key was made on another node.
func TestClusterForms(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)

	// Every node, asked through the CLI, names the same leader and three
	// healthy voters.
	var leader string
	for _, n := range c.Nodes {
		st := n.StatusCLI()
		if st.Self != n.ID() {
			t.Errorf("cluster status on %s says self %q", n.ID(), st.Self)
		}
		if leader == "" {
			leader = st.Leader
		}
		if st.Leader == "" || st.Leader != leader {
			t.Errorf("cluster status on %s: leader %q, another node said %q", n.ID(), st.Leader, leader)
		}
		if len(st.Members) != 3 {
			t.Fatalf("cluster status on %s: %d members, want 3: %+v", n.ID(), len(st.Members), st.Members)
		}
		leaders := 0
		for _, m := range st.Members {
			if !m.Voter || !m.Healthy {
				t.Errorf("cluster status on %s: member %+v, want a healthy voter", n.ID(), m)
			}
			if m.State == "leader" {
				leaders++
			}
		}
		if leaders != 1 {
			t.Errorf("cluster status on %s: %d members in state leader, want 1: %+v", n.ID(), leaders, st.Members)
		}
		if !st.Serving || st.MaxStaleSeconds != 30 {
			t.Errorf("cluster status on %s: serving %v, maxStaleSeconds %v; want true, 30 (the default)", n.ID(), st.Serving, st.MaxStaleSeconds)
		}
		if code, body := n.Healthz(); code != http.StatusOK {
			t.Errorf("GET /healthz on %s: %d %s", n.ID(), code, body)
		}
	}

	// Admin writes through each node, each building on the one made
	// through the previous node, with the first node's admin token. (The
	// next node is given time to apply the previous write: that it need
	// not wait is TestReadYourWritesAcrossNodes' subject.)
	docs := strings.Split(echoConfig(up, "echoer", "echo-bot"), "---\n")
	kinds := []string{"upstreams/echo", "skills/echo", "personas/echoer"}
	for i, d := range []string{docs[0], docs[1], docs[2] + "---\n" + docs[3]} {
		n := c.Nodes[i]
		if n.TokenFile != c.TokenFile {
			t.Fatalf("node %s uses token file %s, want the first node's", n.ID(), n.TokenFile)
		}
		out := n.Apply(d) // fails the test (with the CLI output) if refused
		if !strings.Contains(out, "created") {
			t.Fatalf("apply through %s printed %q", n.ID(), out)
		}
		for _, other := range c.Nodes {
			waitVisible(t, other, kinds[i])
		}
	}
	for _, n := range c.Nodes {
		if out := n.MustCLI("get", "personas"); !strings.Contains(out, "echoer") {
			t.Errorf("get personas on %s:\n%s", n.ID(), out)
		}
	}

	// A key made on node 2 works on nodes 1 and 3 (and 2), with a real
	// go-sdk client: initialize, tools/list, tools/call.
	key := c.Nodes[1].NewKey("echo-bot")
	// Agent calls never wait on the leader, so another node knows the
	// key once it has applied the write (milliseconds later).
	for _, n := range c.Nodes {
		waitAgentOK(t, n, "echoer", key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []*harness.Node{c.Nodes[0], c.Nodes[2], c.Nodes[1]} {
		client := mcp.NewClient(&mcp.Implementation{Name: "echo-bot", Version: "1"}, nil)
		s, err := client.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint:   endpoint(n, "echoer"),
			HTTPClient: &http.Client{Transport: bearer{key: key, base: http.DefaultTransport}},
			MaxRetries: -1,
		}, nil)
		if err != nil {
			t.Fatalf("connect to echoer on %s with a key made on n2: %v\n%s", n.ID(), err, n.Logs())
		}
		tools, err := s.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list on %s: %v", n.ID(), err)
		}
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		if !slices.Equal(names, []string{echoTool}) {
			t.Errorf("tools/list on %s: %v, want [%s]", n.ID(), names, echoTool)
		}
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: echoTool, Arguments: map[string]any{"text": "hi " + n.ID()}})
		if err != nil || res.IsError {
			t.Fatalf("tools/call on %s: %v %+v", n.ID(), err, res)
		}
		s.Close()
	}

	// A wrong admin token is refused on every node.
	for _, n := range c.Nodes {
		req, _ := http.NewRequest(http.MethodGet, n.AdminURL()+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer not-the-admin-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v1/cluster on %s with a wrong token: %d, want 401", n.ID(), res.StatusCode)
		}
	}
}

// TestReadYourWritesAcrossNodes: a write acknowledged by one node is the
// base of the next write made through another node at once, and a read
// through a third node sees it.
func TestReadYourWritesAcrossNodes(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 40 {
		a, b, r := c.Nodes[i%3], c.Nodes[(i+1)%3], c.Nodes[(i+2)%3]
		name := fmt.Sprintf("ryw-%d", i)
		if code, body, err := applyHTTP(a, client, upstreamYAML(name, up)); err != nil || code != http.StatusOK {
			t.Fatalf("apply upstream %s through %s: %d %s %v", name, a.ID(), code, body, err)
		}
		skill := fmt.Sprintf("apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: ryw-%d}\nspec:\n  tools: [{tool: %s/echo}]\n", i, name)
		if code, body, err := applyHTTP(b, client, skill); err != nil || code != http.StatusOK {
			t.Fatalf("round %d: upstream %s acknowledged by %s, then a skill using it applied through %s: %d %s %v", i, name, a.ID(), b.ID(), code, body, err)
		}
		if _, code, err := upstreamURL(r, client, name); err != nil || code != http.StatusOK {
			t.Fatalf("round %d: upstream %s acknowledged by %s, then GET through %s: %d %v", i, name, a.ID(), r.ID(), code, err)
		}
	}
}

// waitVisible waits until GET path answers 200 on n.
func waitVisible(t *testing.T, n *harness.Node, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b, err := n.AdminDo(http.MethodGet, "/v1/"+path, "")
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/%s on %s: %d %s %v", path, n.ID(), code, b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
