package appliance

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
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testConfig(t *testing.T, dir string) Config {
	return Config{
		Dev:         true,
		DataDir:     dir,
		GatewayAddr: "127.0.0.1:0",
		AdminAddr:   "127.0.0.1:0",
		RaftAddr:    "127.0.0.1:0",
		Logger:      slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// start runs an appliance and returns it with a function that stops it and
// returns Run's error.
func start(t *testing.T, cfg Config) (*Appliance, func() error) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-done
		return errors.Join(err, a.Close())
	}
	t.Cleanup(func() { stop() })
	return a, stop
}

func waitHealthy(t *testing.T, client *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDevNodeServesHealthzOnBothListeners(t *testing.T) {
	dir := t.TempDir()
	a, stop := start(t, testConfig(t, dir))
	waitHealthy(t, http.DefaultClient, "http://"+a.AdminAddr()+"/healthz")
	waitHealthy(t, http.DefaultClient, "http://"+a.GatewayAddr()+"/healthz")

	// The admin token was written 0600 and works; the gateway has no admin API.
	fi, err := os.Stat(filepath.Join(dir, "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	req, _ := http.NewRequest("GET", "http://"+a.AdminAddr()+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin status with the token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req.URL.Host = a.GatewayAddr()
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 404 {
		t.Fatalf("admin API on the gateway listener: %d, want 404", resp.StatusCode)
	}

	// An object applied before a snapshot and one after it both survive
	// the restart: the first from the (zstd) snapshot, the second from the
	// log after it.
	applyYAML := func(a *Appliance, name string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+a.AdminAddr()+"/v1/apply", strings.NewReader(
			"apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: "+name+"}\nspec: {url: 'http://127.0.0.1:9/mcp'}\n"))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("apply %s: %v %v", name, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	applyYAML(a, "in-snapshot")
	if err := a.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	applyYAML(a, "in-log")

	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if _, err := http.Get("http://" + a.AdminAddr() + "/healthz"); err == nil {
		t.Fatal("admin listener still answers after stop")
	}

	// A restart keeps the token and the node id.
	id1, _ := os.ReadFile(filepath.Join(dir, "node-id"))
	a2, _ := start(t, testConfig(t, dir))
	waitHealthy(t, http.DefaultClient, "http://"+a2.AdminAddr()+"/healthz")
	tok2, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	id2, _ := os.ReadFile(filepath.Join(dir, "node-id"))
	if string(tok) != string(tok2) || string(id1) != string(id2) {
		t.Fatal("restart changed the admin token or the node id")
	}
	snap := a2.store.Current()
	if snap.Upstreams["in-snapshot"] == nil || snap.Upstreams["in-log"] == nil {
		t.Fatalf("after restart the state has upstreams %v, want in-snapshot and in-log", snap.Upstreams)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"no data dir":       {func(c *Config) { c.DataDir = "" }, "data directory"},
		"dev non-loopback":  {func(c *Config) { c.AdminAddr = "0.0.0.0:0" }, "loopback only"},
		"same listeners":    {func(c *Config) { c.GatewayAddr = "127.0.0.1:9"; c.AdminAddr = "127.0.0.1:9" }, "must differ"},
		"no tls in prod":    {func(c *Config) { c.Dev = false }, "--tls-cert"},
		"bad address":       {func(c *Config) { c.GatewayAddr = "nope" }, "HOST:PORT"},
		"missing cert file": {func(c *Config) { c.Dev = false; c.TLSCertFile = "/nonexistent"; c.TLSKeyFile = "/nonexistent" }, "TLS certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			c.mut(&cfg)
			a, err := New(cfg)
			if err == nil {
				a.Close()
				t.Fatal("New accepted a bad config")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// TestPortInUseClosesEverything checks Close after a partial start: the
// raft node opened before the listener failed must be released, so the
// same data dir opens again.
func TestPortInUseClosesEverything(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.GatewayAddr = busy.Addr().String()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "gateway listener") {
		t.Fatalf("New with a busy gateway port: %v", err)
	}
	a, _ := start(t, testConfig(t, dir))
	waitHealthy(t, http.DefaultClient, "http://"+a.AdminAddr()+"/healthz")
}

func TestTokenFileWithLoosePermissionsIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte("pcadm_0123456789abcdef0123"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(testConfig(t, dir))
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("New with a world-readable token: %v", err)
	}
}

func TestTLSNode(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := testConfig(t, dir)
	cfg.Dev = false
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	a, _ := start(t, cfg)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitHealthy(t, client, "https://"+a.AdminAddr()+"/healthz")
	waitHealthy(t, client, "https://"+a.GatewayAddr()+"/healthz")
	// Plain HTTP is not served.
	resp, err := http.Get("http://" + a.AdminAddr() + "/healthz")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP served on a TLS node: %s", b)
		}
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "portcullis test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestShutdownEndsOpenAgentStreams: an agent's open SSE stream must not
// hold a graceful shutdown until its timeout.
func TestShutdownEndsOpenAgentStreams(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.ShutdownTimeout = time.Minute
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	tok, _ := os.ReadFile(filepath.Join(dir, "admin-token"))

	call := func(method, url string, body string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode/100 != 2 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
		return resp
	}
	adminHdr := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok)), "Content-Type": "application/yaml"}
	call("POST", admin+"/v1/apply", `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: up}
spec: {url: "http://127.0.0.1:9/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: s}
spec: {tools: [{tool: up/x}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: p}
spec: {skills: [s]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: bot}
spec: {persona: p}
`, adminHdr).Body.Close()
	resp := call("POST", admin+"/v1/agents/bot/keys", "", adminHdr)
	var k struct{ Key string }
	json.NewDecoder(resp.Body).Decode(&k)
	resp.Body.Close()

	mcpURL := "http://" + a.GatewayAddr() + "/p/p/mcp"
	agent := map[string]string{"Authorization": "Bearer " + k.Key, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
	resp = call("POST", mcpURL, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, agent)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	agent["Mcp-Session-Id"], agent["MCP-Protocol-Version"], agent["Accept"] = sid, "2025-06-18", "text/event-stream"
	stream := call("GET", mcpURL, "", agent)
	defer stream.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown hung on an open agent stream")
	}
	if _, err := io.Copy(io.Discard, stream.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
}

// TestSecretsAreSealedByTheDevHSM: a dev node makes its own SoftHSM2 token;
// a stored secret is replicated only as ciphertext and survives a restart.
func TestSecretsAreSealedByTheDevHSM(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		if testing.Short() {
			t.Skip("SoftHSM2 not installed")
		}
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2 (listed in .ci/packages.d/runtime)")
	}
	t.Setenv("SOFTHSM2_CONF", "")
	dir := t.TempDir()
	a, stop := start(t, testConfig(t, dir))
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	if a.keystore == nil {
		t.Fatal("dev node runs without an HSM although SoftHSM2 is installed")
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	plaintext := "hunter2-" + strings.Repeat("x", 20)
	do := func(a *Appliance, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+a.AdminAddr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	val, _ := json.Marshal(map[string][]byte{"value": []byte(plaintext)})
	if code, body := do(a, "PUT", "/v1/secrets/helpdesk-token", string(val)); code != 200 || !strings.Contains(body, `"version":1`) {
		t.Fatalf("put secret: %d %s", code, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Nothing on disk outside the HSM's token holds the value.
	filepath.WalkDir(filepath.Join(dir, "raft"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), plaintext) {
				t.Errorf("%s holds the secret in plain text", p)
			}
		}
		return nil
	})
	a2, _ := start(t, testConfig(t, dir))
	waitHealthy(t, http.DefaultClient, "http://"+a2.AdminAddr()+"/healthz")
	code, body := do(a2, "GET", "/v1/secrets", "")
	if code != 200 || !strings.Contains(body, "helpdesk-token") || strings.Contains(body, plaintext) {
		t.Fatalf("list secrets after restart: %d %s", code, body)
	}
	// The restarted node's HSM still opens it.
	sec := a2.store.Current().Secrets["helpdesk-token"]
	got, err := a2.keystore.Unseal(context.Background(), "helpdesk-token", sec.Version, sec.Sealed)
	if err != nil || string(got) != plaintext {
		t.Fatalf("unseal after restart: %v", err)
	}
}

func TestNodeWithoutHSMExplainsSecrets(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := testConfig(t, dir)
	cfg.Dev, cfg.TLSCertFile, cfg.TLSKeyFile = false, certFile, keyFile
	a, _ := start(t, cfg)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitHealthy(t, client, "https://"+a.AdminAddr()+"/healthz")
	tok, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	req, _ := http.NewRequest("PUT", "https://"+a.AdminAddr()+"/v1/secrets/x", strings.NewReader(`{"value":"eA=="}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "--hsm-token") {
		t.Fatalf("secret put without an HSM: %d %s", resp.StatusCode, b)
	}
}
