package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

type fixed struct{ s *state.Snapshot }

func (f fixed) Current() *state.Snapshot { return f.s }

func setup(t *testing.T) (*APIKeys, string, *state.Snapshot) {
	tok, key, err := NewAPIKey("bot", nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := &state.Snapshot{
		Agents: map[string]*state.Agent{"bot": {Meta: state.Meta{Name: "bot"}, Persona: "triage"}},
		Keys:   map[string]*state.APIKey{key.ID: key},
	}
	return &APIKeys{State: fixed{snap}}, tok, snap
}

func req(auth string) *httptestReq {
	r := httptest.NewRequest("POST", "/p/triage/mcp", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	r.RemoteAddr = "10.1.2.3:5555"
	return &httptestReq{r}
}

type httptestReq struct{ httpRequest *http.Request }

func TestAPIKeys(t *testing.T) {
	a, tok, snap := setup(t)
	p, err := a.Authenticate(req("Bearer " + tok).httpRequest)
	if err != nil {
		t.Fatal(err)
	}
	if p.Agent != "bot" || p.Persona != "triage" || p.ClientIP.String() != "10.1.2.3" || p.KeyID == "" {
		t.Fatalf("principal %+v", p)
	}
	bad := []struct{ auth, want string }{
		{"", "missing bearer token"},
		{"Basic abc", "Authorization must be"},
		{"Bearer nope", "malformed API key"},
		{"Bearer " + tok[:len(tok)-1] + "x", "unknown or revoked"},
	}
	for _, b := range bad {
		_, err := a.Authenticate(req(b.auth).httpRequest)
		if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: err %v, want %q", b.auth, err, b.want)
		}
		if strings.Contains(err.Error(), tok[20:]) {
			t.Errorf("error leaks the secret")
		}
		if c := Challenge(err); !strings.HasPrefix(c, "Bearer realm=") {
			t.Errorf("challenge %q", c)
		}
	}
	for _, k := range snap.Keys {
		k.Expires = time.Now().Add(-time.Second)
	}
	if _, err := a.Authenticate(req("Bearer " + tok).httpRequest); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired key: %v", err)
	}
	for _, k := range snap.Keys {
		k.Expires = time.Time{}
		k.PinIP = "10.9.9.9"
	}
	if _, err := a.Authenticate(req("Bearer " + tok).httpRequest); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("pinned key from elsewhere: %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	tok, _, _ := NewAPIKey("a", nil)
	f.Add(tok)
	f.Add("pck__")
	f.Fuzz(func(t *testing.T, s string) {
		id, sec, ok := parseKey(s)
		if ok && KeyPrefix+id+"_"+sec != s {
			t.Fatalf("parseKey(%q) lost bytes", s)
		}
	})
}
