package qa

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// adminCall makes one admin API request and returns the status and body.
func adminCall(t *testing.T, n *harness.Node, method, path string, body any) (int, []byte) {
	t.Helper()
	tok, err := os.ReadFile(n.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.AdminURL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// recordsYAML declares upstream NAME at URL with CRED (a YAML flow map, or
// "" for none), a skill granting its lookup tool, a persona and an agent.
func recordsYAML(name, url, cred string) string {
	c := ""
	if cred != "" {
		c = "\n  credential: " + cred
	}
	return fmt.Sprintf(`apiVersion: portcullis/v1
kind: Upstream
metadata: {name: %[1]s}
spec:
  url: %[2]s
  timeout: 20s%[3]s
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-%[1]s}
spec:
  tools: [{tool: %[1]s/lookup}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: %[1]s-reader}
spec: {skills: [read-%[1]s]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: %[1]s-bot}
spec: {persona: %[1]s-reader}
`, name, url, c)
}

// putSecret stores value under name with the CLI, from a file, and returns
// the CLI's output.
func putSecret(t *testing.T, n *harness.Node, name, value string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f)
	return n.MustCLI("secret", "put", name, "--from-file", f)
}

// callLookup connects a go-sdk client as agent key to the persona endpoint
// and calls <upstream>_lookup; it returns the result text or the error text.
func callLookup(ctx context.Context, n *harness.Node, persona, upstream, key string) (text string, isErr bool, err error) {
	s, err := connectAgent(ctx, n.GatewayURL()+"/p/"+persona+"/mcp", key)
	if err != nil {
		return "", false, err
	}
	defer s.Close()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: upstream + "_lookup", Arguments: map[string]any{"id": 2}})
	if err != nil {
		return err.Error(), true, nil
	}
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	return text, res.IsError, nil
}

// TestSecretCanary is the proof of issue 3: a known secret is stored with
// the CLI, real agent traffic flows through the gateway to an upstream that
// checks it received that credential, and then the whole data dir (raft log,
// bolt files, snapshots raw and decompressed, the HSM token), every log line
// of the node, every admin API response and CLI output, and the headers the
// upstream saw are searched: the plaintext appears only in the credential
// the upstream received.
func TestSecretCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	canary := canaryValue(t)
	const header = "Bearer "
	up := startBackend(t, func(r *http.Request) bool { return r.Header.Get("Authorization") == header+canary })
	// Small snapshot settings so the node writes a snapshot holding the
	// secret during the test; it must be searched too.
	n := harness.StartNode(t, "--raft-snapshot-threshold", "4", "--raft-snapshot-interval", "200ms", "--log-level", "debug")

	var outputs []string // every CLI output and admin API response
	record := func(what string, b []byte) { outputs = append(outputs, what+"\n"+string(b)) }

	record("secret put", []byte(putSecret(t, n, "helpdesk-token", canary)))
	if !strings.Contains(outputs[0], "secret helpdesk-token stored (version 1)") {
		t.Fatalf("secret put printed %q", outputs[0])
	}
	record("apply", []byte(n.Apply(recordsYAML("helpdesk", up.url, `{secret: helpdesk-token, header: Authorization, format: "Bearer {secret}"}`))))
	key := n.NewKey("helpdesk-bot")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 3 {
		text, isErr, err := callLookup(ctx, n, "helpdesk-reader", "helpdesk", key)
		if err != nil || isErr || !strings.Contains(text, "record C") {
			t.Fatalf("call %d through the gateway: %q %v %v\n%s", i, text, isErr, err, n.Logs())
		}
		record("tool result", []byte(text))
	}
	if up.calls.Load() != 3 {
		t.Fatalf("upstream ran the tool %d times, want 3", up.calls.Load())
	}
	// A tool call the upstream refuses is an API response too.
	record("tools/list", []byte(fmt.Sprint(toolNamesOf(ctx, t, n, key))))

	// Every read path an admin has.
	for _, args := range [][]string{
		{"secret", "list"}, {"secret", "list", "-o", "json"},
		{"get", "upstream", "helpdesk", "-o", "yaml"}, {"get", "upstream", "helpdesk", "-o", "json"}, {"get", "upstreams"},
		{"status"},
	} {
		out, errOut, err := n.CLI(args...)
		if err != nil {
			t.Fatalf("portcullis %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		record(strings.Join(args, " "), []byte(out+errOut))
	}
	list := outputs[len(outputs)-6]
	if !strings.Contains(list, "helpdesk-token") || !strings.Contains(list, "1") {
		t.Fatalf("secret list does not show the secret's name and version: %q", list)
	}
	for _, p := range []string{"/v1/secrets", "/v1/upstreams", "/v1/upstreams/helpdesk", "/v1/status", "/v1/secrets/helpdesk-token"} {
		status, b := adminCall(t, n, http.MethodGet, p, nil)
		record("GET "+p+fmt.Sprintf(" %d", status), b)
	}
	// A second version through the API, stdin-free: the response shows
	// only metadata.
	status, b := adminCall(t, n, http.MethodPut, "/v1/secrets/helpdesk-token", map[string]any{"value": base64.StdEncoding.EncodeToString([]byte(canary))})
	record("PUT /v1/secrets/helpdesk-token", b)
	if status != http.StatusOK || !strings.Contains(string(b), `"version":2`) {
		t.Fatalf("PUT secret: %d %s", status, b)
	}
	// Same value as version 2: the upstream still accepts it.
	if text, isErr, err := callLookup(ctx, n, "helpdesk-reader", "helpdesk", key); err != nil || isErr {
		t.Fatalf("call after the re-put: %q %v", text, err)
	}

	// Wait for a snapshot holding the secret, then stop the node so every
	// file is complete on disk.
	deadline := time.Now().Add(20 * time.Second)
	for {
		snaps, _ := filepath.Glob(filepath.Join(n.DataDir, "raft", "snapshots", "*", "state.bin"))
		if len(snaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no raft snapshot was written in 20s:\n%s", n.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.Stop()

	// The data dir: the canary in no form anywhere; the secret's name (a
	// positive control) in the raft log and in a decompressed snapshot.
	scan := scanDataDir(t, n.DataDir, canary, "helpdesk-token")
	t.Logf("data dir: %d files, %d bytes, %d zstd frames decompressed", scan.files, scan.bytes, scan.frames)
	if len(scan.leaks) > 0 {
		t.Errorf("the plaintext secret is in the data dir: %v", scan.leaks)
	}
	if scan.frames == 0 || scan.containing["helpdesk-token"] < 2 {
		t.Fatalf("the search did not see the stored secret (%d zstd frames, %d files name it): it proves nothing", scan.frames, scan.containing["helpdesk-token"])
	}
	// The search can fail: a zstd-compressed copy of the canary planted in
	// the data dir is found.
	enc, _ := zstd.NewWriter(nil)
	planted := enc.EncodeAll([]byte(`{"leak":"`+canary+`"}`), nil)
	enc.Close()
	if err := os.WriteFile(filepath.Join(n.DataDir, "raft", "planted.bin"), append([]byte("header"), planted...), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := scanDataDir(t, n.DataDir, canary).leaks; !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "planted.bin zstd") }) {
		t.Fatalf("the search misses a compressed leak: %v", got)
	}

	// Every log line of the node (at debug level).
	logs := n.Logs()
	if enc := leakIn([]byte(logs), canary); enc != "" {
		t.Errorf("the node's logs contain the secret (%s)", enc)
	}
	if !strings.Contains(logs, "helpdesk") || len(strings.Split(logs, "\n")) < 10 {
		t.Fatalf("the node logged almost nothing; the search proves nothing:\n%s", logs)
	}
	// Every API response and CLI output.
	for _, o := range outputs {
		if enc := leakIn([]byte(o), canary); enc != "" {
			t.Errorf("an admin or agent response contains the secret (%s): %.200s", enc, o)
		}
	}
	// The upstream: the canary only as the credential it checks; the
	// agent's own key never.
	reqs := up.requests()
	if len(reqs) < 4 {
		t.Fatalf("the upstream saw %d requests", len(reqs))
	}
	for i, r := range reqs {
		if got := r.header.Get("Authorization"); got != header+canary {
			t.Errorf("request %d reached the upstream with Authorization %q, want the stored credential", i, redact(got, canary))
		}
		h := r.header.Clone()
		h.Del("Authorization")
		var all bytes.Buffer
		h.Write(&all)
		all.WriteString(r.query)
		if enc := leakIn(all.Bytes(), canary); enc != "" {
			t.Errorf("request %d carries the secret outside its credential header (%s)", i, enc)
		}
		raw := append(all.Bytes(), []byte(r.header.Get("Authorization"))...)
		if bytes.Contains(raw, []byte(key)) || bytes.Contains(raw, []byte(key[strings.LastIndex(key, "_")+1:])) {
			t.Errorf("request %d forwarded the agent's own credential to the upstream", i)
		}
	}
}

func toolNamesOf(ctx context.Context, t *testing.T, n *harness.Node, key string) []string {
	s, err := connectAgent(ctx, n.GatewayURL()+"/p/helpdesk-reader/mcp", key)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer s.Close()
	return toolNames(t, ctx, s)
}

func redact(s, secret string) string { return strings.ReplaceAll(s, secret, "<canary>") }

// TestCredentialForms drives one real call through the gateway for each
// credential form: a header, a query parameter, HTTP Basic, and an OAuth 2.0
// access token the gateway fetches itself with the client-credentials grant
// (from a token endpoint on loopback). Each upstream refuses a request
// without its credential; none sees the agent's key.
func TestCredentialForms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	apiKey, queryKey, password, clientSecret := canaryValue(t), canaryValue(t), canaryValue(t), canaryValue(t)
	te := startTokenEndpoint(t, "portcullis-gw", clientSecret)
	ups := map[string]*backend{
		"hdr": startBackend(t, func(r *http.Request) bool { return r.Header.Get("X-Api-Key") == apiKey }),
		"qry": startBackend(t, func(r *http.Request) bool { return r.URL.Query().Get("api_key") == queryKey }),
		"bas": startBackend(t, func(r *http.Request) bool { u, p, ok := r.BasicAuth(); return ok && u == "svc" && p == password }),
		"oau": startBackend(t, func(r *http.Request) bool { return te.valid(r.Header.Get("Authorization")) }),
	}
	creds := map[string]string{
		"hdr": `{secret: hdr-key, header: X-API-Key}`,
		"qry": `{secret: qry-key, query: api_key}`,
		"bas": `{basic: {username: svc, passwordSecret: bas-password}}`,
		"oau": `{oauth2: {tokenURL: "` + te.url + `", clientID: portcullis-gw, clientSecret: oau-client-secret, scopes: [records.read]}}`,
	}
	// No plaintext cache: every call unseals, so the calls after the key
	// rotation below prove the resealed ciphertexts open.
	n := harness.StartNode(t, "--secret-cache-ttl", "-1s")
	// One secret from stdin, as a pipe from a vault would give it.
	cmd := exec.Command(n.Bin, "secret", "put", "hdr-key", "--from-file", "-", "--server", n.AdminURL(), "--token-file", n.TokenFile)
	cmd.Stdin = strings.NewReader(apiKey + "\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "secret hdr-key stored (version 1)") || strings.Contains(string(out), apiKey) {
		t.Fatalf("secret put from stdin: %v\n%s", err, redact(string(out), apiKey))
	}
	putSecret(t, n, "qry-key", queryKey)
	putSecret(t, n, "bas-password", password)
	putSecret(t, n, "oau-client-secret", clientSecret)
	var yaml []string
	for _, name := range []string{"hdr", "qry", "bas", "oau"} {
		yaml = append(yaml, recordsYAML(name, ups[name].url, creds[name]))
	}
	n.Apply(strings.Join(yaml, "---\n"))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, name := range []string{"hdr", "qry", "bas", "oau"} {
		t.Run(name, func(t *testing.T) {
			key := n.NewKey(name + "-bot")
			text, isErr, err := callLookup(ctx, n, name+"-reader", name, key)
			if err != nil || isErr || !strings.Contains(text, "record C") {
				t.Fatalf("call through the gateway: %q isError=%v err=%v\n%s", text, isErr, err, n.Logs())
			}
			if ups[name].calls.Load() != 1 {
				t.Fatalf("upstream ran the tool %d times, want 1", ups[name].calls.Load())
			}
			for i, r := range ups[name].requests() {
				var all bytes.Buffer
				r.header.Write(&all)
				all.WriteString(r.query)
				if bytes.Contains(all.Bytes(), []byte(key)) {
					t.Errorf("request %d carried the agent's key to the upstream", i)
				}
			}
		})
	}
	// Rotate the HSM sealing key: every secret is re-encrypted at the same
	// version, and every upstream still gets its credential.
	if out := n.MustCLI("secret", "rotate-key"); !strings.Contains(out, "sealing key version 2 is current; 4 secret(s) resealed") {
		t.Fatalf("secret rotate-key printed %q", out)
	}
	if out := n.MustCLI("secret", "list"); strings.Count(out, "  1  ") != 4 {
		t.Fatalf("versions changed by the rotation:\n%s", out)
	}
	for _, name := range []string{"hdr", "qry", "bas", "oau"} {
		text, isErr, err := callLookup(ctx, n, name+"-reader", name, n.NewKey(name+"-bot"))
		if err != nil || isErr {
			t.Fatalf("%s after the key rotation: %q %v", name, text, err)
		}
	}
	// The gateway fetched the access token itself and reused it.
	if got := te.requests.Load(); got < 1 || got > 2 {
		t.Errorf("token endpoint asked %d times for one agent session, want the token fetched once and cached", got)
	}
	if slices.ContainsFunc([]string{apiKey, queryKey, password, clientSecret}, func(s string) bool { return leakIn([]byte(n.Logs()), s) != "" }) {
		t.Error("a backend secret is in the node's logs")
	}
}

// TestHSMOutageThroughTheGateway pulls the HSM away under a running node (a
// PKCS#11 shim in front of SoftHSM answers CKR_DEVICE_REMOVED while a flag
// file exists): a call that needs a secret fails closed with a clear error,
// another upstream keeps working, secret put is refused clearly, and calls
// work again by themselves once the HSM is back, without a restart.
func TestHSMOutageThroughTheGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	module, token, pinFile, flag := faultyHSM(t)
	secret := canaryValue(t)
	crm := startBackend(t, func(r *http.Request) bool { return r.Header.Get("X-Api-Key") == secret })
	wiki := startBackend(t, nil)
	n := harness.StartNode(t, "--hsm-module", module, "--hsm-token", token, "--hsm-pin-file", pinFile, "--secret-cache-ttl", "300ms")
	putSecret(t, n, "crm-key", secret)
	n.Apply(recordsYAML("crm", crm.url, `{secret: crm-key, header: X-API-Key}`) + "---\n" + recordsYAML("wiki", wiki.url, ""))
	crmKey, wikiKey := n.NewKey("crm-bot"), n.NewKey("wiki-bot")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	call := func(up, key string) (string, bool) {
		t.Helper()
		text, isErr, err := callLookup(ctx, n, up+"-reader", up, key)
		if err != nil {
			t.Fatalf("connect as %s-bot: %v", up, err)
		}
		return text, isErr
	}
	if text, isErr := call("crm", crmKey); isErr {
		t.Fatalf("crm before the outage: %s\n%s", text, n.Logs())
	}

	if err := os.WriteFile(flag, nil, 0o600); err != nil { // HSM gone
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the cached plaintext expires (300ms)
	before := crm.calls.Load()
	text, isErr := call("crm", crmKey)
	t.Logf("crm during the outage: %s", text)
	if !isErr || !strings.Contains(text, "backend credential unavailable: HSM unreachable") {
		t.Fatalf("crm during the outage answered %q (isError=%v), want a clear credential error", text, isErr)
	}
	if strings.Contains(text, "crm-key") || strings.Contains(text, secret) {
		t.Fatalf("the error names the secret: %q", text)
	}
	if crm.calls.Load() != before {
		t.Fatal("a call reached the upstream without its credential")
	}
	if text, isErr := call("wiki", wikiKey); isErr || !strings.Contains(text, "record C") {
		t.Fatalf("an upstream without a credential stopped working during the HSM outage: %q", text)
	}
	if out, errOut, err := n.CLI("secret", "put", "crm-key", "--from-file", writeTemp(t, "other")); err == nil || !strings.Contains(strings.ToLower(out+errOut), "hsm") {
		t.Fatalf("secret put during the outage: err=%v %q %q", err, out, errOut)
	}

	if err := os.Remove(flag); err != nil { // HSM back
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		text, isErr := call("crm", crmKey)
		if !isErr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crm still fails 30s after the HSM came back: %q\n%s", text, n.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// An upstream without a credential never sees the agent's either.
	for i, r := range wiki.requests() {
		var all bytes.Buffer
		r.header.Write(&all)
		all.WriteString(r.query)
		if bytes.Contains(all.Bytes(), []byte(wikiKey[strings.LastIndex(wikiKey, "_")+1:])) || r.header.Get("Authorization") != "" {
			t.Errorf("request %d to an upstream without a credential carried the agent's (Authorization %q)", i, r.header.Get("Authorization"))
		}
	}
	if !strings.Contains(n.Logs(), "token available again") {
		t.Errorf("the node did not log the HSM's return")
	}
}

func writeTemp(t *testing.T, content string) string { return writeTempTB(t, content) }

func writeTempTB(t testing.TB, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// faultyHSM makes a SoftHSM2 token as an operator would, and builds the
// fault shim (hsm/testdata/faultshim.c) in front of SoftHSM. The node
// inherits SOFTHSM2_CONF and the shim's variables from the test's
// environment. It returns the shim module, the token label, the user PIN
// file, and the flag file whose existence takes the HSM away.
func faultyHSM(t *testing.T) (module, label, pinFile, flag string) {
	t.Helper()
	softhsm := ""
	for _, p := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(p); err == nil {
			softhsm = p
			break
		}
	}
	if softhsm == "" {
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	label, pin := "qa-outage", canaryValue(t)[8:28]
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", canaryValue(t)[8:28], "--pin", pin).CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	pinFile = filepath.Join(dir, "user.pin")
	if err := os.WriteFile(pinFile, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inc, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("locate pkcs11 headers: %v", err)
	}
	module, flag = filepath.Join(dir, "faultshim.so"), filepath.Join(dir, "hsm-down")
	out, err := exec.Command("gcc", "-shared", "-fPIC", "-O1", "-I", strings.TrimSpace(string(inc)),
		"-o", module, filepath.Join(harness.RepoRoot(t), "hsm", "testdata", "faultshim.c"), "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("build the PKCS#11 fault shim (needs gcc): %v\n%s", err, out)
	}
	t.Setenv("FAULT_SHIM_TARGET", softhsm)
	t.Setenv("FAULT_SHIM_DOWN", flag)
	return module, label, pinFile, flag
}

// TestSessionSurvivesRestart: the gateway's session key is derived from the
// HSM, not kept in memory or a file, so an agent's session handle from before
// a restart still works after it.
func TestSessionSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	up := startBackend(t, nil)
	n := harness.StartNode(t)
	n.Apply(recordsYAML("notes", up.url, ""))
	c := harness.NewRawClient(n.GatewayURL()+"/p/notes-reader/mcp", n.NewKey("notes-bot"), 1)
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	call := func() *harness.Response {
		t.Helper()
		resp, err := c.CallTool("notes_lookup", map[string]any{"id": 1})
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		return resp
	}
	if r := call(); r.Error != nil {
		t.Fatalf("before restart: %+v", r.Error)
	}
	n.Stop()
	if _, err := os.Stat(filepath.Join(n.DataDir, "session-key")); err == nil {
		t.Fatal("the node wrote a session-key file although it has an HSM")
	}
	n.Start()
	if r := call(); r.Error != nil || !strings.Contains(string(r.Result), "record B") {
		t.Fatalf("the session from before the restart was refused: %+v %s", r.Error, r.Result)
	}
}
