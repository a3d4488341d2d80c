package appliance

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestNetworkFallbackAndPersonaListener: without XDP (fail-open) the node
// says so in /metrics, opens a persona's dedicated listener when the persona
// appears, moves it when it changes, and refuses requests from sources the
// persona's rules exclude with 403 and the reason.
func TestNetworkFallbackAndPersonaListener(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Network = NetworkConfig{Ifaces: []string{"pc-nope0"}}
	a, _ := start(t, cfg)
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	tok, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	token := strings.TrimSpace(string(tok))
	call := func(method, url, body string, auth string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		req.Header.Set("Accept", "application/json, text/event-stream")
		if strings.HasPrefix(body, "{") {
			req.Header.Set("Content-Type", "application/json")
		} else if body != "" {
			req.Header.Set("Content-Type", "application/yaml")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	listen := freePort(t)
	persona := func(allow string) string {
		return fmt.Sprintf("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: support}\nspec: {skills: [], endpoint: {listen: %q}, network: {allowCIDRs: [%s]}}\n", listen, allow)
	}
	if code, body, _ := call("POST", admin+"/v1/apply", persona("10.0.0.0/8"), token); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	var (
		code int
		body string
		hdr  http.Header
	)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body, hdr = call("POST", "http://"+listen+"/mcp", initialize, "")
		if code != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != http.StatusForbidden || hdr.Get("X-Portcullis-Network-Reason") != "cidr" || !strings.Contains(body, "not in the persona's allowed networks") {
		t.Fatalf("127.0.0.1 outside allowCIDRs on the persona listener: %d %s", code, body)
	}
	// The shared gateway path is judged as the persona's listener.
	if code, body, _ := call("POST", "http://"+a.GatewayAddr()+"/p/support/mcp", initialize, ""); code != http.StatusForbidden || !strings.Contains(body, "cidr") {
		t.Fatalf("shared path of the persona: %d %s", code, body)
	}

	// Admit loopback: the request now reaches the gateway, which wants a key.
	if code, body, _ := call("POST", admin+"/v1/apply", persona("127.0.0.0/8"), token); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	// Until the new rule is live, polls are still refused and counted.
	personaRefused := 1
	deadline = time.Now().Add(15 * time.Second) // the goal is 1 s; a loaded CI machine may be slower
	for {
		code, body, _ = call("POST", "http://"+listen+"/mcp", initialize, "")
		if code == http.StatusForbidden {
			personaRefused++
		}
		if code == http.StatusUnauthorized || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != http.StatusUnauthorized {
		t.Fatalf("after admitting loopback: %d %s, want the gateway's 401", code, body)
	}

	// Moving the endpoint closes the old listener.
	old := listen
	listen = freePort(t)
	if code, body, _ := call("POST", admin+"/v1/apply", persona("127.0.0.0/8"), token); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", old, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("old persona listener still open after the endpoint moved")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addrs := a.PersonaAddrs(); addrs["support"] != listen {
		t.Fatalf("persona listeners %v, want support on %s", addrs, listen)
	}

	// A dev node serves persona endpoints on loopback only: the apply is
	// refused, naming the field, and nothing opens.
	lan := "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: lan}\nspec: {skills: [], endpoint: {listen: \"192.0.2.1:9001\"}}\n"
	if code, body, _ := call("POST", admin+"/v1/apply", lan, token); code != http.StatusUnprocessableEntity || !strings.Contains(body, "spec.endpoint.listen") || !strings.Contains(body, "loopback only") {
		t.Fatalf("apply of a LAN endpoint on a dev node: %d %s, want 422 naming spec.endpoint.listen", code, body)
	}
	time.Sleep(100 * time.Millisecond)
	if addrs := a.PersonaAddrs(); addrs["lan"] != "" || addrs["support"] != listen {
		t.Fatalf("persona listeners %v: a dev node opened a non-loopback one", addrs)
	}

	// /metrics: the admin token is required; the fallback is visible.
	// It is the admin API's own check (one for every admin route, /metrics
	// and /v1/metrics being one handler): a wrong token is refused alike.
	for _, path := range []string{"/metrics", "/v1/metrics"} {
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			code, body, hdr := call("GET", admin+path, "", tok)
			if code != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), "portcullis-admin") || !strings.Contains(body, `"unauthorized"`) {
				t.Fatalf("%s with token %q: %d %s", path, tok, code, body)
			}
		}
	}
	if code, body, _ := call("GET", admin+"/v1/metrics", "", token); code != 200 || !strings.Contains(body, "portcullis_xdp_fallback 1") {
		t.Fatalf("/v1/metrics: %d", code)
	}
	code, body, _ = call("GET", admin+"/metrics", "", token)
	for _, want := range []string{"portcullis_xdp_fallback 1", "portcullis_netpolicy_nic_enforced 0", fmt.Sprintf(`portcullis_netpolicy_userspace_decisions_total{reason="cidr"} %d`, personaRefused+1), fmt.Sprintf(`portcullis_netpolicy_refused_requests_total{surface="persona"} %d`, personaRefused), "go_goroutines"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q (status %d)", want, code)
		}
	}
	code, body, _ = call("GET", admin+"/v1/xdp/stats", "", token)
	if code != 200 || !strings.Contains(body, `"kernel":false`) || !strings.Contains(body, "pc-nope0") {
		t.Errorf("xdp stats: %d %s", code, body)
	}
}

func TestNetworkConfig(t *testing.T) {
	for _, c := range []struct {
		n    NetworkConfig
		want string
	}{
		{NetworkConfig{Mode: "turbo"}, "--xdp-mode"},
		{NetworkConfig{Fail: "maybe"}, `--xdp-fail "maybe": want open or closed`},
		{NetworkConfig{Ifaces: []string{"eth0/1"}}, "not an interface name"},
	} {
		cfg := testConfig(t, t.TempDir())
		cfg.Network = c.n
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v", c.n, err)
		}
	}
	// Fail-closed: a node whose XDP cannot attach refuses to start.
	cfg := testConfig(t, t.TempDir())
	cfg.Network = NetworkConfig{Ifaces: []string{"pc-nope0"}, Fail: "closed"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "fail-closed") {
		t.Fatalf("fail-closed with a missing interface: %v", err)
	}
}
