package qa

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// helpdeskYAML declares one of each kind, as an admin would.
const helpdeskYAML = `# The helpdesk MCP server and a read-only support persona.
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec:
  url: http://127.0.0.1:9101/mcp
  timeout: 20s
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec:
  description: Search and read support tickets
  tools:
    - tool: helpdesk/search_tickets
    - tool: helpdesk/get_ticket
      args:
        project: {in: [SUPPORT, BILLING]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support-triage}
spec:
  description: Reads and triages customer support tickets
  skills: [read-tickets]
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: triage-bot}
spec: {persona: support-triage}
`

// brokenYAML has a valid first document and a second with a misspelt
// field; applying it must change nothing.
const brokenYAML = `apiVersion: portcullis/v1
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
      args:
        account: {maxLenght: 12}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

// TestSingleNodeLifecycle walks the first-run story of a single dev node:
// start, declare, inspect, break, delete, create a key, restart, crash.
func TestSingleNodeLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := harness.StartNode(t)

	// Dev mode wrote the admin token, readable by the owner only.
	fi, err := os.Stat(n.TokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	// Apply reports what changed, per object.
	f := writeFile(t, "helpdesk.yaml", helpdeskYAML)
	out := n.MustCLI("apply", "-f", f)
	want := []string{"upstream/helpdesk created", "skill/read-tickets created", "persona/support-triage created", "agent/triage-bot created"}
	if got := lines(out); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("apply printed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if out := n.MustCLI("apply", "-f", f); !strings.Contains(out, "persona/support-triage unchanged") {
		t.Fatalf("re-apply printed:\n%s", out)
	}

	// get: a table by default, documents with -o yaml, JSON with -o json.
	out = n.MustCLI("get", "personas")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "support-triage") || !strings.Contains(out, "read-tickets") {
		t.Fatalf("get personas:\n%s", out)
	}
	yamlOut := n.MustCLI("get", "skill", "read-tickets", "-o", "yaml")
	if !strings.Contains(yamlOut, "kind: Skill") || !strings.Contains(yamlOut, "helpdesk/get_ticket") {
		t.Fatalf("get -o yaml:\n%s", yamlOut)
	}
	// What get prints can be applied back, unchanged.
	if out := n.MustCLI("apply", "-f", writeFile(t, "got.yaml", yamlOut)); strings.TrimSpace(out) != "skill/read-tickets unchanged" {
		t.Fatalf("apply of get output: %s", out)
	}
	var up struct {
		Spec struct{ URL, Timeout string }
	}
	if err := json.Unmarshal([]byte(n.MustCLI("get", "upstream", "helpdesk", "-o", "json")), &up); err != nil || up.Spec.URL != "http://127.0.0.1:9101/mcp" || up.Spec.Timeout != "20s" {
		t.Fatalf("get -o json: %+v %v", up, err)
	}

	// A broken document names the file, document and field; nothing of the
	// file is applied, not even its valid first document.
	bad := writeFile(t, "crm.yaml", brokenYAML)
	_, stderr, err := n.CLI("apply", "-f", bad)
	if err == nil {
		t.Fatal("apply of a broken file succeeded")
	}
	for _, w := range []string{"crm.yaml", "document 2", "spec.tools[0].args.account.maxLenght", "nothing was applied"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("apply error does not mention %q:\n%s", w, stderr)
		}
	}
	if out := n.MustCLI("get", "upstreams"); strings.Contains(out, "crm") {
		t.Fatalf("the valid document of a broken file was applied:\n%s", out)
	}

	// Deleting what is still referenced is refused with the reason.
	_, stderr, err = n.CLI("delete", "skill", "read-tickets")
	if err == nil || !strings.Contains(stderr, "Persona support-triage") {
		t.Fatalf("delete of a referenced skill: err=%v\n%s", err, stderr)
	}
	_, stderr, err = n.CLI("get", "agent", "nobody")
	if err == nil || !strings.Contains(stderr, "not found") {
		t.Fatalf("get of a missing agent: err=%v\n%s", err, stderr)
	}

	// stdin works, and an agent can be removed and re-declared.
	if out := n.MustCLI("delete", "agent", "triage-bot"); !strings.Contains(out, "agent/triage-bot deleted") {
		t.Fatalf("delete agent: %s", out)
	}
	cmd := exec.Command(n.Bin, "apply", "-f", "-", "--server", n.AdminURL(), "--token-file", n.TokenFile)
	cmd.Stdin = strings.NewReader(helpdeskYAML)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "agent/triage-bot created") {
		t.Fatalf("apply from stdin: %v\n%s", err, out)
	}

	// A key is printed alone on stdout, and listed by id only afterwards.
	key := n.NewKey("triage-bot")
	if !strings.HasPrefix(key, "pck_") {
		t.Fatalf("key %q does not look like an API key", key)
	}
	keys := n.MustCLI("agent", "key", "list", "triage-bot")
	id := strings.Split(strings.TrimPrefix(key, "pck_"), "_")[0]
	if !strings.Contains(keys, id) || strings.Contains(keys, key) {
		t.Fatalf("key list:\n%s", keys)
	}

	// A backend secret is sealed by the node's (dev) HSM: listed by name and
	// version, never shown, and nowhere in the raft data in plain text.
	secretValue := "helpdesk-api-" + id
	n.MustCLI("secret", "put", "helpdesk-token", "--from-file", writeFile(t, "secret.txt", secretValue+"\n"))
	if out := n.MustCLI("secret", "list"); !strings.Contains(out, "helpdesk-token") || strings.Contains(out, secretValue) {
		t.Fatalf("secret list:\n%s", out)
	}

	// Wrong token and unreachable server get clear errors.
	wrong := writeFile(t, "wrong-token", "pcadm_not-the-token-at-all")
	c := exec.Command(n.Bin, "get", "agents", "--server", n.AdminURL(), "--token-file", wrong)
	if out, err := c.CombinedOutput(); err == nil || !strings.Contains(string(out), "rejected the admin token") {
		t.Fatalf("wrong token: %v\n%s", err, out)
	}
	c = exec.Command(n.Bin, "get", "agents", "--server", "http://"+harness.FreeAddr(t), "--token-file", n.TokenFile)
	if out, err := c.CombinedOutput(); err == nil || !strings.Contains(string(out), "cannot reach portcullis") {
		t.Fatalf("unreachable server: %v\n%s", err, out)
	}

	// Everything survives a graceful restart and a crash.
	snapshot := func() string {
		return configOnly(n.MustCLI("get", "upstreams")) + n.MustCLI("get", "skills") + n.MustCLI("get", "personas") +
			n.MustCLI("get", "agents") + n.MustCLI("agent", "key", "list", "triage-bot") + n.MustCLI("secret", "list")
	}
	before := snapshot()
	n.Stop()
	n.Start()
	if after := snapshot(); after != before {
		t.Fatalf("state changed across a restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	n.Kill()
	n.Start()
	if after := snapshot(); after != before {
		t.Fatalf("state changed across a crash (kill -9):\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !strings.Contains(before, "triage-bot") || !strings.Contains(before, id) || !strings.Contains(before, "helpdesk-token") {
		t.Fatalf("state before restart lacks the agent, its key or the secret:\n%s", before)
	}
	n.Stop()
	filepath.WalkDir(filepath.Join(n.DataDir, "raft"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), secretValue) {
				t.Errorf("%s holds the secret in plain text", p)
			}
		}
		return nil
	})
}

// TestContractDetails checks the interface contract points the lifecycle
// test does not: the admin commands read PORTCULLIS_ADDR and
// PORTCULLIS_TOKEN, a list printed with `get -o json` applies again, and a
// second node on a data dir that a node holds fails at once with a reason
// instead of hanging.
func TestContractDetails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := harness.StartNode(t)
	n.Apply(helpdeskYAML + "---\napiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: crm}\nspec: {url: \"http://127.0.0.1:9102/mcp\"}\n")

	token, err := os.ReadFile(n.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	env := func(args ...string) (string, error) {
		c := exec.Command(n.Bin, args...)
		c.Env = append(os.Environ(), "PORTCULLIS_ADDR="+n.AdminURL(), "PORTCULLIS_TOKEN="+strings.TrimSpace(string(token)))
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if err != nil {
			return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
		}
		return stdout.String(), nil
	}
	list, err := env("get", "upstreams", "-o", "json")
	if err != nil || !strings.Contains(list, "crm") || !strings.Contains(list, "helpdesk") {
		t.Fatalf("get upstreams -o json with PORTCULLIS_ADDR/PORTCULLIS_TOKEN: %v\n%s", err, list)
	}
	out := n.Apply(list)
	if strings.TrimSpace(out) != "upstream/crm unchanged\nupstream/helpdesk unchanged" {
		t.Fatalf("apply of a listed -o json:\n%s", out)
	}
	key, err := env("agent", "key", "create", "triage-bot")
	if err != nil || !strings.HasPrefix(key, "pck_") || strings.Count(key, "\n") != 1 {
		t.Fatalf("agent key create through the environment printed %q, %v", key, err)
	}

	// The data dir is taken: a second node says so and exits non-zero.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, n.Bin, "server", "--dev", "--data-dir", n.DataDir,
		"--gateway-addr", harness.FreeAddr(t), "--admin-addr", harness.FreeAddr(t))
	msg, err := second.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("a second node on the same data dir was still running after 30s:\n%s", msg)
	}
	if err == nil || !strings.Contains(string(msg), "already running with this data dir") {
		t.Fatalf("second node on the same data dir: %v\n%s", err, msg)
	}
	if strings.Contains(string(msg), strings.TrimSpace(string(token))) || strings.Contains(n.Logs(), strings.TrimSpace(string(token))) {
		t.Fatal("the admin token appears in a log")
	}
}

// TestSecondSignalExitsAtOnce checks that an operator's second Ctrl-C ends
// a node whose graceful shutdown waits for a slow admin request (a persona
// draft asking an upstream that never answers), instead of being ignored.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	// An upstream that accepts connections and never answers.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	n := harness.StartNode(t)
	n.Apply(fmt.Sprintf("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: slow}\nspec: {url: \"http://%s/mcp\"}\n---\n"+
		"apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec: {tools: [{tool: slow/read_things}]}\n", hole.Addr()))
	go n.CLI("persona", "draft", "--description", "reads things") // blocks ~10s on the silent upstream
	time.Sleep(500 * time.Millisecond)

	pid := n.PID()
	proc, _ := os.FindProcess(pid)
	alive := func() bool { return syscall.Kill(pid, 0) == nil }
	proc.Signal(os.Interrupt)
	time.Sleep(500 * time.Millisecond)
	if !alive() {
		t.Skip("the node finished its shutdown before the second signal; nothing to check")
	}
	proc.Signal(os.Interrupt)
	deadline := time.Now().Add(4 * time.Second)
	for alive() {
		if time.Now().After(deadline) {
			t.Fatalf("node still running 4s after a second SIGINT:\n%s", n.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// configOnly drops the STATUS column (the last one) of a get table: what a
// node last saw of an upstream is runtime, not state, and starts over after
// a restart.
func configOnly(table string) string {
	lines := strings.Split(table, "\n")
	at := strings.Index(lines[0], "STATUS")
	if at < 0 {
		return table
	}
	for i, l := range lines {
		if len(l) > at {
			lines[i] = strings.TrimRight(l[:at], " ")
		}
	}
	return strings.Join(lines, "\n")
}
