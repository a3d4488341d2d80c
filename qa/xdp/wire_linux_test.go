//go:build linux

package xdpqa

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
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/xdp"
	"github.com/portcullis-gw/portcullis/internal/xdp/xdptest"
	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// The addresses of the end-to-end test. The appliance is 10.77.0.1 on its
// veth; clients sit in another namespace on the other end.
const (
	appAddr     = "10.77.0.1"
	personaAddr = "10.77.0.1:9001"
	pinnedDE    = "10.77.0.10" // pinned key, in DE: admitted
	unpinnedDE  = "10.77.0.11" // no key of its own: pin
	pinnedCN    = "10.77.0.20" // pinned key, but located in CN: country
	denyCIDR    = "10.77.0.70" // inside the persona's denyCIDRs: cidr
	outsideCIDR = "10.77.1.5"  // outside the persona's allowCIDRs: cidr
	globalDeny  = "198.51.100.7"
)

const wireDocs = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "%s"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec: {tools: [{tool: helpdesk/get_ticket}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support}
spec:
  skills: [read-tickets]
  endpoint: {listen: "` + personaAddr + `"}
  network:
    allowCIDRs: [10.77.0.0/25]
    denyCIDRs: [10.77.0.64/26]
    allowCountries: [DE, FR]
    unknownCountry: deny
    pinTokensToIP: true
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: triage-bot}
spec: {persona: support}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: far-bot}
spec: {persona: support}
---
apiVersion: portcullis/v1
kind: NetworkPolicy
metadata: {name: edge}
spec: {denyCIDRs: [198.51.100.0/24]}
`

// geoCSV is a DB-IP style country CSV: the first addresses of 10.77.0.0/24
// are in DE, the next in CN, then FR.
const geoCSV = "10.77.0.0,10.77.0.15,DE\n10.77.0.16,10.77.0.31,CN\n10.77.0.32,10.77.0.127,FR\n"

// TestNetworkControlsEndToEnd is issue 5's proof, through the real binary:
// the appliance runs in its own network namespace with XDP on its veth, a
// persona has a dedicated listener there with CIDR, country and pinning
// rules, the GeoIP table is imported with `portcullis geoip import`, and
// clients in another namespace connect from different source addresses.
// The pinned client speaks MCP through the persona's listener; every denied
// client cannot even complete the TCP handshake (its SYN is dropped at the
// NIC, so the appliance's socket never sees it), and `portcullis xdp stats`
// and GET /metrics name the reason. Revoking the pinned key stops its
// address within a second.
func TestNetworkControlsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, network namespaces and the real binary; skipped with -short")
	}
	if err := xdptest.Prereqs(); err != nil {
		t.Fatalf("network-controls end-to-end test: %v (CI runs it as root with iproute2 installed)", err)
	}
	bin := harness.Binary(t)
	pair, err := xdptest.NewPair("wire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	app, cli := pair.App, pair.Client
	for _, step := range [][]string{
		{"addr", "add", appAddr + "/16", "dev", pair.AppIf},
		{"route", "add", "198.51.100.0/24", "dev", pair.AppIf},
	} {
		if err := app.IP(step...); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{pinnedDE + "/16", unpinnedDE + "/16", pinnedCN + "/16", denyCIDR + "/16", outsideCIDR + "/16", globalDeny + "/24"} {
		if err := cli.IP("addr", "add", a, "dev", pair.ClientIf, "nodad"); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeCerts(t, dir, []string{appAddr, "127.0.0.1"})
	upstream := startUpstream(t, app)

	// The appliance, inside its namespace, with XDP on its veth.
	dataDir := filepath.Join(dir, "data")
	tokenFile := filepath.Join(dataDir, "admin-token")
	const adminAddr, gwAddr = "127.0.0.1:9443", "127.0.0.1:8443"
	logs := &lockedBuffer{}
	srv := exec.Command("ip", "netns", "exec", app.Name, bin, "server",
		"--data-dir", dataDir, "--admin-addr", adminAddr, "--gateway-addr", gwAddr,
		"--tls-cert", certFile, "--tls-key", keyFile,
		"--xdp-iface", pair.AppIf, "--xdp-fail", "closed", "--log-level", "debug")
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs.String())
		}
	})

	admin := nsClient(app, netip.Addr{}, pool, 5*time.Second)
	waitFor(t, 30*time.Second, exited, logs, "admin listener healthy", func() bool {
		resp, err := admin.Get("https://" + adminAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	run := func(args ...string) (string, error) {
		args = append(args, "--server", "https://"+adminAddr, "--token-file", tokenFile, "--ca-file", caFile)
		out, err := app.Exec(append([]string{bin}, args...)...)
		return out, err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("portcullis %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	tok, _ := os.ReadFile(tokenFile)
	adminGet := func(path string) []byte {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+adminAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	// published waits until the network rules of every committed change are
	// in force (kernel and userspace), and returns how long that took.
	indexRe := regexp.MustCompile(`(?m)^portcullis_netpolicy_state_index (\d+)$`)
	published := func() time.Duration {
		t.Helper()
		start := time.Now()
		var st struct {
			StateIndex uint64 `json:"stateIndex"`
		}
		if err := json.Unmarshal(adminGet("/v1/status"), &st); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, exited, logs, fmt.Sprintf("network rules of state %d in force", st.StateIndex), func() bool {
			m := indexRe.FindSubmatch(adminGet("/metrics"))
			n, _ := strconv.ParseUint(string(m[1]), 10, 64)
			return n >= st.StateIndex
		})
		return time.Since(start)
	}
	docs := filepath.Join(dir, "net.yaml")
	os.WriteFile(docs, []byte(fmt.Sprintf(wireDocs, upstream)), 0o600)
	must("apply", "-f", docs)
	if out := must("get", "networkpolicies"); !strings.Contains(out, "edge") || !strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("get networkpolicies:\n%s", out)
	}
	geo := filepath.Join(dir, "countries.csv")
	os.WriteFile(geo, []byte(geoCSV), 0o600)
	if out := must("geoip", "import", geo); !strings.Contains(out, "dbip-csv, 3 ranges") {
		t.Fatalf("geoip import said:\n%s", out)
	}

	// A pinning persona refuses keys without a pin, with a clear message.
	if out, err := run("agent", "key", "create", "triage-bot"); err == nil || !strings.Contains(out, "--pin-ip") {
		t.Fatalf("unpinned key for a pinning persona: %v\n%s", err, out)
	}
	keyOut := must("agent", "key", "create", "triage-bot", "--pin-ip", pinnedDE)
	key, keyID := parseKey(t, keyOut)
	must("agent", "key", "create", "far-bot", "--pin-ip", pinnedCN)
	t.Logf("rules of the last commit in force after %v more", published().Round(time.Millisecond))

	// The pinned client connects and lists the persona's tools over MCP on
	// the dedicated listener, at /mcp.
	endpoint := "https://" + personaAddr + "/mcp"
	waitFor(t, 10*time.Second, exited, logs, "persona listener admits the pinned client", func() bool {
		return dial(cli, pinnedDE, personaAddr, 300*time.Millisecond) == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agentHTTP := nsClient(cli, netip.MustParseAddr(pinnedDE), pool, 10*time.Second)
	agentHTTP.Transport = bearer{key: key, base: agentHTTP.Transport}
	session, err := mcp.NewClient(&mcp.Implementation{Name: "triage-bot", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: agentHTTP, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("MCP connect from the pinned address: %v", err)
	}
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Equal(names, []string{"helpdesk_get_ticket"}) {
		t.Errorf("tools = %v, want exactly the persona's [helpdesk_get_ticket]", names)
	}
	session.Close()

	stats := func() xdp.Stats {
		t.Helper()
		var s xdp.Stats
		if err := json.Unmarshal([]byte(must("xdp", "stats", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := stats()
	if !before.Kernel || len(before.Attachments) != 1 || before.Attachments[0].Iface != pair.AppIf {
		t.Fatalf("XDP not attached as asked: %+v", before)
	}
	t.Logf("XDP attached to %s in %s mode", before.Attachments[0].Iface, before.Attachments[0].Mode)

	// Denied sources: their SYNs die at the NIC. A dial times out (no
	// SYN-ACK, no RST), and the namespace's TCP stack opens no connection.
	denied := map[string]string{
		unpinnedDE:  "pin",
		pinnedCN:    "country",
		denyCIDR:    "cidr",
		outsideCIDR: "cidr",
		globalDeny:  "global_deny",
	}
	opens, err := app.SNMP("Tcp", "PassiveOpens")
	if err != nil {
		t.Fatal(err)
	}
	for src := range denied {
		err := dial(cli, src, personaAddr, 500*time.Millisecond)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s → %s: dial = %v, want a timeout (SYN dropped at the NIC)", src, personaAddr, err)
		}
	}
	if after, err := app.SNMP("Tcp", "PassiveOpens"); err != nil || after != opens {
		t.Errorf("the appliance's TCP stack opened %d connections from denied sources (err %v)", after-opens, err)
	}
	after := stats()
	want := map[string]uint64{}
	for _, r := range denied {
		want[r]++
	}
	for r, n := range want {
		if got := after.Packets[r] - before.Packets[r]; got < n {
			t.Errorf("xdp stats: %s drops grew by %d, want at least %d", r, got, n)
		}
	}
	table := must("xdp", "stats")
	for r := range want {
		if !regexp.MustCompile(`(?m)^\s*` + r + `\s+[1-9]\d*\s`).MatchString(table) {
			t.Errorf("portcullis xdp stats shows no %s drops:\n%s", r, table)
		}
	}
	if !strings.Contains(table, pair.AppIf+" (") {
		t.Errorf("portcullis xdp stats does not say where XDP is attached:\n%s", table)
	}

	// GET /metrics on the admin listener exports the same counters.
	body := adminGet("/metrics")
	for r := range want {
		m := regexp.MustCompile(`portcullis_xdp_packets_total\{reason="` + r + `"\} (\d+)`).FindSubmatch(body)
		if m == nil {
			t.Errorf("/metrics has no %s counter", r)
			continue
		}
		if n, _ := strconv.ParseUint(string(m[1]), 10, 64); n < want[r] {
			t.Errorf("/metrics: %s = %d, want ≥ %d", r, n, want[r])
		}
	}
	for _, m := range []string{"portcullis_xdp_fallback 0", "portcullis_netpolicy_nic_enforced 1"} {
		if !bytes.Contains(body, []byte(m)) {
			t.Errorf("/metrics does not report XDP active (%s)", m)
		}
	}

	// Revoke the pinned key: its address is refused at the NIC from then
	// on. The latency is printed, not asserted (the goal is ≤ 1s; on a
	// loaded machine the kernel's RCU grace periods decide).
	must("agent", "key", "revoke", "triage-bot", keyID)
	revoked := time.Now()
	for {
		err := dial(cli, pinnedDE, personaAddr, 100*time.Millisecond)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("after revocation: %v, want a timeout", err)
			}
			break
		}
		if time.Since(revoked) > 20*time.Second {
			t.Fatal("the revoked key's address is still admitted after 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revoked key's address dropped at the NIC %v after the revocation committed", time.Since(revoked).Round(time.Millisecond))
	if s := stats(); s.Packets["pin"] <= after.Packets["pin"] {
		t.Errorf("revoked address: pin counter did not move (%d → %d)", after.Packets["pin"], s.Packets["pin"])
	}
}

// nsClient is an HTTP client whose connections are made inside ns, from
// src when given, trusting pool.
func nsClient(ns *xdptest.NS, src netip.Addr, pool *x509.CertPool, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		DisableKeepAlives: false,
	}
	return &http.Client{Transport: tr, Timeout: timeout * 3}
}

// dial opens (and closes) a TCP connection from src inside ns.
func dial(ns *xdptest.NS, src, dst string, timeout time.Duration) error {
	return ns.Do(func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", dst)
		if err != nil {
			return err
		}
		return c.Close()
	})
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

type ticketIn struct {
	ID int `json:"id"`
}

type ticketOut struct {
	Title string `json:"title"`
}

// startUpstream serves a go-sdk MCP server on the appliance namespace's
// loopback and returns its URL.
func startUpstream(t *testing.T, ns *xdptest.NS) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "helpdesk", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "get_ticket", Description: "Read one support ticket"},
		func(_ context.Context, _ *mcp.CallToolRequest, in ticketIn) (*mcp.CallToolResult, ticketOut, error) {
			return nil, ticketOut{Title: fmt.Sprintf("ticket %d", in.ID)}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "close_ticket", Description: "Close a support ticket"},
		func(_ context.Context, _ *mcp.CallToolRequest, in ticketIn) (*mcp.CallToolResult, ticketOut, error) {
			return nil, ticketOut{Title: "closed"}, nil
		})
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}

var keyIDPattern = regexp.MustCompile(`created key (\S+) for agent`)

// parseKey splits `agent key create` output (key on stdout, a note with the
// key id on stderr; Exec returns both) into the key and its id.
func parseKey(t *testing.T, out string) (key, id string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "pck_") {
			key = strings.TrimSpace(l)
		}
	}
	m := keyIDPattern.FindStringSubmatch(out)
	if key == "" || m == nil {
		t.Fatalf("agent key create printed no key and id: %q", keyIDPattern.ReplaceAllString(out, ""))
	}
	return key, m[1]
}

func waitFor(t *testing.T, limit time.Duration, exited <-chan struct{}, logs *lockedBuffer, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		select {
		case <-exited:
			t.Fatalf("appliance exited while waiting for: %s\n%s", what, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCerts makes a throwaway CA and a server certificate for ips.
func writeCerts(t *testing.T, dir string, ips []string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portcullis qa CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "portcullis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		leaf.IPAddresses = append(leaf.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return caFile, certFile, keyFile, pool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
