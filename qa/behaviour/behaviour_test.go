package behaviourqa

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

type ticketIn struct {
	ID string `json:"id"`
}
type fileIn struct {
	Path string `json:"path"`
	SHA  string `json:"sha,omitempty"`
}
type mailIn struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// startHelpdesk serves a real go-sdk MCP server: get_ticket returns a
// ticket that names the next one; read_file knows only src/main.go and
// fails (isError) for anything else.
func startHelpdesk(t testing.TB) string {
	srv := mcp.NewServer(&mcp.Implementation{Name: "helpdesk", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "get_ticket", Description: "Read a support ticket"}, func(_ context.Context, _ *mcp.CallToolRequest, in ticketIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ticket " + in.ID + ": printer on fire; see also T-" + in.ID + "0"}}}, nil, nil
	})
	mcp.AddTool(srv, &mcp.Tool{Name: "read_file", Description: "Read a file of the repository"}, func(_ context.Context, _ *mcp.CallToolRequest, in fileIn) (*mcp.CallToolResult, any, error) {
		if in.Path == "src/main.go" {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "package main // imports src/util/v2.go"}}}, nil, nil
		}
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no such file: " + in.Path}}}, nil, nil
	})
	return serve(t, srv)
}

func startMail(t testing.TB) string {
	srv := mcp.NewServer(&mcp.Implementation{Name: "mail", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "send", Description: "Send an email"}, func(_ context.Context, _ *mcp.CallToolRequest, in mailIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sent to " + in.To}}}, nil, nil
	})
	return serve(t, srv)
}

func serve(t testing.TB, srv *mcp.Server) string {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{JSONResponse: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String() + "/mcp"
}

// world declares the upstreams (mail is external egress), the skills, and
// personas support and dev with agents.
func world(helpdesk, mail string, agents map[string]string) string {
	y := fmt.Sprintf(`apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: %q, egress: internal}
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: mail}
spec: {url: %q, egress: external}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec: {tools: [{tool: helpdesk/get_ticket}]}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: code}
spec: {tools: [{tool: helpdesk/read_file}]}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: email}
spec: {tools: [{tool: mail/send}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support}
spec: {skills: [read-tickets, email]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: dev}
spec: {skills: [code, read-tickets]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: sales}
spec: {skills: [read-tickets, email]}
`, helpdesk, mail)
	names := make([]string, 0, len(agents))
	for a := range agents {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, a := range names {
		y += fmt.Sprintf("---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: %s}\nspec: {persona: %s}\n", a, agents[a])
	}
	return y
}

const readThenEmail = `---
apiVersion: portcullis/v1
kind: SequenceRule
metadata: {name: read-then-email}
spec:
  personas: [support, sales]
  after: {skills: [read-tickets], count: 200, within: 10m}
  then: {egress: external}
  action: %s
`

func client(t testing.TB, n *harness.Node, persona, agent string) *harness.RawClient {
	c := harness.NewRawClient(n.GatewayURL()+"/p/"+persona+"/mcp", n.NewKey(agent), 1)
	if err := c.Initialize(); err != nil {
		t.Fatalf("initialize %s: %v", agent, err)
	}
	return c
}

func ok(r *harness.Response) bool {
	return r != nil && r.Error == nil && !strings.Contains(string(r.Result), `"isError":true`)
}

// TestReadThenExfiltrate: 200 ticket reads pass, the email after them is
// refused naming the rule, and reads go on unaffected.
//
//	go test ./qa/behaviour -run ReadThenExfiltrate -v
func TestReadThenExfiltrate(t *testing.T) {
	hd, ml := startHelpdesk(t), startMail(t)
	n := harness.StartNode(t)
	n.Apply(world(hd, ml, map[string]string{"triage-bot": "support"}) + fmt.Sprintf(readThenEmail, "block"))
	if out := n.MustCLI("get", "sequencerules"); !strings.Contains(out, "read-then-email") || !strings.Contains(out, "200 × skills read-tickets / 10m0s") || !strings.Contains(out, "egress external") {
		t.Fatalf("get sequencerules:\n%s", out)
	}
	// A condition that is too expensive is refused at apply time, naming the field.
	bad := strings.Replace(fmt.Sprintf(readThenEmail, "block"), "read-then-email", "costly", 1) +
		"  condition: \"call.args.all(a, call.args.all(b, call.args.all(c, call.args.all(d, true))))\"\n"
	f := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(f, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := n.CLI("apply", "-f", f); err == nil || !strings.Contains(stderr, "spec.condition: too expensive") {
		t.Fatalf("costly condition: err %v\n%s", err, stderr)
	}
	c := client(t, n, "support", "triage-bot")
	if r, err := c.CallTool("mail_send", map[string]any{"to": "a@example.com", "body": "hi"}); err != nil || !ok(r) {
		t.Fatalf("email before any read: %v %+v", err, r)
	}
	reads := 0
	for i := range 200 {
		r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(1000 + i)})
		if err != nil || !ok(r) {
			t.Fatalf("read %d: %v %+v", i, err, r)
		}
		reads++
	}
	r, err := c.CallTool("mail_send", map[string]any{"to": "leak@example.com", "body": "200 tickets"})
	if err != nil || r.Error == nil {
		t.Fatalf("email after 200 reads was not refused: %v %s", err, r.Result)
	}
	want := "refused by sequence rule read-then-email: 200 calls to skill read-tickets within 10m0s, then an external-egress tool"
	if r.Error.Message != want {
		t.Fatalf("refusal: %q\nwant %q", r.Error.Message, want)
	}
	after, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": "7"})
	if err != nil || !ok(after) {
		t.Fatalf("a read after the refusal: %v %+v", err, after)
	}
	fmt.Printf("read-then-exfiltrate: %d/200 reads passed, email after them refused (%q), reads after it pass\n", reads, r.Error.Message)
	checkReport(t, n, "triage-bot", "read-then-exfiltrate",
		"refused by sequence rule read-then-email",
		"The first refusal came right after 200 allowed calls to helpdesk_get_ticket")
}

// TestRunawayStoppedReleasedAndCheap: a fast loop of failing calls with
// fabricated paths and hashes is stopped (quarantine) at call N ≤ 1000,
// the calls after it are refused, each refusal's cost is measured, and
// `portcullis agent release` lifts it.
//
//	go test ./qa/behaviour -run Runaway -v
func TestRunawayStoppedReleasedAndCheap(t *testing.T) {
	hd, ml := startHelpdesk(t), startMail(t)
	n := harness.StartNode(t)
	n.Apply(world(hd, ml, map[string]string{"coder": "dev", "colleague": "dev"})) // no rule at all
	c := client(t, n, "dev", "coder")
	fabricated := func(i int) map[string]any {
		return map[string]any{"path": fmt.Sprintf("src/pkg%d/gen_%x.go", i%113, i*7919), "sha": fmt.Sprintf("%040x", uint64(i)*0x9e3779b97f4a7c15)}
	}
	stoppedAt, reason := 0, ""
	for i := 1; i <= 2000; i++ {
		r, err := c.CallTool("helpdesk_read_file", fabricated(i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != nil {
			stoppedAt, reason = i, r.Error.Message
			break
		}
	}
	if stoppedAt == 0 || stoppedAt > 1000 {
		t.Fatalf("runaway not stopped within 1000 calls (stopped at %d)", stoppedAt)
	}
	if !strings.Contains(reason, "quarantined") || !strings.Contains(reason, "runaway: ") || !strings.Contains(reason, "expected under") {
		t.Fatalf("refusal does not explain the signal: %s", reason)
	}
	// The quarantine is in the replicated state.
	out := n.MustCLI("agent", "quarantined")
	if !strings.Contains(out, "coder") || !strings.Contains(out, "default:") {
		t.Fatalf("agent quarantined lists:\n%s", out)
	}
	// The rest is refused cheaply: measure.
	const refused = 3000
	cpu0, t0 := n.CPU(), time.Now()
	for i := range refused {
		r, err := c.CallTool("helpdesk_read_file", fabricated(10000+i))
		if err != nil || r.Error == nil || !strings.Contains(r.Error.Message, "quarantined") {
			t.Fatalf("call %d after the quarantine: %v %+v", i, err, r)
		}
	}
	wall, cpu := time.Since(t0), n.CPU()-cpu0
	// A colleague of the same persona is not affected.
	cc := client(t, n, "dev", "colleague")
	if r, err := cc.CallTool("helpdesk_read_file", map[string]any{"path": "src/main.go"}); err != nil || !ok(r) {
		t.Fatalf("colleague: %v %+v", err, r)
	}
	// The quarantine is replicated state: it survives a restart of the node.
	n.Stop()
	n.Start()
	c = client(t, n, "dev", "coder")
	if r, err := c.CallTool("helpdesk_read_file", map[string]any{"path": "src/main.go"}); err != nil || r.Error == nil || !strings.Contains(r.Error.Message, "quarantined") {
		t.Fatalf("after a restart the quarantined agent was served: %v %+v", err, r)
	}
	checkReport(t, n, "coder", "runaway", "It kept calling after failures", "quarantined")
	// The quarantine wrote the agent's incident report by itself.
	var auto []string
	for end := time.Now().Add(10 * time.Second); len(auto) == 0 && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		auto, _ = filepath.Glob(filepath.Join(n.DataDir, "incidents", "*-coder-quarantine.html"))
	}
	if len(auto) != 1 {
		t.Fatalf("automatic incident reports after the quarantine: %v, want one\n%s", auto, n.Logs())
	}
	if b, err := os.ReadFile(auto[0]); err != nil || !strings.Contains(string(b), "trigger: quarantine by default:") || !strings.Contains(string(b), "error-retry storm") {
		t.Errorf("automatic report %s: %v\n%.400s", auto[0], err, b)
	}
	n.MustCLI("agent", "release", "coder")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.CallTool("helpdesk_read_file", map[string]any{"path": "src/main.go"})
		if err == nil && ok(r) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("released agent still refused: %v %+v", err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("runaway: stopped at call %d (%s)\n", stoppedAt, reason)
	fmt.Printf("runaway: %d refused calls after it: %.1f µs wall per call (client included, sequential), %.1f µs node CPU per call; released with `portcullis agent release coder`\n",
		refused, float64(wall.Microseconds())/refused, float64(cpu.Microseconds())/refused)
}

// TestStopEndsTheSession: a stop rule refuses the email and ends the
// session (its next request is refused by the gateway); a new session of
// the same agent is served.
func TestStopEndsTheSession(t *testing.T) {
	hd, ml := startHelpdesk(t), startMail(t)
	n := harness.StartNode(t)
	n.Apply(world(hd, ml, map[string]string{"triage-bot": "support"}) + fmt.Sprintf(readThenEmail, "stop") + "  scope: session\n")
	key := n.NewKey("triage-bot")
	c := harness.NewRawClient(n.GatewayURL()+"/p/support/mcp", key, 1)
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(i)}); err != nil || !ok(r) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	r, err := c.CallTool("mail_send", map[string]any{"to": "x@example.com", "body": "all of it"})
	if err != nil || r.Error == nil || !strings.Contains(r.Error.Message, "refused by sequence rule read-then-email") || !strings.Contains(r.Error.Message, "the session is ended") {
		t.Fatalf("email: %v %+v", err, r)
	}
	if _, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": "1"}); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("the ended session still served: %v", err)
	}
	fresh := harness.NewRawClient(n.GatewayURL()+"/p/support/mcp", key, 1)
	if err := fresh.Initialize(); err != nil {
		t.Fatal(err)
	}
	if r, err := fresh.CallTool("mail_send", map[string]any{"to": "x@example.com", "body": "hi"}); err != nil || !ok(r) {
		t.Fatalf("a new session: %v %+v", err, r)
	}
	fmt.Println("stop: the email after 200 reads refused and the session ended (its next request: 404); a new session is served")
}

// TestHoldApprovedFromCLI: a hold rule parks the email; `portcullis
// approvals list` shows it and `approvals approve ID` lets it through.
func TestHoldApprovedFromCLI(t *testing.T) {
	hd, ml := startHelpdesk(t), startMail(t)
	n := harness.StartNode(t)
	n.Apply(world(hd, ml, map[string]string{"triage-bot": "support"}) + fmt.Sprintf(readThenEmail, "hold") + "  holdTimeout: 30s\n")
	c := client(t, n, "support", "triage-bot")
	for i := range 200 {
		if r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(i)}); err != nil || !ok(r) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	type res struct {
		r   *harness.Response
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := c.CallTool("mail_send", map[string]any{"to": "boss@example.com", "body": "summary"})
		done <- res{r, err}
	}()
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" {
		for _, line := range strings.Split(n.MustCLI("approvals", "list"), "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[1] == "pending" && f[2] == "triage-bot" {
				id = f[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no pending approval listed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	held := time.Now()
	n.MustCLI("approvals", "approve", id)
	got := <-done
	if got.err != nil || !ok(got.r) {
		t.Fatalf("approved call: %v %+v", got.err, got.r)
	}
	fmt.Printf("hold: approval %s listed, approved from the CLI, call completed %s after the approval\n", id, time.Since(held).Round(time.Millisecond))
}

// TestNormalWorkloadFalsePositives replays a realistic mix through one
// node with the read-then-email rule and the default protections on: 30
// agents over three personas, bursts, failed lookups retried, a nightly
// batch job reading 1,500 tickets, mail sent after small batches of reads.
// It prints how many sessions were flagged (any call refused by the
// behaviour stage); the goal is none. (An agent that does read 200 tickets
// and then mails is what the rule is for: a first version of this replay,
// with bursts of up to 45 reads, had 3 of 31 such agents, all correctly
// refused by the rule; the default protections flagged none.)
//
//	go test ./qa/behaviour -run NormalWorkload -v
func TestNormalWorkloadFalsePositives(t *testing.T) {
	hd, ml := startHelpdesk(t), startMail(t)
	n := harness.StartNode(t)
	agents := map[string]string{"nightly-batch": "sales"}
	personas := []string{"support", "dev", "sales"}
	for i := range 30 {
		agents[fmt.Sprintf("agent-%02d", i)] = personas[i%3]
	}
	n.Apply(world(hd, ml, agents) + fmt.Sprintf(readThenEmail, "block"))
	var mu sync.Mutex
	flagged := map[string]string{}
	calls, failedCalls := 0, 0
	record := func(agent string, r *harness.Response, err error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if err != nil {
			flagged[agent] = err.Error()
			return
		}
		if r.Error != nil && r.Error.Code == -32040 {
			flagged[agent] = r.Error.Message
		} else if !ok(r) {
			failedCalls++
		}
	}
	var wg sync.WaitGroup
	names := make([]string, 0, len(agents))
	for a := range agents {
		names = append(names, a)
	}
	slices.Sort(names)
	sem := make(chan struct{}, 8)
	for ai, a := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rng := rand.New(rand.NewPCG(uint64(ai), 7))
			p := agents[a]
			c := client(t, n, p, a)
			if a == "nightly-batch" {
				for i := range 1500 {
					r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(i)})
					record(a, r, err)
				}
				return
			}
			for burst := range 6 {
				reads := 3 + rng.IntN(18) // a support agent answers after a handful of tickets
				for i := range reads {
					switch {
					case p == "dev" && rng.IntN(4) == 0:
						// Looks for a file, misses, retries with the one it was told of.
						r, err := c.CallTool("helpdesk_read_file", map[string]any{"path": fmt.Sprintf("src/guess%d.go", rng.IntN(50))})
						record(a, r, err)
						r, err = c.CallTool("helpdesk_read_file", map[string]any{"path": "src/main.go"})
						record(a, r, err)
					default:
						r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(burst*100 + i)})
						record(a, r, err)
						if rng.IntN(10) == 0 { // a flaky client retries
							r, err = c.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(burst*100 + i)})
							record(a, r, err)
						}
					}
				}
				if p != "dev" {
					r, err := c.CallTool("mail_send", map[string]any{"to": "customer@example.com", "body": "update"})
					record(a, r, err)
				}
			}
		}()
	}
	wg.Wait()
	sessions := len(agents)
	fmt.Printf("normal workload: %d sessions (%d agents, 3 personas, 1 nightly batch of 1500 reads), %d calls (%d failed upstream), %d sessions flagged (%.2f%%)\n",
		sessions, len(agents), calls, failedCalls, len(flagged), 100*float64(len(flagged))/float64(sessions))
	for a, why := range flagged {
		t.Errorf("normal agent %s flagged: %s", a, why)
	}
}
