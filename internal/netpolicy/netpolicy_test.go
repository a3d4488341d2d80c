package netpolicy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/geoip"
	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// node is a state store fed through the raft FSM interface, as on a node.
type node struct {
	t     *testing.T
	store *state.Store
	index uint64
}

func newNode(t *testing.T) *node { return &node{t: t, store: state.NewStore(logger(t))} }

func (n *node) apply(cmd *state.Command) error {
	n.t.Helper()
	if cmd.Time.IsZero() {
		cmd.Time = time.Now().UTC()
	}
	b, err := cmd.Encode()
	if err != nil {
		n.t.Fatal(err)
	}
	n.index++
	if err, ok := n.store.Apply(&raft.Log{Index: n.index, Type: raft.LogCommand, Data: b}).(error); ok {
		return err
	}
	return nil
}

func (n *node) yaml(doc string) {
	n.t.Helper()
	objs, err := state.ParseDocuments("test.yaml", []byte(doc))
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := &state.Command{Op: state.OpApply}
	for _, o := range objs {
		cmd.Documents = append(cmd.Documents, state.EncodeDocument(o))
	}
	if err := n.apply(cmd); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) key(id, agent, pin string, expires time.Time) error {
	n.t.Helper()
	return n.apply(&state.Command{Op: state.OpKeyCreate, Key: &state.APIKey{ID: id, Agent: agent, Hash: make([]byte, 32), PinIP: pin, Expires: expires}})
}

const baseDocs = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: hd}
spec: {url: "http://127.0.0.1:1/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: s}
spec: {tools: [{tool: hd/get}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support}
spec:
  skills: [s]
  endpoint: {listen: "10.77.0.1:9001"}
  network:
    allowCIDRs: [10.77.0.0/25]
    denyCIDRs: [10.77.0.64/26]
    allowCountries: [DE, FR]
    pinTokensToIP: true
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: open}
spec: {skills: [s], endpoint: {listen: "[::]:9002"}, network: {denyCountries: [CN]}}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: shared-only}
spec: {skills: [s]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: lan-only}
spec: {skills: [s], network: {allowCIDRs: [10.0.0.0/8]}}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: bot}
spec: {persona: support}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: other}
spec: {persona: open}
---
apiVersion: portcullis/v1
kind: NetworkPolicy
metadata: {name: edge}
spec: {denyCIDRs: [198.51.100.0/24]}
---
apiVersion: portcullis/v1
kind: NetworkPolicy
metadata: {name: partners}
spec: {denyCIDRs: ["2001:db8:bad::/48"], unknownCountry: allow}
`

func TestCompile(t *testing.T) {
	n := newNode(t)
	n.yaml(baseDocs)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	for _, k := range []struct {
		id, agent, pin string
		exp            time.Time
	}{{"k1", "bot", "10.77.0.10", time.Time{}}, {"k2", "bot", "::ffff:10.77.0.11", future}, {"k3", "bot", "10.77.0.12", past}, {"k4", "other", "192.0.2.4", time.Time{}}} {
		if err := n.key(k.id, k.agent, k.pin, k.exp); err != nil {
			t.Fatal(err)
		}
	}
	r, errs := Compile(n.store.Current())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := r.GlobalDeny; len(got) != 2 || got[0] != netip.MustParsePrefix("198.51.100.0/24") || got[1] != netip.MustParsePrefix("2001:db8:bad::/48") {
		t.Errorf("global deny = %v (union of both policies, by name)", got)
	}
	if len(r.GlobalAllow) != 0 {
		t.Errorf("global allow = %v, want none", r.GlobalAllow)
	}
	if len(r.Listeners) != 2 {
		t.Fatalf("listeners = %+v, want support and open (shared-only has no endpoint)", r.Listeners)
	}
	open, sup := r.Listeners[0], r.Listeners[1]
	if sup.Name != "support" || sup.Listen != netip.MustParseAddrPort("10.77.0.1:9001") || !sup.PinToIP || !sup.AllowUnknownCountry {
		// The persona's allowCountries list would refuse unknown sources,
		// but the global NetworkPolicy "partners" says allow.
		t.Errorf("support listener = %+v", sup)
	}
	if open.Name != "open" || !open.AllowUnknownCountry || open.PinToIP || len(open.DenyCountries) != 1 {
		t.Errorf("open listener = %+v", open)
	}
	pins := map[netip.Addr]time.Time{}
	for _, p := range sup.Pins {
		pins[p.IP] = p.NotAfter
	}
	if len(pins) != 3 || !pins[netip.MustParseAddr("10.77.0.11")].Equal(future) {
		t.Errorf("pins = %v: want the three keys of bot (IPv4-mapped unmapped), with expiry", sup.Pins)
	}

	// The compiled policy gives the decisions the issue asks for.
	p, err := xdp.NewPolicy(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort("10.77.0.1:9001")
	for src, want := range map[string]xdp.Reason{
		"198.51.100.7": xdp.ReasonGlobalDeny,
		"10.77.1.5":    xdp.ReasonCIDR, // outside allow
		"10.77.0.70":   xdp.ReasonCIDR, // inside deny
		"10.77.0.10":   xdp.ReasonPass, // pinned, unknown country allowed globally
		"10.77.0.11":   xdp.ReasonPass,
		"10.77.0.12":   xdp.ReasonPin, // expired key
		"10.77.0.13":   xdp.ReasonPin,
	} {
		if _, got := p.Allow(netip.MustParseAddr(src), dst); got != want {
			t.Errorf("%s → %v: %v, want %v", src, dst, got, want)
		}
	}
}

func TestUnknownCountryRule(t *testing.T) {
	for _, c := range []struct {
		persona, global string
		allow, deny     []string
		want            bool
	}{
		{"", "", []string{"DE"}, nil, false},
		{"", "", nil, []string{"CN"}, true},
		{"", "allow", []string{"DE"}, nil, true},
		{"", "deny", nil, []string{"CN"}, false},
		{"allow", "deny", []string{"DE"}, nil, true},
		{"deny", "allow", nil, []string{"CN"}, false},
	} {
		n := &state.Network{UnknownCountry: c.persona, AllowCountries: c.allow, DenyCountries: c.deny}
		if got := unknownAllowed(n, c.global); got != c.want {
			t.Errorf("%+v: %v", c, got)
		}
	}
	n := newNode(t)
	n.yaml(baseDocs + "---\napiVersion: portcullis/v1\nkind: NetworkPolicy\nmetadata: {name: strict}\nspec: {unknownCountry: deny, allowCIDRs: [10.0.0.0/8]}\n")
	r, _ := Compile(n.store.Current())
	if r.Listeners[1].AllowUnknownCountry || r.Listeners[0].AllowUnknownCountry {
		t.Errorf("deny in any NetworkPolicy wins: %+v", r.Listeners)
	}
	if len(r.GlobalAllow) != 1 {
		t.Errorf("global allow = %v", r.GlobalAllow)
	}
}

func userspaceDatapath(t *testing.T) *xdp.Datapath {
	// No such interface: the datapath falls back to userspace, also as root.
	d, err := xdp.New(xdp.Config{Ifaces: []string{"pc-nope0"}, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if d.Kernel() {
		t.Fatal("datapath attached to a missing interface")
	}
	return d
}

func geoBlob(t *testing.T, csv string) []byte {
	t.Helper()
	tbl, err := geoip.Parse([]byte(csv), geoip.FormatDBIPCSV)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tbl.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEnforcerFollowsState: commits reach the datapath's decision within a
// second (in practice: at once); revoking and expiring keys remove their IP.
func TestEnforcerFollowsState(t *testing.T) {
	n := newNode(t)
	d := userspaceDatapath(t)
	e, err := New(Config{State: n.store, Datapath: d, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	dst := netip.MustParseAddrPort("10.77.0.1:9001")
	eventually := func(what, src string, want xdp.Reason) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second) // the goal is 1 s; never assert timings
		for {
			_, got := d.Policy().Allow(netip.MustParseAddr(src), dst)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s decided %v, want %v", what, src, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	n.yaml(baseDocs)
	eventually("pinning persona without keys", "10.77.0.10", xdp.ReasonPin)
	if err := n.key("k1", "bot", "10.77.0.10", time.Time{}); err != nil {
		t.Fatal(err)
	}
	eventually("key created", "10.77.0.10", xdp.ReasonPass)
	if err := n.apply(&state.Command{Op: state.OpKeyRevoke, KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	eventually("key revoked", "10.77.0.10", xdp.ReasonPin)

	if err := n.key("k2", "bot", "10.77.0.11", time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	eventually("expiring key created", "10.77.0.11", xdp.ReasonPass)
	time.Sleep(300 * time.Millisecond)
	eventually("key expired", "10.77.0.11", xdp.ReasonPin)

	// Country: a GeoIP import locates 10.77.0.20 in CN, which support does
	// not admit; 10.77.0.10 in DE.
	if err := n.key("k3", "bot", "10.77.0.20", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := n.key("k4", "bot", "10.77.0.10", time.Time{}); err != nil {
		t.Fatal(err)
	}
	eventually("pinned, unknown country allowed", "10.77.0.20", xdp.ReasonPass)
	if err := n.apply(&state.Command{Op: state.OpGeoIPImport, GeoIP: geoBlob(t, "10.77.0.0,10.77.0.15,DE\n10.77.0.16,10.77.0.31,CN\n")}); err != nil {
		t.Fatal(err)
	}
	eventually("geoip imported", "10.77.0.20", xdp.ReasonCountry)
	eventually("geoip imported", "10.77.0.10", xdp.ReasonPass)
	// A change that leaves the network rules alone republishes nothing
	// (every kernel map swap costs an RCU grace period).
	published := e.published.Load()
	n.yaml("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: other}\nspec: {url: \"http://127.0.0.1:2/mcp\"}\n")
	deadline := time.Now().Add(15 * time.Second)
	for e.Index() != n.index && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.Index() != n.index {
		t.Errorf("enforcer at state %d, want %d", e.Index(), n.index)
	}
	if e.published.Load() != published {
		t.Errorf("an unrelated change republished the rules")
	}
	if l, ok := e.Listen("support"); !ok || l != dst {
		t.Errorf("Listen(support) = %v %v", l, ok)
	}
}

func TestGuard(t *testing.T) {
	n := newNode(t)
	n.yaml(baseDocs)
	if err := n.key("k1", "bot", "10.77.0.10", time.Time{}); err != nil {
		t.Fatal(err)
	}
	d := userspaceDatapath(t)
	e, err := New(Config{State: n.store, Datapath: d, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("served")) })
	req := func(s Surface, src, local, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.RemoteAddr = net.JoinHostPort(src, "40000")
		la := netip.MustParseAddrPort(local)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(la)))
		w := httptest.NewRecorder()
		e.Guard(s, ok).ServeHTTP(w, r)
		return w
	}
	cases := []struct {
		name           string
		s              Surface
		src, local, p  string
		status         int
		reason, bodyIn string
	}{
		{"pinned on persona listener", Persona, "10.77.0.10", "10.77.0.1:9001", "/mcp", 200, "", "served"},
		{"unpinned on persona listener", Persona, "10.77.0.11", "10.77.0.1:9001", "/mcp", 403, "pin", `"code":-32600`},
		{"cidr on persona listener", Persona, "10.77.1.5", "10.77.0.1:9001", "/mcp", 403, "cidr", "not in the persona's allowed networks"},
		{"global deny on the admin API", Admin, "198.51.100.7", "127.0.0.1:9443", "/v1/status", 403, "global_deny", `"code":"forbidden"`},
		{"admin from the appliance itself", Admin, "127.0.0.1", "127.0.0.1:9443", "/v1/status", 200, "", "served"},
		{"admin from anywhere else", Admin, "10.1.2.3", "127.0.0.1:9443", "/v1/status", 200, "", "served"},
		{"shared path judged as the persona's listener", Gateway, "10.77.0.11", "127.0.0.1:8443", "/p/support/mcp", 403, "pin", "pinned address"},
		{"shared path, pinned source", Gateway, "10.77.0.10", "127.0.0.1:8443", "/p/support/mcp", 200, "", "served"},
		{"shared path of a persona without endpoint", Gateway, "10.77.0.11", "127.0.0.1:8443", "/p/shared-only/mcp", 200, "", "served"},
		{"loopback is judged on data-plane listeners", Gateway, "127.0.0.1", "127.0.0.1:8443", "/p/lan-only/mcp", 403, "cidr", "allowed networks"},
		{"persona without endpoint: its rules on the shared path", Gateway, "192.0.2.1", "127.0.0.1:8443", "/p/lan-only/mcp", 403, "cidr", "allowed networks"},
		{"persona without endpoint: admitted source", Gateway, "10.1.1.1", "127.0.0.1:8443", "/p/lan-only/mcp", 200, "", "served"},
		{"global deny on the shared gateway", Gateway, "198.51.100.7", "127.0.0.1:8443", "/p/shared-only/mcp", 403, "global_deny", "global deny list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := req(c.s, c.src, c.local, c.p)
			if w.Code != c.status || w.Header().Get("X-Portcullis-Network-Reason") != c.reason || !strings.Contains(w.Body.String(), c.bodyIn) {
				t.Fatalf("%d %q %s", w.Code, w.Header().Get("X-Portcullis-Network-Reason"), w.Body)
			}
			if c.status == 403 && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("refusal is not JSON: %s", w.Body)
			}
		})
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Userspace["pin"] != 2 || st.Userspace["global_deny"] != 2 || st.Userspace["cidr"] != 1 { // shared-only personas are judged apart
		t.Errorf("userspace counters %v", st.Userspace)
	}
	if e.refused[Gateway].Load() != 4 || e.refused[Admin].Load() != 1 || e.refused[Persona].Load() != 2 {
		t.Errorf("refused by surface: admin %d gateway %d persona %d", e.refused[Admin].Load(), e.refused[Gateway].Load(), e.refused[Persona].Load())
	}
}

// Until the node's state is complete (after a restart it is the last
// snapshot, without later revocations and deny rules), the data-plane
// surfaces answer 503 and judge nothing; the admin surface stays open.
func TestGuardRefusesUntilReady(t *testing.T) {
	n := newNode(t)
	n.yaml(baseDocs)
	var ready atomic.Bool
	e, err := New(Config{State: n.store, Datapath: userspaceDatapath(t), Logger: logger(t), Ready: ready.Load})
	if err != nil {
		t.Fatal(err)
	}
	served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("served")) })
	do := func(s Surface, src, local, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.RemoteAddr = net.JoinHostPort(src, "40000")
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local))))
		w := httptest.NewRecorder()
		e.Guard(s, served).ServeHTTP(w, r)
		return w
	}
	for _, s := range []Surface{Gateway, Persona} {
		w := do(s, "10.1.1.1", "127.0.0.1:8443", "/p/shared-only/mcp")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "starting") || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%v before ready: %d %s", s, w.Code, w.Body)
		}
	}
	if w := do(Admin, "10.1.2.3", "127.0.0.1:9443", "/v1/status"); w.Code != 200 {
		t.Fatalf("admin before ready: %d %s", w.Code, w.Body)
	}
	ready.Store(true)
	if w := do(Gateway, "10.1.1.1", "127.0.0.1:8443", "/p/shared-only/mcp"); w.Code != 200 {
		t.Fatalf("gateway once ready: %d %s", w.Code, w.Body)
	}
}

type applierFunc func(context.Context, []byte) (any, error)

func (f applierFunc) Apply(ctx context.Context, b []byte) (any, error) { return f(ctx, b) }

func TestImportHandler(t *testing.T) {
	n := newNode(t)
	h := ImportHandler(applierFunc(func(_ context.Context, b []byte) (any, error) {
		cmd, err := state.DecodeCommand(b)
		if err != nil {
			return nil, err
		}
		return nil, n.apply(cmd)
	}), nil)
	post := func(query, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/geoip"+query, bytes.NewBufferString(body)))
		return w
	}
	for _, c := range []struct{ query, body, code, msg string }{
		{"", "", "bad_request", "the body must be the GeoIP database file"},
		{"?format=xml", "x", "bad_request", "xml"},
		{"", "1.0.0.0,1.0.0.255,Australia\n", "invalid", "line 1"},
	} {
		w := post(c.query, c.body)
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error.Code != c.code || !strings.Contains(env.Error.Message, c.msg) {
			t.Errorf("%q %q: %d %s", c.query, c.body, w.Code, w.Body)
		}
	}
	if n.store.Current().GeoIP != nil {
		t.Fatal("a refused import changed the state")
	}
	w := post("", "1.0.0.0,1.0.0.255,AU\n2001:db8::,2001:db8::ffff,DE\n")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"ranges":2`) {
		t.Fatalf("import: %d %s", w.Code, w.Body)
	}
	tbl, err := geoip.Decode(n.store.Current().GeoIP)
	if err != nil || tbl.Lookup(netip.MustParseAddr("2001:db8::1")).String() != "DE" {
		t.Fatalf("replicated table: %v", err)
	}
}
