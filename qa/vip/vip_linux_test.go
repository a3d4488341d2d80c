//go:build linux

package vipqa

import (
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
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/xdp/xdptest"
	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

const (
	subnet  = "10.231.77."
	vipAddr = subnet + "100"
	gwPort  = "8443"
	// maxStale is above a raft election, so that survivors keep serving
	// while they elect a new leader.
	maxStale = "5s"
)

// node is one namespace with a Portcullis node and keepalived in it.
type node struct {
	name     string // n1..n3, also the node id
	ns       *xdptest.NS
	ip       string
	priority int
	dir      string
	hsmConf  string
	proc     *proc
	keepal   *proc
}

// proc is a process started in a namespace, its output in a file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) kill() {
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

func (p *proc) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

type cluster struct {
	t        *testing.T
	unicast  bool // VRRP to the peers' addresses, else multicast
	bin      string
	id       string
	br       *xdptest.NS
	nodes    []*node
	certs    string // PEM file: the listeners' self-signed certificate
	key      string
	pin      string
	soPin    string
	vrrpPass string
	client   *http.Client // from the bridge namespace, trusting certs, no keep-alive
}

func prereqs(t *testing.T) {
	if err := xdptest.Prereqs(); err != nil {
		t.Skip(err)
	}
	for _, b := range []string{"keepalived", "curl", "nft", "softhsm2-util"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed (.ci/deps installs it: keepalived, curl, nftables, softhsm2)", b)
		}
	}
}

// TestClusterAddressFailover: see the package doc. It runs once with
// multicast VRRP (the default) and once with unicast peers.
func TestClusterAddressFailover(t *testing.T) {
	prereqs(t)
	for _, unicast := range []bool{false, true} {
		name := map[bool]string{false: "multicast", true: "unicast"}[unicast]
		t.Run(name, func(t *testing.T) { testFailover(t, unicast) })
	}
}

func testFailover(t *testing.T, unicast bool) {
	c := &cluster{t: t, bin: harness.Binary(t), id: strconv.Itoa(os.Getpid()%100000) + strconv.FormatBool(unicast)[:1], unicast: unicast}
	c.network([]int{200, 150, 100})
	c.material()
	for _, n := range c.nodes {
		c.startKeepalived(n)
	}
	// No node serves yet: nobody may hold the address.
	time.Sleep(4 * time.Second)
	if h := c.holders(); len(h) != 0 {
		t.Fatalf("%v hold the cluster address before any node serves", names(h))
	}

	c.startNode(c.nodes[0], "")
	c.waitServing(c.nodes[0], 30*time.Second)
	for _, n := range c.nodes[1:] {
		c.join(n)
	}
	key := c.agentKey()
	// The key works on every node, directly (polled: it reaches the
	// followers through raft).
	created := time.Now()
	for _, n := range c.nodes {
		for c.agentErr(n.ip, key) != nil && time.Since(created) < 20*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		c.checkAgentAt(n.ip, key)
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
	if got := c.servedBy(session); got != n1.name {
		t.Fatalf("a tool call through the cluster address was served on %q, want %s (the holder)", got, n1.name)
	}

	// 2. kill -9 the holder's node: the address moves to the next healthy
	// node. Measure how long an agent finds it unreachable.
	killed := time.Now()
	n1.proc.kill()
	gap, firstOK := c.outage(killed, 30*time.Second)
	c.waitHolder(n2, 10*time.Second)
	// The agent's client goes on calling through the same address and
	// lands on the new holder.
	if got := c.servedBy(session); got != n2.name {
		t.Fatalf("after the failover a tool call through the cluster address was served on %q, want %s", got, n2.name)
	}
	t.Logf("FIGURE failover after kill -9 of the holder: cluster address unreachable for %v (kill → first good /healthz through the VIP on %s: %v)", gap.Round(time.Millisecond), n2.name, firstOK.Sub(killed).Round(time.Millisecond))
	c.checkAgent(key)

	// 3. Restart the killed node cut off from the raft port: it never hears
	// a leader, so its /healthz stays 503. It has the highest priority, yet
	// it must never take the address while it answers 503.
	c.nft(n1, "add table inet vipcut", "add chain inet vipcut in { type filter hook input priority 0; }",
		"add chain inet vipcut out { type filter hook output priority 0; }",
		"add rule inet vipcut in tcp dport 9444 drop", "add rule inet vipcut out tcp dport 9444 drop")
	c.startNode(n1, "") // not waiting for health
	deadline := time.Now().Add(30 * time.Second)
	for c.health(n1.ip) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatalf("%s cut off from raft does not answer 503 on /healthz (last %d):\n%s", n1.name, c.health(n1.ip), tail(n1.proc.logs()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Long enough for keepalived to preempt (rise 2 × 1s + 3 adverts) if it
	// took a 503 for healthy.
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if code := c.health(n1.ip); code != http.StatusServiceUnavailable {
			t.Fatalf("%s answered %d while cut off from raft, want 503", n1.name, code)
		}
		if h := c.holders(); len(h) != 1 || h[0] != n2 {
			t.Fatalf("holders of the cluster address while %s answers 503: %v, want only %s", n1.name, names(h), n2.name)
		}
	}
	if got := c.servedBy(session); got != n2.name {
		t.Fatalf("while %s answers 503 a tool call through the cluster address was served on %q, want %s", n1.name, got, n2.name)
	}

	// 4. Heal the cut: the node catches up, turns healthy and, having the
	// highest priority, takes the address back (preemption).
	c.nft(n1, "delete table inet vipcut")
	healed := time.Now()
	c.waitHolder(n1, 60*time.Second)
	t.Logf("FIGURE preemption: %s healthy again and holding the address %v after the cut healed", n1.name, time.Since(healed).Round(time.Millisecond))
	if code := c.vipHealth(); code != http.StatusOK {
		t.Fatalf("GET /healthz through the cluster address after preemption: %d", code)
	}
	if got := c.servedBy(session); got != n1.name {
		t.Fatalf("after preemption a tool call through the cluster address was served on %q, want %s", got, n1.name)
	}
	c.checkAgent(key)
}

// network makes the bridge namespace (bridge br0 with the agent's address
// .1) and one namespace per node (eth0, .11, .12, ...) and removes them
// when the test ends.
func (c *cluster) network(priorities []int) {
	t := c.t
	c.br = &xdptest.NS{Name: "pcvip-" + c.id + "-br"}
	mustRun(t, "ip", "netns", "add", c.br.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", c.br.Name).Run() })
	mustRun(t, "ip", "-n", c.br.Name, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", c.br.Name, "link", "add", "br0", "type", "bridge")
	mustRun(t, "ip", "-n", c.br.Name, "addr", "add", subnet+"1/24", "dev", "br0")
	mustRun(t, "ip", "-n", c.br.Name, "link", "set", "br0", "up")
	for i, prio := range priorities {
		n := &node{name: fmt.Sprintf("n%d", i+1), ip: fmt.Sprintf("%s%d", subnet, 11+i), priority: prio, dir: t.TempDir()}
		n.ns = &xdptest.NS{Name: "pcvip-" + c.id + "-" + n.name}
		mustRun(t, "ip", "netns", "add", n.ns.Name)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.ns.Name).Run() })
		port := "v" + n.name
		mustRun(t, "ip", "-n", c.br.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns.Name)
		mustRun(t, "ip", "-n", c.br.Name, "link", "set", port, "master", "br0", "up")
		mustRun(t, "ip", "-n", n.ns.Name, "link", "set", "lo", "up")
		mustRun(t, "ip", "-n", n.ns.Name, "addr", "add", n.ip+"/24", "dev", "eth0")
		mustRun(t, "ip", "-n", n.ns.Name, "link", "set", "eth0", "up")
		c.nodes = append(c.nodes, n)
		c.startUpstream(n)
	}
}

// transport dials from the bridge namespace and trusts the test's
// certificate; no keep-alive, so each request finds the current holder.
func (c *cluster) transport() *http.Transport {
	return &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := c.br.Do(func() error {
				var err error
				conn, err = (&net.Dialer{Timeout: 300 * time.Millisecond}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
		TLSClientConfig: &tls.Config{RootCAs: c.pool(), MinVersion: tls.VersionTLS12},
	}
}

func (c *cluster) pool() *x509.CertPool {
	b, err := os.ReadFile(c.certs)
	if err != nil {
		c.t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// material writes the listeners' certificate (for the VIP and every node),
// the HSM PINs and one SoftHSM2 token per node.
func (c *cluster) material() {
	t := c.t
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portcullis vip test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP(vipAddr), net.ParseIP("127.0.0.1")},
	}
	for _, n := range c.nodes {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(n.ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c.certs, c.key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c.pin, c.soPin = filepath.Join(dir, "pin"), filepath.Join(dir, "so-pin")
	write(t, c.certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, c.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	pin, so := strconv.Itoa(100000+int(time.Now().UnixNano()%800000)), strconv.Itoa(100000+int(time.Now().UnixNano()/7%800000))
	write(t, c.pin, []byte(pin+"\n"))
	write(t, c.soPin, []byte(so+"\n"))
	c.vrrpPass = filepath.Join(dir, "vrrp-pass")
	write(t, c.vrrpPass, []byte(rand.Text()[:8]+"\n"))
	c.client = &http.Client{Timeout: 400 * time.Millisecond, Transport: c.transport()}
	for _, n := range c.nodes {
		tokens := filepath.Join(n.dir, "hsm")
		if err := os.Mkdir(tokens, 0o700); err != nil {
			t.Fatal(err)
		}
		n.hsmConf = filepath.Join(n.dir, "softhsm2.conf")
		write(t, n.hsmConf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\n"))
		cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "pcvip", "--pin", pin, "--so-pin", so)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+n.hsmConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("softhsm2-util: %v\n%s", err, out)
		}
	}
}

// start runs args in n's namespace with env added, output to logName.
func (c *cluster) start(n *node, logName string, env []string, args ...string) *proc {
	t := c.t
	logf := filepath.Join(n.dir, logName)
	f, err := os.OpenFile(logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns.Name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s in %s: %v", args[0], n.name, err)
	}
	p := &proc{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.kill) // before the namespaces go (cleanups run last-in first)
	return p
}

// startKeepalived generates n's keepalived.conf with the CLI, as an admin
// would, and runs keepalived with it (VRRP only).
func (c *cluster) startKeepalived(n *node) {
	t := c.t
	args := []string{"cluster", "vip-config", "--vip", vipAddr + "/24", "--iface", "eth0", "--router-id", "51",
		"--priority", strconv.Itoa(n.priority), "--health-url", "https://127.0.0.1:" + gwPort + "/healthz",
		"--auth-pass-file", c.vrrpPass}
	if c.unicast {
		args = append(args, "--src-ip", n.ip)
	}
	for _, p := range c.nodes {
		if p != n && c.unicast {
			args = append(args, "--peer", p.ip)
		}
	}
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("portcullis %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	conf := filepath.Join(n.dir, "keepalived.conf")
	write(t, conf, out)
	n.keepal = c.start(n, "keepalived.log", nil, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"--use-file", conf, "--pid", filepath.Join(n.dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(n.dir, "vrrp.pid"))
}

// startNode starts (or restarts) n's Portcullis node in production mode:
// TLS listeners, the gateway on every address of the namespace, its own
// SoftHSM2 token. join, if set, is the admin URL to join through.
func (c *cluster) startNode(n *node, join string) {
	args := []string{c.bin, "server", "--data-dir", filepath.Join(n.dir, "data"), "--node-id", n.name,
		"--tls-cert", c.certs, "--tls-key", c.key,
		"--gateway-addr", "0.0.0.0:" + gwPort, "--admin-addr", n.ip + ":9443", "--raft-addr", n.ip + ":9444",
		"--hsm-token", "pcvip", "--hsm-pin-file", c.pin, "--max-stale", maxStale}
	if join != "" {
		tok := filepath.Join(n.dir, "join-token")
		write(c.t, tok, []byte(c.cli(c.nodes[0], "cluster", "join-token", "create", "--ttl", "10m")))
		args = append(args, "--join", join, "--join-token-file", tok)
	}
	// SSL_CERT_FILE: the joining node verifies the first node's admin
	// listener, whose certificate is the test's own.
	n.proc = c.start(n, "node.log", []string{"SOFTHSM2_CONF=" + n.hsmConf, "SSL_CERT_FILE=" + c.certs}, args...)
}

var pendingRE = regexp.MustCompile(`waits for the Security Officer.*node=(\S+) fingerprint=([0-9a-f]+) pub=("(?:[^"\\]|\\.)*")`)

// join starts n with --join through the first node and approves its HSM
// wrapping key there as the Security Officer, then waits until n serves.
func (c *cluster) join(n *node) {
	t := c.t
	first := c.nodes[0]
	c.startNode(n, "https://"+first.ip+":9443")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var m []string
		for _, mm := range pendingRE.FindAllStringSubmatch(first.proc.logs(), -1) {
			if mm[1] == n.name {
				m = mm
			}
		}
		if m != nil {
			pub, err := strconv.Unquote(m[3])
			if err != nil {
				t.Fatalf("wrapping key in the log: %v", err)
			}
			cmd := exec.Command(c.bin, "secret", "trust-join-key", "--token-label", "pcvip", "--so-pin-file", c.soPin, "--pub", "-", "--fingerprint", m[2])
			cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+first.hsmConf)
			cmd.Stdin = strings.NewReader(pub)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("trust-join-key for %s: %v\n%s", n.name, err, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not ask to join:\n%s\n%s", n.name, tail(n.proc.logs()), tail(first.proc.logs()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.waitServing(n, 30*time.Second)
}

// waitServing waits until n's /healthz answers 200.
func (c *cluster) waitServing(n *node, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for c.health(n.ip) != http.StatusOK {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not serve after %v:\n%s", n.name, limit, tail(n.proc.logs()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs the CLI against n's admin API from n's namespace.
func (c *cluster) cli(n *node, args ...string) string {
	c.t.Helper()
	args = append(args, "--server", "https://"+n.ip+":9443", "--token-file", filepath.Join(c.nodes[0].dir, "data", "admin-token"), "--ca-file", c.certs)
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns.Name, c.bin}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("portcullis %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

const personaYAML = `apiVersion: portcullis/v1
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

// agentKey declares a persona and an agent on the first node and returns
// the agent's key, which every node honours (replicated state).
func (c *cluster) agentKey() string {
	f := filepath.Join(c.t.TempDir(), "persona.yaml")
	write(c.t, f, []byte(personaYAML))
	c.cli(c.nodes[0], "apply", "-f", f)
	return c.cli(c.nodes[0], "agent", "key", "create", "triage-bot")
}

// servedBy calls get_ticket through s and returns the node whose upstream
// answered ("" on error, which fails the test).
func (c *cluster) servedBy(s *mcp.ClientSession) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"id": 7}})
	if err != nil {
		c.t.Errorf("tools/call get_ticket through the cluster address: %v", err)
		return ""
	}
	if res.IsError {
		c.t.Errorf("tools/call get_ticket through the cluster address: tool error %+v", res.Content)
		return ""
	}
	var out ticket
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil || out.ServedBy == "" {
		c.t.Errorf("get_ticket result %s: %v", b, err)
	}
	return out.ServedBy
}

type ticket struct {
	ID       int    `json:"id"`
	ServedBy string `json:"servedBy"`
}

// startUpstream serves a real go-sdk MCP server (the helpdesk upstream of
// personaYAML) on 127.0.0.1:9101 inside n's namespace; its one tool says
// which node it runs beside.
func (c *cluster) startUpstream(n *node) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "helpdesk", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "get_ticket", Description: "Read one support ticket", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			ID int `json:"id"`
		}) (*mcp.CallToolResult, ticket, error) {
			return nil, ticket{ID: in.ID, ServedBy: n.name}, nil
		})
	var l net.Listener
	if err := n.ns.Do(func() (err error) { l, err = net.Listen("tcp", "127.0.0.1:9101"); return err }); err != nil {
		c.t.Fatalf("upstream in %s: %v", n.name, err)
	}
	hs := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)}
	go hs.Serve(l)
	c.t.Cleanup(func() { hs.Close() })
}

// checkAgent connects a real MCP client through the cluster address.
func (c *cluster) checkAgent(key string) {
	c.t.Helper()
	c.checkAgentAt(vipAddr, key)
}

// checkAgentAt connects a real MCP client to the gateway at ip.
func (c *cluster) checkAgentAt(ip, key string) {
	t := c.t
	t.Helper()
	if err := c.agentErr(ip, key); err != nil {
		for _, n := range c.nodes {
			if n.ip == ip || ip == vipAddr {
				t.Logf("%s log:\n%s", n.name, tail(n.proc.logs()))
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

// connect opens an MCP session at ip's gateway with a real client.
func (c *cluster) connect(ip, key string) (*mcp.ClientSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "triage-bot", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{
		Endpoint:   "https://" + ip + ":" + gwPort + "/p/support-triage/mcp",
		HTTPClient: &http.Client{Transport: bearer{key: key, base: c.transport()}},
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

type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// health is the status of GET https://ip:8443/healthz from the agent's
// namespace, 0 when there is no answer.
func (c *cluster) health(ip string) int {
	resp, err := c.client.Get("https://" + ip + ":" + gwPort + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *cluster) vipHealth() int { return c.health(vipAddr) }

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
			out, err := exec.Command("ip", "-n", n.ns.Name, "-4", "-br", "addr", "show", "dev", "eth0").CombinedOutput()
			if err != nil {
				c.t.Errorf("ip addr in %s: %v %s", n.name, err, out)
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
			c.t.Fatalf("after %v the cluster address is held by %v, want %s\n%s", limit, names(h), n.name, c.keepalivedLogs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) nft(n *node, cmds ...string) {
	for _, cmd := range cmds {
		if out, err := n.ns.Exec(append([]string{"nft"}, strings.Fields(cmd)...)...); err != nil {
			c.t.Fatalf("nft %s in %s: %v %s", cmd, n.name, err, out)
		}
	}
}

func (c *cluster) keepalivedLogs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- keepalived %s:\n%s\n", n.name, tail(n.keepal.logs()))
	}
	return b.String()
}

func names(ns []*node) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.name)
	}
	return out
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return strings.Join(lines, "\n")
}

func write(t *testing.T, f string, b []byte) {
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
