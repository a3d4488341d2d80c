package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a set of nodes that joined the first one, each a separate
// process of the real binary on its own loopback ports.
type Cluster struct {
	Nodes []*Node
	// TokenFile is the first node's admin token, which works on every node.
	TokenFile string
	t         testing.TB
}

// MemberStatus is one member in `portcullis cluster status -o json`.
type MemberStatus struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raftAddr"`
	State        string `json:"state"`
	Voter        bool   `json:"voter"`
	Healthy      bool   `json:"healthy"`
	LastIndex    uint64 `json:"lastIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Lag          uint64 `json:"lag"`
	Error        string `json:"error"`
}

// ClusterStatus is `portcullis cluster status -o json` (and GET /v1/cluster).
type ClusterStatus struct {
	Leader          string         `json:"leader"`
	Term            uint64         `json:"term"`
	Members         []MemberStatus `json:"members"`
	Self            string         `json:"self"`
	StaleSeconds    float64        `json:"staleSeconds"`
	MaxStaleSeconds float64        `json:"maxStaleSeconds"`
	Serving         bool           `json:"serving"`
}

// Member returns the member with id, or nil.
func (s ClusterStatus) Member(id string) *MemberStatus {
	for i := range s.Members {
		if s.Members[i].ID == id {
			return &s.Members[i]
		}
	}
	return nil
}

// StartCluster starts n nodes (ids n1..nN): n1 bootstraps, every other one
// joins it with a join token of its own. extra flags go to every node. It
// returns once every node is a healthy voter that has caught up.
func StartCluster(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	first := StartNode(t, append([]string{"--node-id", "n1"}, extra...)...)
	c := &Cluster{Nodes: []*Node{first}, TokenFile: first.TokenFile, t: t}
	for i := 2; i <= n; i++ {
		c.Join(fmt.Sprintf("n%d", i), extra...)
	}
	c.WaitFormed(60 * time.Second)
	return c
}

// JoinToken creates a join token through node via (the CLI, as a user
// would) and returns the path of a file holding it.
func (c *Cluster) JoinToken(via *Node, args ...string) string {
	c.t.Helper()
	tok := strings.TrimSpace(via.MustCLI(append([]string{"cluster", "join-token", "create"}, args...)...))
	if !strings.HasPrefix(tok, "pcj1.") || strings.ContainsAny(tok, " \n") {
		c.t.Fatalf("join-token create printed %q, want one pcj1. token", tok)
	}
	f := filepath.Join(c.t.TempDir(), "join-token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// Join starts a new node with id that joins the cluster through the first
// node, with a fresh token, and waits until it is healthy.
func (c *Cluster) Join(id string, extra ...string) *Node {
	c.t.Helper()
	via := c.Nodes[0]
	tok := c.JoinToken(via)
	n := NewNode(c.t, append([]string{"--node-id", id, "--join", via.AdminURL(), "--join-token-file", tok}, extra...)...)
	n.TokenFile = c.TokenFile
	if err := n.StartErr(60 * time.Second); err != nil {
		c.t.Fatalf("join %s: %v", id, err)
	}
	c.Nodes = append(c.Nodes, n)
	return n
}

// NewNode prepares a dev-mode node in a fresh data dir with free ports,
// without starting it. It is stopped when the test ends.
func NewNode(t testing.TB, extra ...string) *Node {
	t.Helper()
	n := &Node{Bin: Binary(t), DataDir: t.TempDir(), GatewayAddr: FreeAddr(t), AdminAddr: FreeAddr(t), RaftAddr: FreeAddr(t), Args: extra, t: t}
	n.TokenFile = filepath.Join(n.DataDir, "admin-token")
	t.Cleanup(n.Stop)
	return n
}

// Node returns the node with id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

// WaitFormed waits until every running node reports the same leader, every
// member (running or not) is a voter, and every running member is healthy
// with lag 0.
func (c *Cluster) WaitFormed(timeout time.Duration) ClusterStatus {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		st, err := c.formed()
		if err == nil {
			return st
		}
		last = err.Error()
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not formed after %v: %s\n%s", timeout, last, c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) formed() (ClusterStatus, error) {
	var first ClusterStatus
	running := 0
	for _, n := range c.Live() {
		running++
		st, err := n.Status()
		if err != nil {
			return st, err
		}
		if st.Leader == "" {
			return st, fmt.Errorf("%s: no leader", n.ID())
		}
		if first.Leader == "" {
			first = st
		} else if st.Leader != first.Leader {
			return st, fmt.Errorf("%s names leader %s, another node %s", n.ID(), st.Leader, first.Leader)
		}
		if len(st.Members) != len(c.Nodes) {
			return st, fmt.Errorf("%s: %d members, want %d", n.ID(), len(st.Members), len(c.Nodes))
		}
		if !st.Serving {
			return st, fmt.Errorf("%s: not serving", n.ID())
		}
	}
	for _, n := range c.Nodes {
		m := first.Member(n.ID())
		switch {
		case m == nil:
			return first, fmt.Errorf("%s is not a member", n.ID())
		case !m.Voter:
			return first, fmt.Errorf("%s is not a voter", n.ID())
		case n.Running() && !n.Paused() && (!m.Healthy || m.Lag != 0):
			return first, fmt.Errorf("%s: healthy %v, lag %d (%s)", n.ID(), m.Healthy, m.Lag, m.Error)
		}
	}
	if running == 0 {
		return first, fmt.Errorf("no node runs")
	}
	return first, nil
}

// Leader returns the running node every running node names as leader,
// waiting up to timeout for one.
func (c *Cluster) Leader(timeout time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if n := c.agreedLeader(); n != nil {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no agreed leader after %v\n%s", timeout, c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) agreedLeader() *Node {
	leader := ""
	for _, n := range c.Live() {
		st, err := n.Status()
		if err != nil || st.Leader == "" || (leader != "" && st.Leader != leader) {
			return nil
		}
		leader = st.Leader
	}
	if l := c.Node(leader); l != nil && l.Running() {
		return l
	}
	return nil
}

// Live returns the nodes whose process runs and is not paused.
func (c *Cluster) Live() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() && !n.Paused() {
			out = append(out, n)
		}
	}
	return out
}

// Logs returns every node's output, labelled.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "===== %s =====\n%s\n", n.ID(), tail(n.Logs(), 60))
	}
	return b.String()
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// ID is the node's --node-id ("" when it has none).
func (n *Node) ID() string {
	for i, a := range n.Args {
		if a == "--node-id" && i+1 < len(n.Args) {
			return n.Args[i+1]
		}
	}
	return ""
}

// Running reports whether the node's process exists (it may be stopped).
func (n *Node) Running() bool {
	cmd, done := n.proc()
	if cmd == nil || done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the node's process.
func (n *Node) Signal(sig os.Signal) error { cmd, _ := n.proc(); return cmd.Process.Signal(sig) }

// Paused reports whether the node is paused (SIGSTOP).
func (n *Node) Paused() bool { return n.paused.Load() }

// Pause stops the process with SIGSTOP, as a hung machine or a partition
// would: it holds its ports but answers nothing.
func (n *Node) Pause() {
	n.t.Helper()
	if err := n.Signal(syscall.SIGSTOP); err != nil {
		n.t.Fatalf("SIGSTOP %s: %v", n.ID(), err)
	}
	n.paused.Store(true)
}

// Resume continues a paused process (SIGCONT).
func (n *Node) Resume() {
	n.t.Helper()
	if err := n.Signal(syscall.SIGCONT); err != nil {
		n.t.Fatalf("SIGCONT %s: %v", n.ID(), err)
	}
	n.paused.Store(false)
}

// Launch starts the node process with the same data dir and addresses
// and returns at once.
func (n *Node) Launch() error {
	args := []string{"server", "--dev", "--data-dir", n.DataDir, "--gateway-addr", n.GatewayAddr, "--admin-addr", n.AdminAddr}
	if n.RaftAddr != "" && !slices.Contains(n.Args, "--raft-addr") {
		args = append(args, "--raft-addr", n.RaftAddr)
	}
	cmd := exec.Command(n.Bin, append(args, n.Args...)...)
	n.mu.Lock()
	if n.logs == nil {
		n.logs = &syncBuffer{}
	}
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	n.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	n.paused.Store(false)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return nil
}

// StartErr starts the node process and waits until both listeners answer
// /healthz with 200; it returns an error with the node's output if it
// exited or did not become healthy within timeout (then it is killed).
func (n *Node) StartErr(timeout time.Duration) error {
	if err := n.Launch(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	client := http.Client{Timeout: 2 * time.Second}
	for _, u := range []string{n.GatewayURL(), n.AdminURL()} {
		for {
			if resp, err := client.Get(u + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case <-n.doneCh():
				return fmt.Errorf("node exited during start:\n%s", n.Logs())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				n.Kill()
				return fmt.Errorf("node not healthy at %s after %v:\n%s", u, timeout, n.Logs())
			}
		}
	}
	return nil
}

// Exited waits up to timeout for the process to end by itself and reports
// whether it did.
func (n *Node) Exited(timeout time.Duration) bool {
	if !n.Running() {
		return true
	}
	select {
	case <-n.doneCh():
		return true
	case <-time.After(timeout):
		return false
	}
}

// adminToken reads the node's admin token file.
func (n *Node) adminToken() (string, error) {
	b, err := os.ReadFile(n.TokenFile)
	return strings.TrimSpace(string(b)), err
}

var adminHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// AdminDo sends one admin API request with the node's admin token and
// returns the status and body. body may be nil; a string body is sent as
// application/yaml.
func (n *Node) AdminDo(method, path, body string) (int, []byte, error) {
	return n.AdminDoClient(adminHTTP, method, path, body)
}

// AdminDoClient is AdminDo through client (for its own timeout).
func (n *Node) AdminDoClient(client *http.Client, method, path, body string) (int, []byte, error) {
	tok, err := n.adminToken()
	if err != nil {
		return 0, nil, err
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.AdminURL()+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// Status is GET /v1/cluster on the node's admin API.
func (n *Node) Status() (ClusterStatus, error) {
	var st ClusterStatus
	code, b, err := n.AdminDo(http.MethodGet, "/v1/cluster", "")
	if err != nil {
		return st, fmt.Errorf("%s: %w", n.ID(), err)
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: GET /v1/cluster: HTTP %d: %s", n.ID(), code, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: GET /v1/cluster: %w", n.ID(), err)
	}
	return st, nil
}

// StatusCLI is `portcullis cluster status -o json` against the node.
func (n *Node) StatusCLI() ClusterStatus {
	n.t.Helper()
	out := n.MustCLI("cluster", "status", "-o", "json")
	var st ClusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		n.t.Fatalf("cluster status -o json printed %q: %v", out, err)
	}
	return st
}

// Healthz returns the status code and body of the gateway's GET /healthz.
func (n *Node) Healthz() (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(n.GatewayURL() + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// proc returns the node's current process and its exit channel.
func (n *Node) proc() (*exec.Cmd, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd, n.done
}

func (n *Node) doneCh() chan struct{} { _, d := n.proc(); return d }
