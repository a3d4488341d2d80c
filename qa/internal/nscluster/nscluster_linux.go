//go:build linux

// Package nscluster runs real production Portcullis clusters for the qa
// suites, one node per network namespace: TLS listeners, a SoftHSM2 token
// per node, joins approved by the Security Officer ceremony, exactly as an
// operator runs them. The namespaces are joined by veth pairs to a bridge
// in a namespace of its own, so that a test can cut one node's network
// (nftables in its namespace, or its cable pulled at the bridge) while
// every process keeps running: a real partition, which loopback nodes
// sharing 127.0.0.1 cannot have.
//
// Each namespace also holds a real go-sdk MCP upstream ("helpdesk", tool
// get_ticket, on 127.0.0.1:9101 inside it) that says which node it runs
// beside. Clients reach a node from a namespace of the test's choosing:
// the bridge's (a client on the shared network) or the node's own (a
// client beside the node, on its side of any cut). Everything goes when
// the test ends. Linux, root, iproute2, nftables, softhsm2.
package nscluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/xdp/xdptest"
	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// Ports every node uses on its own address.
const (
	GatewayPort = "8443"
	AdminPort   = "9443"
	RaftPort    = "9444"
)

// Node is one namespace with a Portcullis node in it.
type Node struct {
	Name    string // n1..nN, also the node id
	NS      *xdptest.NS
	IP      string
	Dir     string
	HSMConf string
	Proc    *Proc
	// port is the node's veth end on the bridge (its cable).
	port string
}

// Proc is a process started in a namespace, its output in a file.
type Proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Kill ends the process with SIGKILL and waits for it (no-op if it ended).
func (p *Proc) Kill() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Logs is what the process has written so far.
func (p *Proc) Logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Cluster is the namespaces, the shared material and the nodes.
type Cluster struct {
	T      *testing.T
	Bin    string
	Bridge *xdptest.NS
	Nodes  []*Node
	// Subnet is the /24 prefix ("10.231.77."): the bridge is .1, node i
	// (0-based) is .11+i.
	Subnet string
	// Certs and Key are the listeners' self-signed certificate (for every
	// node address, 127.0.0.1 and Extra IPs) and its key.
	Certs, Key string
	Pin, SOPin string
	// Args are extra server flags for every node.
	Args []string
	id   string
}

// Config says what New builds.
type Config struct {
	// Prefix names the namespaces (prefix-ID-br, prefix-ID-n1, …); short.
	Prefix string
	// Subnet is the /24 prefix, e.g. "10.231.77.", unique per package.
	Subnet string
	Nodes  int
	// ExtraIPs are more addresses the certificate names (a VIP).
	ExtraIPs []string
	// Args are extra server flags for every node.
	Args []string
}

// Prereqs skips the test unless it can make namespaces and has the tools.
func Prereqs(t *testing.T, tools ...string) {
	t.Helper()
	if err := xdptest.Prereqs(); err != nil {
		t.Skip(err)
	}
	for _, b := range append([]string{"nft", "softhsm2-util"}, tools...) {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed (.ci/deps installs it)", b)
		}
	}
}

// New makes the network (the bridge namespace with br0 at Subnet.1, one
// namespace per node with eth0 at Subnet.11, .12, …, an upstream in each),
// the certificate, PINs and one SoftHSM2 token per node. No node runs yet.
func New(t *testing.T, cfg Config) *Cluster {
	c := &Cluster{T: t, Bin: harness.Binary(t), Subnet: cfg.Subnet, Args: cfg.Args,
		id: strconv.Itoa(os.Getpid()%100000) + strconv.Itoa(int(time.Now().UnixNano()%1000))}
	c.Bridge = &xdptest.NS{Name: cfg.Prefix + c.id + "-br"}
	mustRun(t, "ip", "netns", "add", c.Bridge.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", c.Bridge.Name).Run() })
	mustRun(t, "ip", "-n", c.Bridge.Name, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", c.Bridge.Name, "link", "add", "br0", "type", "bridge")
	mustRun(t, "ip", "-n", c.Bridge.Name, "addr", "add", c.Subnet+"1/24", "dev", "br0")
	mustRun(t, "ip", "-n", c.Bridge.Name, "link", "set", "br0", "up")
	for i := 0; i < cfg.Nodes; i++ {
		n := &Node{Name: fmt.Sprintf("n%d", i+1), IP: fmt.Sprintf("%s%d", c.Subnet, 11+i), Dir: t.TempDir()}
		n.NS = &xdptest.NS{Name: cfg.Prefix + c.id + "-" + n.Name}
		mustRun(t, "ip", "netns", "add", n.NS.Name)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.NS.Name).Run() })
		n.port = "v" + n.Name
		mustRun(t, "ip", "-n", c.Bridge.Name, "link", "add", n.port, "type", "veth", "peer", "name", "eth0", "netns", n.NS.Name)
		mustRun(t, "ip", "-n", c.Bridge.Name, "link", "set", n.port, "master", "br0", "up")
		mustRun(t, "ip", "-n", n.NS.Name, "link", "set", "lo", "up")
		mustRun(t, "ip", "-n", n.NS.Name, "addr", "add", n.IP+"/24", "dev", "eth0")
		mustRun(t, "ip", "-n", n.NS.Name, "link", "set", "eth0", "up")
		c.Nodes = append(c.Nodes, n)
		c.startUpstream(n)
	}
	c.material(cfg.ExtraIPs)
	return c
}

// Transport dials from ns and trusts the test's certificate; no
// keep-alive, so every request opens a new connection from ns. A dial
// gets 2 s (a loaded machine can stall a local one for a moment); callers
// that probe bound the whole request with their client's timeout.
func (c *Cluster) Transport(ns *xdptest.NS) *http.Transport {
	return &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := ns.Do(func() error {
				var err error
				conn, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
		TLSClientConfig: &tls.Config{RootCAs: c.pool(), MinVersion: tls.VersionTLS12},
	}
}

func (c *Cluster) pool() *x509.CertPool {
	b, err := os.ReadFile(c.Certs)
	if err != nil {
		c.T.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// material writes the listeners' certificate, the HSM PINs and one
// SoftHSM2 token per node.
func (c *Cluster) material(extra []string) {
	t := c.T
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portcullis netns test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	for _, ip := range extra {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	for _, n := range c.Nodes {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(n.IP))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c.Certs, c.Key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c.Pin, c.SOPin = filepath.Join(dir, "pin"), filepath.Join(dir, "so-pin")
	Write(t, c.Certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	Write(t, c.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	pin, so := strconv.Itoa(100000+int(time.Now().UnixNano()%800000)), strconv.Itoa(100000+int(time.Now().UnixNano()/7%800000))
	Write(t, c.Pin, []byte(pin+"\n"))
	Write(t, c.SOPin, []byte(so+"\n"))
	for _, n := range c.Nodes {
		tokens := filepath.Join(n.Dir, "hsm")
		if err := os.Mkdir(tokens, 0o700); err != nil {
			t.Fatal(err)
		}
		n.HSMConf = filepath.Join(n.Dir, "softhsm2.conf")
		Write(t, n.HSMConf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\n"))
		cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "pcns", "--pin", pin, "--so-pin", so)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+n.HSMConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("softhsm2-util: %v\n%s", err, out)
		}
	}
}

// Start runs args in n's namespace with env added, output to logName in
// n's directory; the process is killed when the test ends.
func (c *Cluster) Start(n *Node, logName string, env []string, args ...string) *Proc {
	t := c.T
	logf := filepath.Join(n.Dir, logName)
	f, err := os.OpenFile(logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS.Name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s in %s: %v", args[0], n.Name, err)
	}
	p := &Proc{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.Kill) // before the namespaces go (cleanups run last-in first)
	return p
}

// StartNode starts (or restarts) n's node in production mode: TLS
// listeners (the gateway on every address of the namespace), its own
// SoftHSM2 token. join, if set, is the admin URL to join through.
func (c *Cluster) StartNode(n *Node, join string) {
	args := []string{c.Bin, "server", "--data-dir", filepath.Join(n.Dir, "data"), "--node-id", n.Name,
		"--tls-cert", c.Certs, "--tls-key", c.Key,
		"--gateway-addr", "0.0.0.0:" + GatewayPort, "--admin-addr", n.IP + ":" + AdminPort, "--raft-addr", n.IP + ":" + RaftPort,
		"--hsm-token", "pcns", "--hsm-pin-file", c.Pin}
	args = append(args, c.Args...)
	if join != "" {
		tok := filepath.Join(n.Dir, "join-token")
		Write(c.T, tok, []byte(c.CLI(c.Nodes[0], "cluster", "join-token", "create", "--ttl", "10m")))
		args = append(args, "--join", join, "--join-token-file", tok)
	}
	// SSL_CERT_FILE: the joining node verifies the first node's admin
	// listener, whose certificate is the test's own.
	n.Proc = c.Start(n, "node.log", []string{"SOFTHSM2_CONF=" + n.HSMConf, "SSL_CERT_FILE=" + c.Certs}, args...)
}

// Form starts the first node, joins every other one through it and waits
// until each serves.
func (c *Cluster) Form() {
	c.StartNode(c.Nodes[0], "")
	c.WaitServing(c.Nodes[0], 30*time.Second)
	for _, n := range c.Nodes[1:] {
		c.Join(n)
	}
}

var pendingRE = regexp.MustCompile(`waits for the Security Officer.*node=(\S+) fingerprint=([0-9a-f]+) pub=("(?:[^"\\]|\\.)*")`)

// Join starts n with --join through the first node and approves its HSM
// wrapping key there as the Security Officer, then waits until n serves.
func (c *Cluster) Join(n *Node) {
	t := c.T
	first := c.Nodes[0]
	c.StartNode(n, "https://"+first.IP+":"+AdminPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var m []string
		for _, mm := range pendingRE.FindAllStringSubmatch(first.Proc.Logs(), -1) {
			if mm[1] == n.Name {
				m = mm
			}
		}
		if m != nil {
			pub, err := strconv.Unquote(m[3])
			if err != nil {
				t.Fatalf("wrapping key in the log: %v", err)
			}
			cmd := exec.Command(c.Bin, "secret", "trust-join-key", "--token-label", "pcns", "--so-pin-file", c.SOPin, "--pub", "-", "--fingerprint", m[2])
			cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+first.HSMConf)
			cmd.Stdin = strings.NewReader(pub)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("trust-join-key for %s: %v\n%s", n.Name, err, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not ask to join:\n%s\n%s", n.Name, Tail(n.Proc.Logs()), Tail(first.Proc.Logs()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.WaitServing(n, 30*time.Second)
}

// WaitServing waits until n's /healthz answers 200 (asked from n's own
// namespace, so it works across a cut).
func (c *Cluster) WaitServing(n *Node, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for c.Health(n) != http.StatusOK {
		if time.Now().After(deadline) {
			c.T.Fatalf("%s does not serve after %v:\n%s", n.Name, limit, Tail(n.Proc.Logs()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TokenFile is the admin token (the first node's; it works on every node).
func (c *Cluster) TokenFile() string { return filepath.Join(c.Nodes[0].Dir, "data", "admin-token") }

// CLI runs the CLI against n's admin API from n's namespace and returns
// its trimmed stdout; it fails the test on error.
func (c *Cluster) CLI(n *Node, args ...string) string {
	c.T.Helper()
	out, err := c.CLIErr(n, args...)
	if err != nil {
		c.T.Fatal(err)
	}
	return out
}

// CLIErr is CLI returning the error (with stderr) instead of failing.
func (c *Cluster) CLIErr(n *Node, args ...string) (string, error) {
	args = append(args, "--server", "https://"+n.IP+":"+AdminPort, "--token-file", c.TokenFile(), "--ca-file", c.Certs)
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS.Name, c.Bin}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("portcullis %s on %s: %v\n%s", strings.Join(args, " "), n.Name, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// Admin sends one admin API request to n from n's namespace with the admin
// token, through client (nil: a 10 s client from n's namespace). A string
// body is sent as application/yaml.
func (c *Cluster) Admin(n *Node, client *http.Client, method, path, body string) (int, []byte, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second, Transport: c.Transport(n.NS)}
	}
	tok, err := os.ReadFile(c.TokenFile())
	if err != nil {
		return 0, nil, err
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+n.IP+":"+AdminPort+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
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

// Status is GET /v1/cluster on n (from n's namespace).
func (c *Cluster) Status(n *Node) (harness.ClusterStatus, error) {
	var st harness.ClusterStatus
	code, b, err := c.Admin(n, nil, http.MethodGet, "/v1/cluster", "")
	if err != nil {
		return st, fmt.Errorf("%s: %w", n.Name, err)
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: GET /v1/cluster: HTTP %d: %s", n.Name, code, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: GET /v1/cluster: %w", n.Name, err)
	}
	return st, nil
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Leader waits until every node of among names the same leader and
// returns it.
func (c *Cluster) Leader(among []*Node, limit time.Duration) *Node {
	c.T.Helper()
	deadline := time.Now().Add(limit)
	for {
		leader := ""
		agreed := true
		for _, n := range among {
			st, err := c.Status(n)
			if err != nil || st.Leader == "" || (leader != "" && st.Leader != leader) {
				agreed = false
				break
			}
			leader = st.Leader
		}
		if l := c.Node(leader); agreed && l != nil {
			return l
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("no agreed leader among %v after %v\n%s", Names(among), limit, c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs is the tail of every node's log, labelled.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "===== %s =====\n%s\n", n.Name, Tail(n.Proc.Logs()))
	}
	return b.String()
}

// Health is the status of n's gateway GET /healthz asked from n's own
// namespace, 0 when there is no answer.
func (c *Cluster) Health(n *Node) int { return c.HealthAt(n.NS, n.IP) }

// HealthAt is the status of GET https://ip:8443/healthz from ns.
func (c *Cluster) HealthAt(ns *xdptest.NS, ip string) int {
	client := &http.Client{Timeout: 400 * time.Millisecond, Transport: c.Transport(ns)}
	resp, err := client.Get("https://" + ip + ":" + GatewayPort + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// HelpdeskYAML declares the helpdesk upstream every namespace runs, a
// persona that may read tickets and its agent.
const HelpdeskYAML = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "http://127.0.0.1:9101/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec:
  description: Read support tickets
  tools: [{tool: helpdesk/get_ticket}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support-triage}
spec: {description: Triages support tickets, skills: [read-tickets]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: triage-bot}
spec: {persona: support-triage}
`

// AgentKey applies HelpdeskYAML through the first node and returns a new
// key of its agent, which every node honours once replicated.
func (c *Cluster) AgentKey() string {
	f := filepath.Join(c.T.TempDir(), "persona.yaml")
	Write(c.T, f, []byte(HelpdeskYAML))
	c.CLI(c.Nodes[0], "apply", "-f", f)
	return c.CLI(c.Nodes[0], "agent", "key", "create", "triage-bot")
}

// Ticket is get_ticket's result.
type Ticket struct {
	ID       int    `json:"id"`
	ServedBy string `json:"servedBy"`
}

// startUpstream serves a real go-sdk MCP server (the helpdesk upstream)
// on 127.0.0.1:9101 inside n's namespace; its one tool says which node it
// runs beside.
func (c *Cluster) startUpstream(n *Node) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "helpdesk", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "get_ticket", Description: "Read one support ticket", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			ID int `json:"id"`
		}) (*mcp.CallToolResult, Ticket, error) {
			return nil, Ticket{ID: in.ID, ServedBy: n.Name}, nil
		})
	var l net.Listener
	if err := n.NS.Do(func() (err error) { l, err = net.Listen("tcp", "127.0.0.1:9101"); return err }); err != nil {
		c.T.Fatalf("upstream in %s: %v", n.Name, err)
	}
	hs := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)}
	go hs.Serve(l)
	c.T.Cleanup(func() { hs.Close() })
}

// Connect opens an MCP session of the helpdesk agent with a real client,
// from ns, at the gateway on ip.
func (c *Cluster) Connect(ns *xdptest.NS, ip, key string) (*mcp.ClientSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "triage-bot", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{
		Endpoint:   "https://" + ip + ":" + GatewayPort + "/p/support-triage/mcp",
		HTTPClient: &http.Client{Transport: bearer{key: key, base: c.Transport(ns)}},
		MaxRetries: -1,
	}
	s, err := client.Connect(ctx, tr, nil)
	if err != nil {
		return nil, err
	}
	if s.InitializeResult() == nil || s.InitializeResult().ServerInfo == nil {
		s.Close()
		return nil, fmt.Errorf("initialize returned no server info")
	}
	return s, nil
}

// GetTicket calls get_ticket through s and returns the node whose
// upstream answered it.
func GetTicket(s *mcp.ClientSession, id int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"id": id}})
	if err != nil {
		return "", err
	}
	if res.IsError {
		b, _ := json.Marshal(res.Content)
		return "", fmt.Errorf("tool error %s", b)
	}
	var out Ticket
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil || out.ServedBy == "" || out.ID != id {
		return "", fmt.Errorf("get_ticket result %s: %v", b, err)
	}
	return out.ServedBy, nil
}

type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// NFT runs nft commands in n's namespace.
func (c *Cluster) NFT(n *Node, cmds ...string) {
	c.T.Helper()
	for _, cmd := range cmds {
		if out, err := n.NS.Exec(append([]string{"nft"}, strings.Fields(cmd)...)...); err != nil {
			c.T.Fatalf("nft %s in %s: %v %s", cmd, n.Name, err, out)
		}
	}
}

// Firewall cuts n off with nftables in its namespace: every packet in or
// out of eth0 is dropped (the node's own loopback, where clients beside it
// reach it, stays). Unfirewall removes the rules.
func (c *Cluster) Firewall(n *Node) {
	c.NFT(n, "add table inet pccut",
		"add chain inet pccut in { type filter hook input priority -10 ; policy accept ; }",
		"add chain inet pccut out { type filter hook output priority -10 ; policy accept ; }",
		"add rule inet pccut in iifname eth0 drop", "add rule inet pccut out oifname eth0 drop")
}

// Unfirewall removes Firewall's rules.
func (c *Cluster) Unfirewall(n *Node) { c.NFT(n, "delete table inet pccut") }

// Unplug takes n's cable out: its veth end on the bridge goes down, so its
// eth0 loses carrier. Plug puts it back.
func (c *Cluster) Unplug(n *Node) {
	mustRun(c.T, "ip", "-n", c.Bridge.Name, "link", "set", n.port, "down")
}

// Plug is the reverse of Unplug.
func (c *Cluster) Plug(n *Node) {
	mustRun(c.T, "ip", "-n", c.Bridge.Name, "link", "set", n.port, "up")
}

// Names are the nodes' names.
func Names(ns []*Node) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

// Tail is the last 25 lines of s.
func Tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return strings.Join(lines, "\n")
}

// Write writes b to f (0600) or fails the test.
func Write(t *testing.T, f string, b []byte) {
	t.Helper()
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
