package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/state"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fixture is an admin API over a real single-node raft cluster.
type fixture struct {
	t     testing.TB
	srv   *httptest.Server
	store *state.Store
	token string
	ready atomic.Bool
	cfg   Config
}

func newFixture(t testing.TB, mut ...func(*Config)) *fixture {
	t.Helper()
	log := testLogger(t)
	store := state.NewStore(log)
	node, err := cluster.New(cluster.Config{
		NodeID: "api-test", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", FSM: store, Logger: log, Bootstrap: true,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := node.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: store, token: randomToken(t)}
	f.ready.Store(true)
	cfg := Config{Store: store, Cluster: node, AdminToken: f.token, Logger: log, Ready: f.ready.Load}
	for _, m := range mut {
		m(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.srv = httptest.NewServer(a)
	t.Cleanup(f.srv.Close)
	return f
}

func randomToken(t testing.TB) string {
	b := make([]byte, 32)
	rand.Read(b)
	return "pcadm_" + base64.RawURLEncoding.EncodeToString(b)
}

type response struct {
	status int
	body   map[string]any
	raw    []byte
	header http.Header
}

func (f *fixture) do(method, path, contentType string, body []byte) response {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	return f.send(req)
}

func (f *fixture) send(req *http.Request) response {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, raw: raw, header: resp.Header}
	json.Unmarshal(raw, &r.body)
	return r
}

func (f *fixture) applyFiles(files ...ApplyFile) response {
	b, _ := json.Marshal(ApplyRequest{Files: files})
	return f.do(http.MethodPost, "/v1/apply", "application/json", b)
}

func (r response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r response) results() []string {
	var out []string
	l, _ := r.body["results"].([]any)
	for _, x := range l {
		m := x.(map[string]any)
		out = append(out, m["kind"].(string)+"/"+m["name"].(string)+" "+m["action"].(string))
	}
	return out
}

func example(t testing.TB) string {
	b, err := os.ReadFile("../state/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHealthzAndAuth(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz without a token: %v %v, want 200", resp.StatusCode, err)
	}
	f.ready.Store(false)
	if resp, _ := http.Get(f.srv.URL + "/healthz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz before ready: %d, want 503", resp.StatusCode)
	}
	f.ready.Store(true)

	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/upstreams", nil)
	r := f.send(req)
	if r.status != 401 || r.errCode() != CodeUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %s", r.status, r.raw)
	}
	req.Header.Set("Authorization", "Bearer "+f.token+"x")
	r = f.send(req)
	if r.status != 401 || r.errCode() != CodeUnauthorized {
		t.Fatalf("wrong token: %d %s", r.status, r.raw)
	}
	if strings.Contains(string(r.raw), f.token) {
		t.Fatal("the error echoes the token")
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	if r = f.send(req); r.status != 200 {
		t.Fatalf("right token: %d %s", r.status, r.raw)
	}
}

func TestApplyGetDelete(t *testing.T) {
	f := newFixture(t)
	r := f.applyFiles(ApplyFile{Name: "example.yaml", Content: example(t)})
	if r.status != 200 {
		t.Fatalf("apply: %d %s", r.status, r.raw)
	}
	want := "Upstream/helpdesk created,Skill/read-tickets created,Persona/support-triage created,Agent/triage-bot created"
	if got := strings.Join(r.results(), ","); got != want {
		t.Fatalf("apply results = %s, want %s", got, want)
	}

	// Lists and shows what was applied.
	r = f.do("GET", "/v1/personas", "", nil)
	items, _ := r.body["items"].([]any)
	if r.status != 200 || len(items) != 1 {
		t.Fatalf("list personas: %d %s", r.status, r.raw)
	}
	r = f.do("GET", "/v1/skill/read-tickets", "", nil)
	if r.status != 200 || r.body["kind"] != "Skill" {
		t.Fatalf("get skill: %d %s", r.status, r.raw)
	}
	// What get returns applies again, unchanged (here as a JSON document).
	r = f.do("POST", "/v1/apply?file=got.json", "application/json", r.raw)
	if got := strings.Join(r.results(), ","); r.status != 200 || got != "Skill/read-tickets unchanged" {
		t.Fatalf("re-apply of get output: %d %s", r.status, r.raw)
	}

	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/widgets", 404, CodeNotFound},
		{"/v1/upstreams/nope", 404, CodeNotFound},
	} {
		if r := f.do("GET", c.path, "", nil); r.status != c.status || r.errCode() != c.code {
			t.Errorf("GET %s: %d %s, want %d %s", c.path, r.status, r.raw, c.status, c.code)
		}
	}

	// Deleting what is still referenced is refused, naming the referrer.
	r = f.do("DELETE", "/v1/personas/support-triage", "", nil)
	if r.status != 409 || r.errCode() != CodeConflict || !strings.Contains(string(r.raw), "Agent triage-bot") {
		t.Fatalf("delete referenced persona: %d %s", r.status, r.raw)
	}
	if f.store.Current().Personas["support-triage"] == nil {
		t.Fatal("refused delete removed the persona")
	}
	r = f.do("DELETE", "/v1/agents/triage-bot", "", nil)
	if r.status != 200 || f.store.Current().Agents["triage-bot"] != nil {
		t.Fatalf("delete agent: %d %s", r.status, r.raw)
	}
	if r := f.do("DELETE", "/v1/agents/triage-bot", "", nil); r.status != 404 {
		t.Fatalf("delete twice: %d %s", r.status, r.raw)
	}
	if r := f.do("DELETE", "/v1/personas/support-triage", "", nil); r.status != 200 {
		t.Fatalf("delete persona after its agent: %d %s", r.status, r.raw)
	}
}

func TestApplyIsAllOrNothingAcrossFiles(t *testing.T) {
	f := newFixture(t)
	good := ApplyFile{Name: "good.yaml", Content: example(t)}
	bad := ApplyFile{Name: "bad.yaml", Content: `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: crm}
spec: {url: "http://127.0.0.1:9102/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: crm-read}
spec:
  tools:
    - tool: crm/get_account
      args: {id: {regex: "([a-z"}}
`}
	r := f.applyFiles(good, bad)
	if r.status != 422 || r.errCode() != CodeInvalid {
		t.Fatalf("apply with a broken document: %d %s", r.status, r.raw)
	}
	details := r.body["error"].(map[string]any)["details"].([]any)
	p := details[0].(map[string]any)
	if p["file"] != "bad.yaml" || p["document"] != 2.0 || p["field"] != "spec.tools[0].args.id.regex" || p["line"] == nil {
		t.Fatalf("problem not located precisely: %v", p)
	}
	if n := f.store.Current().Index; n != 0 && len(f.store.Current().Upstreams) != 0 {
		t.Fatalf("something was applied: %d upstreams", len(f.store.Current().Upstreams))
	}

	// A reference to an object that exists nowhere is reported at its
	// document, and nothing of the request is applied either.
	dangling := ApplyFile{Name: "persona.yaml", Content: `apiVersion: portcullis/v1
kind: Persona
metadata: {name: ops}
spec: {skills: [read-tickets, deploy]}
`}
	r = f.applyFiles(good, dangling)
	if r.status != 422 {
		t.Fatalf("dangling reference: %d %s", r.status, r.raw)
	}
	p = r.body["error"].(map[string]any)["details"].([]any)[0].(map[string]any)
	if p["file"] != "persona.yaml" || p["document"] != 1.0 || p["field"] != "spec.skills[1]" || p["line"] != 4.0 ||
		!strings.HasPrefix(p["error"].(string), "persona.yaml:4: document 1 (Persona ops): spec.skills[1]: ") {
		t.Fatalf("reference problem not located: %v", p)
	}
	if len(f.store.Current().Upstreams) != 0 {
		t.Fatal("a request with a dangling reference applied objects")
	}

	// Order of files does not matter: the persona file first works.
	fixed := ApplyFile{Name: "persona.yaml", Content: strings.Replace(dangling.Content, ", deploy", "", 1)}
	if r := f.applyFiles(fixed, good); r.status != 200 {
		t.Fatalf("apply with the persona file first: %d %s", r.status, r.raw)
	}

	// The same object in two files is refused.
	r = f.applyFiles(good, ApplyFile{Name: "again.yaml", Content: example(t)})
	if r.status != 422 || !strings.Contains(string(r.raw), "good.yaml document 1") {
		t.Fatalf("duplicate across files: %d %s", r.status, r.raw)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	b, _ := json.Marshal(ApplyRequest{Files: []ApplyFile{{Name: "x.yaml", Content: example(t)}}, DryRun: true})
	r := f.do("POST", "/v1/apply", "application/json", b)
	if r.status != 200 || len(r.results()) != 4 || r.body["dryRun"] != true {
		t.Fatalf("dry run: %d %s", r.status, r.raw)
	}
	if len(f.store.Current().Upstreams) != 0 {
		t.Fatal("dry run applied objects")
	}
}

func TestBadApplyBodies(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	for name, c := range map[string]struct {
		ct, body string
		status   int
	}{
		"not json":    {"application/json", "{", 400},
		"no files":    {"application/json", `{"files":[]}`, 400},
		"empty yaml":  {"application/yaml", "", 422},
		"yaml syntax": {"application/yaml", "kind: [", 422},
		"too large":   {"application/yaml", strings.Repeat("#", 2048), 413},
	} {
		r := f.do("POST", "/v1/apply", c.ct, []byte(c.body))
		if r.status != c.status || r.errCode() == "" {
			t.Errorf("%s: %d %s, want %d with an error code", name, r.status, r.raw, c.status)
		}
	}
}

func TestAgentKeys(t *testing.T) {
	f := newFixture(t)
	if r := f.applyFiles(ApplyFile{Name: "e.yaml", Content: example(t)}); r.status != 200 {
		t.Fatal(string(r.raw))
	}
	r := f.do("POST", "/v1/agents/triage-bot/keys", "application/json", nil)
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.raw)
	}
	token, _ := r.body["key"].(string)
	id, _ := r.body["id"].(string)
	if !strings.HasPrefix(token, authn.KeyPrefix+id+"_") || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create key answer: %s", r.raw)
	}

	// The key authenticates as the agent, in its persona.
	auth := &authn.APIKeys{State: f.store}
	req := httptest.NewRequest("POST", "/p/support-triage/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	p, err := auth.Authenticate(req)
	if err != nil || p.Agent != "triage-bot" || p.Persona != "support-triage" {
		t.Fatalf("authenticate with the new key: %+v %v", p, err)
	}

	// Listing never shows the key or its hash.
	r = f.do("GET", "/v1/agents/triage-bot/keys", "", nil)
	if r.status != 200 || strings.Contains(string(r.raw), token[len(token)-20:]) || strings.Contains(string(r.raw), "hash") {
		t.Fatalf("list keys: %d %s", r.status, r.raw)
	}
	if items := r.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Fatalf("list keys: %s", r.raw)
	}

	if r := f.do("POST", "/v1/agents/nobody/keys", "application/json", nil); r.status != 404 {
		t.Fatalf("key for unknown agent: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/v1/agents/triage-bot/keys", "application/json", []byte(`{"expiresIn":"soon"}`)); r.status != 400 {
		t.Fatalf("bad expiry: %d %s", r.status, r.raw)
	}
	// A misspelt field must not make a key that never expires.
	before := len(f.store.Current().Keys)
	if r := f.do("POST", "/v1/agents/triage-bot/keys", "application/json", []byte(`{"expiresln":"1h"}`)); r.status != 400 || !strings.Contains(string(r.raw), "expiresln") {
		t.Fatalf("unknown field in a key request: %d %s", r.status, r.raw)
	}
	if n := len(f.store.Current().Keys); n != before {
		t.Fatalf("a refused key request created a key (%d → %d)", before, n)
	}
	r = f.do("POST", "/v1/agents/triage-bot/keys", "application/json", []byte(`{"expiresIn":"1h","pinIP":"127.0.0.1"}`))
	if r.status != 201 || r.body["expiresAt"] == nil || r.body["pinIP"] != "127.0.0.1" {
		t.Fatalf("key with expiry and pin: %d %s", r.status, r.raw)
	}

	// Revoking makes the key useless at once.
	if r := f.do("DELETE", "/v1/agents/triage-bot/keys/"+id, "", nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if _, err := auth.Authenticate(req); err == nil {
		t.Fatal("a revoked key still authenticates")
	}
	if r := f.do("DELETE", "/v1/agents/triage-bot/keys/"+id, "", nil); r.status != 404 {
		t.Fatalf("revoke twice: %d %s", r.status, r.raw)
	}
}

func TestPersonaDraft(t *testing.T) {
	f := newFixture(t)
	if r := f.do("POST", "/v1/personas/draft", "application/json", []byte(`{"description":"reads tickets"}`)); r.status != 501 {
		t.Fatalf("draft without a drafter: %d %s", r.status, r.raw)
	}
	var got string
	f = newFixture(t, func(c *Config) {
		c.Drafter = func(_ context.Context, d string, _ *state.Snapshot) (any, error) {
			got = d
			return map[string]any{"documents": []any{}, "notes": []string{"ok"}}, nil
		}
	})
	r := f.do("POST", "/v1/personas/draft", "application/json", []byte(`{"description":"reads tickets"}`))
	if r.status != 200 || got != "reads tickets" {
		t.Fatalf("draft: %d %s (drafter got %q)", r.status, r.raw, got)
	}
	for _, body := range []string{`{}`, `{"description":"     "}`, `{"description":" \n\t x "}`} {
		got = ""
		if r := f.do("POST", "/v1/personas/draft", "application/json", []byte(body)); r.status != 400 || got != "" {
			t.Fatalf("draft with description %s: %d %s (drafter got %q)", body, r.status, r.raw, got)
		}
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t)
	r := f.do("GET", "/v1/status", "", nil)
	raft, _ := r.body["raft"].(map[string]any)
	if r.status != 200 || raft["state"] != "Leader" {
		t.Fatalf("status: %d %s", r.status, r.raw)
	}
}

func TestExtraRoutes(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Routes = []Route{{Method: "GET", Path: "/xdp/stats", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"packets":1}`))
		})}}
	})
	if r := f.do("GET", "/v1/xdp/stats", "", nil); r.status != 200 || r.body["packets"] != 1.0 {
		t.Fatalf("extra route: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/xdp/stats", nil)
	if r := f.send(req); r.status != 401 {
		t.Fatalf("extra route without the admin token: %d", r.status)
	}
	cfg := f.cfg
	cfg.Routes = []Route{{Method: "GET", Path: "/status", Handler: http.NotFoundHandler()}}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "/v1/status") {
		t.Fatalf("conflicting route: %v, want an error naming it", err)
	}
	cfg.Routes, cfg.Cluster = nil, nil
	if _, err := New(cfg); err == nil {
		t.Fatal("New without a cluster accepted")
	}
}

// TestApplyRequestRefusesUnknownFields checks that a misspelt option of the
// JSON apply request is an error, not silently ignored: "dry_run" must not
// apply for real.
func TestApplyRequestRefusesUnknownFields(t *testing.T) {
	f := newFixture(t)
	body, _ := json.Marshal(map[string]any{"files": []ApplyFile{{Name: "e.yaml", Content: example(t)}}, "dry_run": true})
	r := f.do("POST", "/v1/apply", "application/json", body)
	if r.status != 400 || r.errCode() != CodeBadRequest || !strings.Contains(string(r.raw), "dry_run") {
		t.Fatalf("apply request with an unknown field: %d %s", r.status, r.raw)
	}
	if n := len(f.store.Current().Upstreams); n != 0 {
		t.Fatalf("a refused request applied %d upstreams", n)
	}
}

// TestKeyRefusalIsPlain checks that a key the state refuses (an unpinned key
// for a persona that pins credentials) is explained as such, not as a
// problem "in the documents".
func TestKeyRefusalIsPlain(t *testing.T) {
	f := newFixture(t)
	pinned := strings.Replace(example(t), "skills: [read-tickets]", "skills: [read-tickets]\n  network: {pinTokensToIP: true}", 1)
	if pinned == example(t) {
		t.Fatal("example persona not found to pin")
	}
	if r := f.applyFiles(ApplyFile{Name: "e.yaml", Content: pinned}); r.status != 200 {
		t.Fatal(string(r.raw))
	}
	r := f.do("POST", "/v1/agents/triage-bot/keys", "application/json", nil)
	msg, _ := r.body["error"].(map[string]any)["message"].(string)
	if r.status != 422 || r.errCode() != CodeInvalid || strings.Contains(msg, "documents") ||
		!strings.Contains(msg, `cannot create a key for agent "triage-bot": persona "support-triage" pins every credential`) {
		t.Fatalf("unpinned key for a pinning persona: %d %s", r.status, r.raw)
	}
	if len(f.store.Current().Keys) != 0 {
		t.Fatal("a refused key was stored")
	}
}

// TestApplyJSONList checks that a JSON list of documents, sent as JSON,
// is applied as documents rather than refused as a malformed apply request.
func TestApplyJSONList(t *testing.T) {
	f := newFixture(t)
	body := `[{"apiVersion":"portcullis/v1","kind":"Upstream","metadata":{"name":"a"},"spec":{"url":"http://127.0.0.1:1/mcp"}},
	          {"apiVersion":"portcullis/v1","kind":"Upstream","metadata":{"name":"b"},"spec":{"url":"http://127.0.0.1:2/mcp"}}]`
	if r := f.do("POST", "/v1/apply", "application/json", []byte(body)); r.status != 200 {
		t.Fatalf("apply of a JSON list: %d %s", r.status, r.raw)
	}
	if n := len(f.store.Current().Upstreams); n != 2 {
		t.Fatalf("%d upstreams after applying a list of 2", n)
	}
}

// cancelledCluster fails every write as a cluster does when the request's
// context ends before the entry commits.
type cancelledCluster struct{}

func (cancelledCluster) Apply(ctx context.Context, _ []byte) (any, error) {
	return nil, fmt.Errorf("cluster: apply: %w", context.Canceled)
}
func (cancelledCluster) Status() cluster.Status { return cluster.Status{} }

// TestCancelledWriteIsNotAServerError checks that a write whose client went
// away is answered as unavailable (it may still commit) and not logged as an
// internal failure.
func TestCancelledWriteIsNotAServerError(t *testing.T) {
	var logs syncLog
	store := state.NewStore(nil)
	a, err := New(Config{Store: store, Cluster: cancelledCluster{}, AdminToken: strings.Repeat("t", 20),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/v1/apply", strings.NewReader(example(t)))
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 20))
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"unavailable"`) {
		t.Fatalf("cancelled write: %d %s", w.Code, w.Body)
	}
	if logs.String() != "" {
		t.Fatalf("cancelled write logged as an error: %s", logs.String())
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
