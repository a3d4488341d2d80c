package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// adminServer is a real admin API over a state store that applies commands
// directly, as a single raft node would.
type adminServer struct {
	store *state.Store
	url   string
	token string // token file
}

func newAdminServer(t *testing.T) *adminServer {
	t.Helper()
	store := state.NewStore(nil)
	token := "admin-token-" + strings.Repeat("y", 20)
	a, err := api.New(api.Config{Store: store, Cluster: &directCluster{store: store}, AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	tf := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tf, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return &adminServer{store: store, url: srv.URL, token: tf}
}

// run runs the CLI against the server; stdout and stderr are returned apart.
func (s *adminServer) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--server", s.url, "--token-file", s.token))
	err = root.Execute()
	return out.String(), errOut.String(), err
}

const helpdeskYAML = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "http://127.0.0.1:9101/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec:
  tools:
    - tool: helpdesk/get_ticket
      args: {project: {in: [SUPPORT, BILLING]}}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support-triage}
spec: {skills: [read-tickets]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: triage-bot}
spec: {persona: support-triage}
`

func TestAgentKeyCreateRefusesNonPositiveExpiry(t *testing.T) {
	s := newAdminServer(t)
	if _, _, err := s.run(t, helpdeskYAML, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"-1h", "0s"} {
		out, _, err := s.run(t, "", "agent", "key", "create", "triage-bot", "--expires-in", d)
		if err == nil || !strings.Contains(err.Error(), "--expires-in") {
			t.Errorf("--expires-in %s: %q, %v; want a refusal naming the flag", d, out, err)
		}
	}
	if n := len(s.store.Current().Keys); n != 0 {
		t.Fatalf("%d keys created by refused commands", n)
	}
	out, _, err := s.run(t, "", "agent", "key", "create", "triage-bot", "--expires-in", "1h")
	if err != nil || !strings.HasPrefix(out, "pck_") {
		t.Fatalf("create with 1h: %q, %v", out, err)
	}
	for _, k := range s.store.Current().Keys {
		if k.Expires.IsZero() {
			t.Fatal("key created with --expires-in 1h never expires")
		}
	}
}

// TestGetOutputAppliesAgain checks the README's promise that `get KIND -o
// yaml|json` prints documents that apply again, for one object and for
// lists of several.
func TestGetOutputAppliesAgain(t *testing.T) {
	s := newAdminServer(t)
	if _, _, err := s.run(t, helpdeskYAML+"---\napiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: crm}\nspec: {url: \"http://127.0.0.1:9102/mcp\", toolPrefix: \"\"}\n", "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"get", "upstreams", "-o", "json"},
		{"get", "upstreams", "-o", "yaml"},
		{"get", "upstream", "crm", "-o", "json"},
		{"get", "skills", "-o", "yaml"},
	} {
		out, _, err := s.run(t, "", args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		applied, _, err := s.run(t, out, "apply", "-f", "-")
		if err != nil {
			t.Errorf("%v output does not apply again: %v\n%s", args, err, out)
			continue
		}
		if strings.Contains(applied, "created") || strings.Contains(applied, "updated") || !strings.Contains(applied, "unchanged") {
			t.Errorf("%v round trip changed something:\n%s", args, applied)
		}
	}
}

// TestNamesReachTheServerAsTyped checks that object names are escaped once
// (an invalid name is reported as typed, not as "a%20b") and that an empty
// NAME is refused rather than addressing the whole collection.
func TestNamesReachTheServerAsTyped(t *testing.T) {
	s := newAdminServer(t)
	if _, _, err := s.run(t, helpdeskYAML, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.run(t, "", "get", "persona", "a b"); err == nil || !strings.Contains(err.Error(), `"a b" not found`) {
		t.Errorf("get persona 'a b': %v", err)
	}
	if _, _, err := s.run(t, "", "delete", "agent", "Bot%1"); err == nil || !strings.Contains(err.Error(), `"Bot%1"`) {
		t.Errorf("delete agent Bot%%1: %v", err)
	}
	for _, args := range [][]string{
		{"get", "persona", ""},
		{"delete", "persona", " "},
		{"agent", "key", "create", ""},
		{"agent", "key", "revoke", "triage-bot", ""},
	} {
		out, _, err := s.run(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("%q: %q, %v; want a refusal of the empty argument", args, out, err)
		}
	}
	if len(s.store.Current().Personas) != 1 || len(s.store.Current().Keys) != 0 {
		t.Fatal("a refused command changed the state")
	}
}

// TestGetChecksOutputFirst checks that a bad -o is reported as such even
// when the server cannot be reached.
func TestGetChecksOutputFirst(t *testing.T) {
	_, err := runCLI(t, "", "get", "personas", "-o", "xml", "--server", "http://127.0.0.1:1", "--token-file", "/nonexistent")
	if err == nil || !strings.Contains(err.Error(), `unknown output format "xml"`) {
		t.Fatalf("get -o xml: %v", err)
	}
}

// TestWrongListenerHint checks that pointing the CLI at something that is
// not the admin API (such as the gateway) says so.
func TestWrongListenerHint(t *testing.T) {
	gw := httptest.NewServer(http.NotFoundHandler())
	defer gw.Close()
	t.Setenv(envToken, "some-admin-token-0123")
	_, err := runCLI(t, "", "get", "personas", "--server", gw.URL)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("CLI against a non-admin server: %v", err)
	}
}

// TestGetJSONShape checks that a list prints as {"items": [...]} whatever
// its length (a script reading .items must not break when one object is
// left), and that only `get KIND NAME` prints a bare object.
func TestGetJSONShape(t *testing.T) {
	s := newAdminServer(t)
	out, _, err := s.run(t, "", "get", "upstreams", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Items == nil || len(list.Items) != 0 {
		t.Fatalf("empty list: %v\n%s", err, out)
	}
	if _, _, err := s.run(t, helpdeskYAML, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	out, _, err = s.run(t, "", "get", "upstreams", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	list.Items = nil
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 || list.Items[0]["kind"] != "Upstream" {
		t.Fatalf("list of one: %v\n%s", err, out)
	}
	out, _, err = s.run(t, "", "get", "upstream", "helpdesk", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(out), &one); err != nil || one["kind"] != "Upstream" || one["items"] != nil {
		t.Fatalf("get KIND NAME: %v\n%s", err, out)
	}
}

// TestKindRequired checks that get and delete without arguments say which
// kinds there are instead of a bare argument count.
func TestKindRequired(t *testing.T) {
	s := newAdminServer(t)
	for _, cmd := range []string{"get", "delete"} {
		_, _, err := s.run(t, "", cmd)
		if err == nil {
			t.Fatalf("%s without arguments succeeded", cmd)
		}
		for _, want := range []string{"needs a KIND", "upstreams, skills, personas, agents, networkpolicies", "portcullis " + cmd + " KIND"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", cmd, err, want)
			}
		}
	}
}
