package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientResolvesServerAndToken(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "tok")
	os.WriteFile(tf, []byte("  file-token-0123456789\n"), 0o600)

	t.Setenv(envAddr, "")
	t.Setenv(envToken, "")
	if _, err := (&clientOpts{}).client(); err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("no token anywhere: %v, want a hint at --token-file", err)
	}

	t.Setenv(envToken, "env-token")
	c, err := (&clientOpts{}).client()
	if err != nil || c.token != "env-token" || c.base.String() != defaultServer {
		t.Fatalf("env token, default server: %+v %v", c, err)
	}

	t.Setenv(envAddr, "127.0.0.1:1234")
	c, err = (&clientOpts{tokenFile: tf}).client()
	if err != nil || c.token != "file-token-0123456789" || c.base.String() != "http://127.0.0.1:1234" {
		t.Fatalf("token file wins, bare host:port gets http://: %+v %v", c, err)
	}

	c, err = (&clientOpts{server: "https://admin.example:9443/", tokenFile: tf}).client()
	if err != nil || c.base.String() != "https://admin.example:9443" {
		t.Fatalf("--server wins over the environment: %+v %v", c, err)
	}

	for _, bad := range []clientOpts{
		{server: "ftp://x", tokenFile: tf},
		{tokenFile: filepath.Join(dir, "missing")},
		{tokenFile: filepath.Join(dir, "empty")},
	} {
		os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
		if _, err := bad.client(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestLookupKind(t *testing.T) {
	for _, s := range []string{"Upstream", "upstream", "upstreams", "UPSTREAMS"} {
		if k, err := lookupKind(s); err != nil || k.path != "upstreams" {
			t.Errorf("lookupKind(%q) = %v, %v", s, k.path, err)
		}
	}
	if _, err := lookupKind("widgets"); err == nil || !strings.Contains(err.Error(), "personas") {
		t.Fatalf("unknown kind: %v, want the list of kinds", err)
	}
}

func TestPrintObjects(t *testing.T) {
	docs := []json.RawMessage{
		json.RawMessage(`{"apiVersion":"portcullis/v1","kind":"Persona","metadata":{"name":"ops"},"spec":{"skills":["deploy","read"],"description":"Runs deployments"}}`),
		json.RawMessage(`{"apiVersion":"portcullis/v1","kind":"Persona","metadata":{"name":"audit"},"spec":{"skills":["read"]}}`),
	}
	k, _ := lookupKind("persona")
	var b bytes.Buffer
	if err := printObjects(&b, k, docs, "table", false); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "NAME") || !strings.HasPrefix(rows[1], "audit") || !strings.Contains(rows[2], "deploy,read") {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	if err := printObjects(&b, k, docs, "yaml", false); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "kind: Persona") != 2 || !strings.Contains(b.String(), "\n---\n") {
		t.Fatalf("yaml:\n%s", b.String())
	}
	if err := printObjects(&b, k, docs, "xml", false); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestAPIErrorRendering(t *testing.T) {
	e := &apiError{Code: "invalid", Message: "1 problem in the documents; nothing was applied",
		Details: []any{map[string]any{"error": "a.yaml:3: document 1 (Skill s): spec.tools: required"}}}
	if got := e.Error(); !strings.Contains(got, "nothing was applied\n  a.yaml:3: document 1") {
		t.Fatalf("rendered: %q", got)
	}
	if got := (&apiError{Code: "unauthorized", Message: "invalid admin token"}).Error(); !strings.Contains(got, "--token-file") {
		t.Fatalf("unauthorized hint missing: %q", got)
	}
}

func TestReadInputs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("b"), 0o600)
	os.WriteFile(filepath.Join(dir, "a.yml"), []byte("a"), 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600)
	got, err := readInputs(nil, dir)
	if err != nil || len(got) != 2 || got[0].Content != "a" || got[1].Content != "b" {
		t.Fatalf("directory: %+v %v", got, err)
	}
	got, err = readInputs(strings.NewReader("s"), "-")
	if err != nil || got[0].Name != "<stdin>" || got[0].Content != "s" {
		t.Fatalf("stdin: %+v %v", got, err)
	}
	if _, err := readInputs(nil, filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := readInputs(nil, t.TempDir()); err == nil {
		t.Fatal("empty directory accepted")
	}
}

// TestUpstreamTableShowsEffectivePrefix checks that the PREFIX column tells
// a default prefix (the name) from an empty one.
func TestUpstreamTableShowsEffectivePrefix(t *testing.T) {
	k, _ := lookupKind("upstreams")
	var b bytes.Buffer
	err := printObjects(&b, k, []json.RawMessage{
		json.RawMessage(`{"kind":"Upstream","metadata":{"name":"helpdesk"},"spec":{"url":"http://h/mcp"}}`),
		json.RawMessage(`{"kind":"Upstream","metadata":{"name":"raw"},"spec":{"url":"http://r/mcp","toolPrefix":""}}`),
		json.RawMessage(`{"kind":"Upstream","metadata":{"name":"zz"},"spec":{"url":"http://z/mcp","toolPrefix":"crm"}}`),
	}, "table", false)
	if err != nil {
		t.Fatal(err)
	}
	rows := lines(b.String())
	for i, want := range []string{"helpdesk", "(none)", "crm"} {
		if f := strings.Fields(rows[i+1]); f[len(f)-1] != want {
			t.Errorf("row %q: prefix %q, want %q", rows[i+1], f[len(f)-1], want)
		}
	}
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
