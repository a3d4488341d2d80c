package credential

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is a real HTTP server that records what it received.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
	// reject, if set, answers 401 to requests it returns true for.
	reject func(*http.Request) bool
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.body = append(u.body, string(b))
		reject := u.reject
		u.mu.Unlock()
		if reject != nil && reject(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func newTransport(t *testing.T, s *store, spec Spec, mod func(*Config)) (*Transport, *logCapture) {
	t.Helper()
	log, capture := newLogCapture(t)
	cfg := Config{Upstream: "helpdesk", Spec: spec, Unsealer: s.unsealer(), Logger: log}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, capture
}

// agentRequest is what the gateway forwards: it may carry the agent's own
// credentials, which must never reach the upstream.
func agentRequest(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer pc_agent_token")
	req.Header.Set("X-API-Key", "agent-supplied")
	return req
}

func do(t *testing.T, tr http.RoundTripper, req *http.Request) (*http.Response, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return resp, err
}

func TestHeaderInjection(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t)
	s.put(t, "helpdesk-token", secret)
	up := newUpstream(t)
	tr, logs := newTransport(t, s, Spec{Secret: "helpdesk-token", Header: "Authorization", Format: "Bearer {secret}"}, nil)

	req := agentRequest(t, up.URL+"/mcp")
	resp, err := do(t, tr, req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("call: %v %v", resp, err)
	}
	got := up.last(t)
	if h := got.Header.Values("Authorization"); len(h) != 1 || h[0] != "Bearer "+secret {
		t.Fatalf("upstream Authorization = %q, want the stored secret", h)
	}
	if req.Header.Get("Authorization") != "Bearer pc_agent_token" {
		t.Fatal("RoundTrip modified the caller's request")
	}
	if up.body[0] == "" {
		t.Fatal("body lost")
	}
	logs.assertAbsent(t, secret)
}

func TestCustomHeaderReplacesAgentValue(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t)
	s.put(t, "k", secret)
	up := newUpstream(t)
	tr, _ := newTransport(t, s, Spec{Secret: "k", Header: "X-API-Key"}, nil)
	if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
		t.Fatal(err)
	}
	got := up.last(t)
	if v := got.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != secret {
		t.Fatalf("X-API-Key = %q", v)
	}
	if got.Header.Get("Authorization") != "" {
		t.Fatal("the agent's Authorization reached the upstream")
	}
}

func TestQueryInjection(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t) + "&x=y" // must be encoded, not split
	s.put(t, "maps-key", secret)
	up := newUpstream(t)
	tr, logs := newTransport(t, s, Spec{Secret: "maps-key", Query: "key"}, nil)
	req := agentRequest(t, up.URL+"/geo?q=paris&key=agent-supplied")
	if _, err := do(t, tr, req); err != nil {
		t.Fatal(err)
	}
	q := up.last(t).URL.Query()
	if v := q["key"]; len(v) != 1 || v[0] != secret {
		t.Fatalf("key = %q, want only the stored secret", v)
	}
	if q.Get("q") != "paris" || q.Has("x") {
		t.Fatalf("query = %v", q)
	}
	if req.URL.Query().Get("key") != "agent-supplied" {
		t.Fatal("RoundTrip modified the caller's URL")
	}
	logs.assertAbsent(t, secret)
}

func TestBasicAuth(t *testing.T) {
	s := newStore(t, "")
	user, pass := "svc-"+canary(t)[7:15], canary(t)
	s.put(t, "crm-user", user)
	s.put(t, "crm-pw", pass)
	up := newUpstream(t)
	for name, spec := range map[string]Spec{
		"plain username":  {Basic: &Basic{Username: user, PasswordSecret: "crm-pw"}},
		"secret username": {Basic: &Basic{UsernameSecret: "crm-user", PasswordSecret: "crm-pw"}},
	} {
		t.Run(name, func(t *testing.T) {
			tr, logs := newTransport(t, s, spec, nil)
			if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
				t.Fatal(err)
			}
			u, p, ok := up.last(t).BasicAuth()
			if !ok || u != user || p != pass {
				t.Fatalf("upstream Basic auth = %q %v", u, ok)
			}
			logs.assertAbsent(t, pass, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		})
	}
}

func TestMissingSecretFailsClosed(t *testing.T) {
	s := newStore(t, "")
	up := newUpstream(t)
	tr, _ := newTransport(t, s, Spec{Secret: "absent", Header: "Authorization"}, nil)
	_, err := do(t, tr, agentRequest(t, up.URL))
	if !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("err = %v, want ErrSecretNotFound", err)
	}
	if up.count() != 0 {
		t.Fatal("the request went out without its credential")
	}
}

func TestBadSecretValueRejected(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t)
	s.put(t, "k", secret+"\r\nX-Injected: 1")
	up := newUpstream(t)
	tr, _ := newTransport(t, s, Spec{Secret: "k", Header: "X-API-Key"}, nil)
	_, err := do(t, tr, agentRequest(t, up.URL))
	if !errors.Is(err, ErrBadSecret) || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v, want ErrBadSecret without the value", err)
	}
	if up.count() != 0 {
		t.Fatal("request sent")
	}
}

// TestCacheSingleFlightAndZeroing: many concurrent first calls unseal once;
// the cached plaintext is zeroed when its TTL ends.
func TestCacheSingleFlightAndZeroing(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t)
	s.put(t, "k", secret)
	up := newUpstream(t)
	var unseals atomic.Int32
	counting := countingUnsealer{s.unsealer(), &unseals}
	tr, _ := newTransport(t, s, Spec{Secret: "k", Header: "X-API-Key"}, func(c *Config) {
		c.Unsealer = counting
		c.CacheTTL = 300 * time.Millisecond
	})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := unseals.Load(); n != 1 {
		t.Fatalf("%d unseals for 50 concurrent calls, want 1", n)
	}
	tr.mu.Lock()
	e := tr.cache["k"]
	val := e.val
	tr.mu.Unlock()
	if string(val) != secret {
		t.Fatal("cache does not hold the secret")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.mu.Lock()
		_, still := tr.cache["k"]
		tr.mu.Unlock()
		if !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cache entry outlived its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, b := range val {
		if b != 0 {
			t.Fatal("expired plaintext was not zeroed")
		}
	}
	if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
		t.Fatal(err)
	}
	if n := unseals.Load(); n != 2 {
		t.Fatalf("%d unseals after expiry, want 2", n)
	}
}

// TestNewVersionUsedAtOnce: after `secret put` stores a new version, the
// next request carries it, without waiting for the cache to expire.
func TestNewVersionUsedAtOnce(t *testing.T) {
	s := newStore(t, "")
	v1, v2 := canary(t), canary(t)
	s.put(t, "helpdesk-token", v1)
	up := newUpstream(t)
	tr, logs := newTransport(t, s, Spec{Secret: "helpdesk-token"}, nil) // defaults: Authorization: Bearer
	if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
		t.Fatal(err)
	}
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+v1 {
		t.Fatal("default header/format not applied")
	}
	s.put(t, "helpdesk-token", v2)
	if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
		t.Fatal(err)
	}
	if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+v2 {
		t.Fatal("the old version was used after a put")
	}
	logs.assertAbsent(t, v1, v2)
}

type countingUnsealer struct {
	KeystoreUnsealer
	n *atomic.Int32
}

func (c countingUnsealer) Unseal(ctx context.Context, name string) ([]byte, uint64, error) {
	c.n.Add(1)
	return c.KeystoreUnsealer.Unseal(ctx, name)
}

// idp is a real OAuth 2.0 token endpoint (client-credentials grant).
type idp struct {
	*httptest.Server
	fetches  atomic.Int32
	lifetime atomic.Int64 // seconds
	fail     atomic.Bool
	mu       sync.Mutex
	issued   []string
	lastForm map[string][]string
	lastUser string
	lastPass string
}

func newIDP(t *testing.T, clientID, clientSecret string) *idp {
	p := &idp{}
	p.lifetime.Store(3600)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad", 400)
			return
		}
		user, pass, basic := r.BasicAuth()
		if !basic {
			user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		p.lastForm, p.lastUser, p.lastPass = r.PostForm, user, pass
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if p.fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		if r.PostForm.Get("grant_type") != "client_credentials" || user != clientID || pass != clientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		n := p.fetches.Add(1)
		tok := fmt.Sprintf("at-%d-%s", n, clientSecret[len(clientSecret)-6:])
		p.mu.Lock()
		p.issued = append(p.issued, tok)
		p.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": p.lifetime.Load()})
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *idp) valid(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.issued {
		if "Bearer "+t == tok {
			return true
		}
	}
	return false
}

func TestOAuth2ClientCredentials(t *testing.T) {
	s := newStore(t, "")
	cs := canary(t)
	s.put(t, "crm-client-secret", cs)
	p := newIDP(t, "portcullis", cs)
	up := newUpstream(t)
	up.reject = func(r *http.Request) bool { return !p.valid(r.Header.Get("Authorization")) }
	spec := Spec{OAuth2: &OAuth2{TokenURL: p.URL + "/token", ClientID: "portcullis", ClientSecret: "crm-client-secret", Scopes: []string{"tickets.read", "tickets.write"}, Audience: "crm"}}
	tr, logs := newTransport(t, s, spec, nil)

	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			resp, err := do(t, tr, agentRequest(t, up.URL))
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("call: %v %v", resp, err)
			}
		})
	}
	wg.Wait()
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d token fetches for 40 concurrent calls, want 1", n)
	}
	p.mu.Lock()
	form := p.lastForm
	p.mu.Unlock()
	if form["scope"][0] != "tickets.read tickets.write" || form["audience"][0] != "crm" {
		t.Fatalf("token request form = %v", form)
	}
	if _, has := form["client_secret"]; has {
		t.Fatal("client secret sent in the body with basic auth style")
	}

	// The upstream revokes the token: the transport gets a new one and
	// retries once, transparently.
	p.mu.Lock()
	p.issued = nil
	p.mu.Unlock()
	resp, err := do(t, tr, agentRequest(t, up.URL))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after revocation: %v %v", resp, err)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after revocation, want 2", n)
	}
	logs.assertAbsent(t, cs)
	for _, h := range []string{"Authorization"} {
		if strings.Contains(up.last(t).Header.Get(h), "pc_agent_token") {
			t.Fatal("agent token reached the upstream")
		}
	}
}

func TestOAuth2RefreshBeforeExpiry(t *testing.T) {
	s := newStore(t, "")
	cs := canary(t)
	s.put(t, "cs", cs)
	p := newIDP(t, "pc", cs)
	p.lifetime.Store(5) // refresh after 4s, expiry at 5s
	up := newUpstream(t)
	tr, _ := newTransport(t, s, Spec{OAuth2: &OAuth2{TokenURL: p.URL, ClientID: "pc", ClientSecret: "cs", AuthStyle: "body"}}, nil)
	if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
		t.Fatal(err)
	}
	first := up.last(t).Header.Get("Authorization")
	time.Sleep(4200 * time.Millisecond)
	// Still valid: used at once, and a refresh starts in the background.
	if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
		t.Fatal(err)
	}
	if got := up.last(t).Header.Get("Authorization"); got != first {
		t.Fatal("a still-valid token was not used while refreshing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.fetches.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no refresh before expiry")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	pass := p.lastPass
	p.mu.Unlock()
	if pass != cs {
		t.Fatal("body auth style did not send the client secret")
	}
	// The background fetch's token replaces the old one (no further fetch).
	for {
		if _, err := do(t, tr, agentRequest(t, up.URL)); err != nil {
			t.Fatal(err)
		}
		if up.last(t).Header.Get("Authorization") != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refreshed token not used")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("%d token fetches, want 2", n)
	}
}

func TestOAuth2EndpointFailureFailsClosed(t *testing.T) {
	s := newStore(t, "")
	cs := canary(t)
	s.put(t, "cs", cs)
	p := newIDP(t, "pc", "some-other-secret")
	up := newUpstream(t)
	tr, logs := newTransport(t, s, Spec{OAuth2: &OAuth2{TokenURL: p.URL, ClientID: "pc", ClientSecret: "cs"}}, nil)
	_, err := do(t, tr, agentRequest(t, up.URL))
	if !errors.Is(err, ErrTokenEndpoint) || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), cs) {
		t.Fatalf("err = %v, want ErrTokenEndpoint naming invalid_client", err)
	}
	p.fail.Store(true)
	if _, err := do(t, tr, agentRequest(t, up.URL)); !errors.Is(err, ErrTokenEndpoint) {
		t.Fatalf("err = %v", err)
	}
	if up.count() != 0 {
		t.Fatal("a request went upstream without a token")
	}
	logs.assertAbsent(t, cs)
}

// A token endpoint that repeats what it was sent (a misconfigured IdP, or a
// proxy in front of it) must not get the client secret into the error the
// gateway shows an agent, nor into a log line: neither through the OAuth
// error code nor through token_type.
func TestOAuth2EndpointEchoDoesNotLeakClientSecret(t *testing.T) {
	s := newStore(t, "")
	cs := canary(t)
	s.put(t, "cs", cs)
	var status atomic.Int32
	status.Store(http.StatusUnauthorized)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		_, pass, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		json.NewEncoder(w).Encode(map[string]any{"error": pass, "access_token": "at", "token_type": pass})
	}))
	t.Cleanup(echo.Close)
	up := newUpstream(t)
	tr, logs := newTransport(t, s, Spec{OAuth2: &OAuth2{TokenURL: echo.URL, ClientID: "pc", ClientSecret: "cs"}}, nil)
	for _, st := range []int{http.StatusUnauthorized, http.StatusOK} {
		status.Store(int32(st))
		_, err := do(t, tr, agentRequest(t, up.URL))
		if !errors.Is(err, ErrTokenEndpoint) {
			t.Fatalf("status %d: err = %v, want ErrTokenEndpoint", st, err)
		}
		if strings.Contains(err.Error(), cs) {
			t.Fatalf("status %d: the error repeats the client secret the endpoint echoed", st)
		}
	}
	logs.assertAbsent(t, cs)
	if up.count() != 0 {
		t.Fatal("a request went upstream without a token")
	}
}

// Whatever credential the agent's request carries (bearer token, proxy
// credentials, session cookies) never reaches the upstream, whichever form
// the upstream's own credential takes.
func TestAgentCredentialsNeverForwarded(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t)
	s.put(t, "tok", secret)
	for name, spec := range map[string]Spec{
		"header": {Secret: "tok", Header: "X-Api-Key"},
		"query":  {Secret: "tok", Query: "key"},
		"basic":  {Basic: &Basic{Username: "svc", PasswordSecret: "tok"}},
	} {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t)
			tr, _ := newTransport(t, s, spec, nil)
			req := agentRequest(t, up.URL+"/mcp")
			req.Header.Set("Proxy-Authorization", "Basic cGNfYWdlbnQ6eA==")
			req.Header.Set("Cookie", "session=pc_agent_cookie")
			if _, err := do(t, tr, req); err != nil {
				t.Fatal(err)
			}
			got := up.last(t)
			for _, h := range []string{"Proxy-Authorization", "Cookie"} {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("upstream got the agent's %s: %q", h, v)
				}
			}
			if strings.Contains(got.Header.Get("Authorization"), "pc_agent_token") {
				t.Error("upstream got the agent's bearer token")
			}
		})
	}
}

// An upstream that redirects elsewhere (compromised, or an open redirect on
// it) must not get the credential sent to the other origin: the transport
// injects only into requests for the upstream's own origin.
func TestCredentialNotSentToAnotherOrigin(t *testing.T) {
	s := newStore(t, "")
	secret := canary(t)
	s.put(t, "tok", secret)
	other := newUpstream(t)
	for name, spec := range map[string]Spec{
		"header": {Secret: "tok"},
		"query":  {Secret: "tok", Query: "key"},
	} {
		t.Run(name, func(t *testing.T) {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
			}))
			t.Cleanup(redirector.Close)
			before := other.count()
			tr, logs := newTransport(t, s, spec, func(c *Config) { c.URL = redirector.URL + "/mcp" })
			_, err := do(t, tr, agentRequest(t, redirector.URL+"/mcp"))
			if !errors.Is(err, ErrOtherOrigin) {
				t.Fatalf("err = %v, want ErrOtherOrigin", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatal("the error holds the secret")
			}
			if other.count() != before {
				t.Fatal("the request went to the other origin")
			}
			logs.assertAbsent(t, secret)
		})
	}
	// Same origin, other path: injected as usual.
	tr, _ := newTransport(t, s, Spec{Secret: "tok"}, func(c *Config) { c.URL = other.URL + "/mcp" })
	if _, err := do(t, tr, agentRequest(t, other.URL+"/messages?session=1")); err != nil {
		t.Fatal(err)
	}
	if got := other.last(t).Header.Get("Authorization"); got != "Bearer "+secret {
		t.Fatal("same-origin request without the credential")
	}
}
