package state

import (
	"errors"
	"strings"
	"testing"
)

func TestExtendedSpecsValidate(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"credential both", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {secret: s, basic: {username: a, passwordSecret: p}}\n", "spec.credential: set exactly one of secret, basic and oauth2"},
		{"credential format", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {secret: s, format: \"Token\"}\n", "spec.credential.format: must contain {secret} exactly once"},
		{"oauth2", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {oauth2: {tokenURL: nope, clientID: c, clientSecret: s}}\n", "spec.credential.oauth2.tokenURL"},
		{"oauth2 plain http", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {oauth2: {tokenURL: \"http://idp.example/token\", clientID: c, clientSecret: s}}\n", "spec.credential.oauth2.tokenURL: \"http://idp.example/token\": use https; plain http is allowed only toward a loopback address"},
		{"oauth2 userinfo", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {oauth2: {tokenURL: \"https://a:b@idp/token\", clientID: c, clientSecret: s}}\n", "spec.credential.oauth2.tokenURL: must not carry credentials"},
		{"framing header", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {secret: s, header: Content-Length}\n", "spec.credential.header: Content-Length frames the HTTP message"},
		{"query name", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {secret: s, query: \"a=b\"}\n", "spec.credential.query: \"a=b\" is not a valid query parameter name"},
		{"env", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec: {url: http://x, environment: production}\n", "spec.environment: unknown environment \"production\""},
		{"dlp category", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  dlp: [{categories: [pci, gossip], action: redact}]\n", "spec.dlp[0].categories[1]: unknown category \"gossip\""},
		{"dlp action", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  dlp: [{categories: [pci], action: shred}]\n", "spec.dlp[0].action: unknown action \"shred\""},
		{"cidr host bits", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  network: {allowCIDRs: [10.77.0.1/25]}\n", "spec.network.allowCIDRs[0]: \"10.77.0.1/25\" has host bits set (did you mean 10.77.0.0/25?)"},
		{"country", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  network: {allowCountries: [Germany]}\n", "spec.network.allowCountries[0]: \"Germany\" is not an ISO 3166-1 alpha-2"},
		{"listen", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  endpoint: {listen: \"9001\"}\n", "spec.endpoint.listen: \"9001\" is not ADDR:PORT"},
		{"limit negative", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  limits: {callsPerMinute: -1}\n", "spec.limits.callsPerMinute: -1: want 0..1000000000"},
		{"limit overflow", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  limits: {callsPerDay: 99999999999}\n", "spec.limits.callsPerDay: 99999999999: want 0..1000000000"},
		{"limit burst alone", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  limits: {burst: 5}\n", "spec.limits.burst: a burst needs callsPerMinute"},
		{"limit tool pattern", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  limits: {tools: {\"helpdesk/*\": {callsPerMinute: 5}}}\n", "spec.limits.tools[\"helpdesk/*\"]: \"helpdesk/*\" is not a tool identity upstream/tool (no patterns)"},
		{"limit tool field", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  limits: {tools: {\"helpdesk/search\": {callsPerMinute: 5, callsPerWeek: 2}}}\n", "callsPerWeek"},
		{"limit persona", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec:\n  skills: []\n  limits: {persona: {concurrency: -2}}\n", "spec.limits.persona.concurrency: -2"},
		{"upstream limit", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec: {url: http://x, limits: {callsPerHour: -5}}\n", "spec.limits.callsPerHour: -5"},
		{"breaker", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec: {url: http://x, breaker: {failures: 5000}}\n", "spec.breaker.failures: 5000: want 1..1000"},
		{"breaker cooldown", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec: {url: http://x, breaker: {cooldown: 3h}}\n", "spec.breaker.cooldown: 3h0m0s: want at most 1h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDocuments("f.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestSecretsAndPinning(t *testing.T) {
	s := NewStore(nil)
	put := func(idx uint64, name string, v uint64) error {
		_, err := applyCmd(t, s, idx, &Command{Op: OpSecretPut, Secret: &Secret{Name: name, Version: v, Sealed: []byte{1, 2, 3}}})
		return err
	}
	if err := put(1, "tok", 1); err != nil {
		t.Fatal(err)
	}
	if err := put(2, "tok", 1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if err := put(3, "tok", 2); err != nil {
		t.Fatal(err)
	}
	objs, err := ParseDocuments("f.yaml", []byte(`apiVersion: portcullis/v1
kind: Upstream
metadata: {name: u}
spec: {url: "http://x", credential: {secret: tok}}
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: v}
spec: {url: "http://x", credential: {secret: missing}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := applyObjs(t, s, 4, objs...); err == nil || !strings.Contains(err.Error(), `secret "missing" does not exist`) {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := applyObjs(t, s, 5, objs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 6, &Command{Op: OpSecretDelete, Name: "tok"}); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete used secret: %v", err)
	}

	objs, err = ParseDocuments("f.yaml", []byte(`apiVersion: portcullis/v1
kind: Persona
metadata: {name: pinned}
spec: {skills: [], network: {pinTokensToIP: true}}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: a}
spec: {persona: pinned}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := applyObjs(t, s, 7, objs...); err != nil {
		t.Fatal(err)
	}
	key := &APIKey{ID: "k", Agent: "a", Hash: make([]byte, 32)}
	if _, err := applyCmd(t, s, 8, &Command{Op: OpKeyCreate, Key: key}); err == nil || !strings.Contains(err.Error(), "--pin-ip") {
		t.Fatalf("unpinned key for pinned persona: %v", err)
	}
	key.PinIP = "10.0.0.300"
	if _, err := applyCmd(t, s, 9, &Command{Op: OpKeyCreate, Key: key}); err == nil || !strings.Contains(err.Error(), "not an IP address") {
		t.Fatalf("bad pin: %v", err)
	}
	key.PinIP = "10.0.0.3"
	if _, err := applyCmd(t, s, 10, &Command{Op: OpKeyCreate, Key: key}); err != nil {
		t.Fatal(err)
	}
}

func TestSecretReseal(t *testing.T) {
	s := NewStore(nil)
	if _, err := applyCmd(t, s, 1, &Command{Op: OpSecretPut, Secret: &Secret{Name: "tok", Version: 1, Sealed: []byte("old-ciphertext")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 2, &Command{Op: OpSecretPut, Secret: &Secret{Name: "tok", Version: 2, Sealed: []byte("v2-old-key")}}); err != nil {
		t.Fatal(err)
	}
	before := *s.Current().Secrets["tok"]
	reseal := func(idx uint64, name string, v uint64, sealed string) error {
		_, err := applyCmd(t, s, idx, &Command{Op: OpSecretReseal, Secret: &Secret{Name: name, Version: v, Sealed: []byte(sealed)}})
		return err
	}
	if err := reseal(3, "tok", 1, "stale"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "reseal again") {
		t.Fatalf("reseal of an older version: %v", err)
	}
	if err := reseal(4, "nope", 1, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reseal of a missing secret: %v", err)
	}
	if err := reseal(5, "tok", 2, ""); err == nil {
		t.Fatal("reseal with no ciphertext accepted")
	}
	if got := s.Current().Secrets["tok"]; string(got.Sealed) != "v2-old-key" {
		t.Fatalf("refused reseals changed the secret: %q", got.Sealed)
	}
	if err := reseal(6, "tok", 2, "v2-new-key"); err != nil {
		t.Fatal(err)
	}
	got := s.Current().Secrets["tok"]
	if string(got.Sealed) != "v2-new-key" || got.Version != 2 || !got.Updated.Equal(before.Updated) || !got.Created.Equal(before.Created) {
		t.Fatalf("after reseal: %+v (before %+v)", got, before)
	}
	// The next put still needs version+1.
	if _, err := applyCmd(t, s, 7, &Command{Op: OpSecretPut, Secret: &Secret{Name: "tok", Version: 3, Sealed: []byte("v3")}}); err != nil {
		t.Fatal(err)
	}
}

func TestOAuthTokenURLOnLoopbackMayBeHTTP(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/token", "http://[::1]/token", "http://localhost/token", "https://idp.example/token"} {
		y := "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  url: http://x\n  credential: {oauth2: {tokenURL: \"" + u + "\", clientID: c, clientSecret: s}}\n"
		if _, err := ParseDocuments("f.yaml", []byte(y)); err != nil {
			t.Errorf("tokenURL %s refused: %v", u, err)
		}
	}
}
