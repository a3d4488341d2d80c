package qa

import (
	"context"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/icap/icaptest"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// records is a real go-sdk MCP server holding customer records: lookup
// serves one (card number, e-mail), store keeps the raw arguments it got.
type records struct {
	url  string
	mu   sync.Mutex
	got  []string
	card string
	mail string
}

func (r *records) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func startRecords(t *testing.T, name, card, mail string) *records {
	t.Helper()
	r := &records{card: card, mail: mail}
	srv := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	srv.AddTool(&mcp.Tool{Name: "lookup", Description: "Read a customer record", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			rec := map[string]any{"customer": "Jane Roe", "card": r.card, "email": r.mail}
			return &mcp.CallToolResult{
				Content:           []mcp.Content{&mcp.TextContent{Text: "Jane Roe (Project Nightjar) pays with " + r.card + ", mail " + r.mail}},
				StructuredContent: rec,
			}, nil
		})
	srv.AddTool(&mcp.Tool{Name: "store", Description: "Store a note", InputSchema: map[string]any{"type": "object"}},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			r.mu.Lock()
			r.got = append(r.got, string(req.Params.Arguments))
			r.mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "stored"}}}, nil
		})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	r.url = "http://" + l.Addr().String() + "/mcp"
	return r
}

// detectorSample makes a fresh value a detector recognises (test data is
// generated, never committed).
func detectorSample(t *testing.T, id string, seed uint64) string {
	t.Helper()
	d, err := dlp.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	s, a, b := d.Sample(mrand.New(mrand.NewPCG(seed, 11)))
	return s[a:b]
}

const dlpYAML = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: vault}
spec: {url: VAULT_URL, environment: prod, egress: internal}
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: sandbox}
spec: {url: SANDBOX_URL, environment: dev, egress: internal}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: customers}
spec:
  tools: [{tool: vault/*}, {tool: sandbox/*}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support}
spec:
  skills: [customers]
  dlp:
    - {categories: [pci, secrets], direction: both, action: redact}
    - {categories: [pii], direction: response, action: mask}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: billing}
spec:
  skills: [customers]
  dlp:
    - {categories: [pci], direction: response, action: tokenize}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: analyst}
spec: {skills: [customers]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: support-bot}
spec: {persona: support}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: billing-bot}
spec: {persona: billing}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: analyst-bot}
spec: {persona: analyst}
`

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestDLPThroughTheBinary is issue 4's story through the real binary: a
// persona with DLP rules applied as YAML; what the agent sees and what the
// upstream receives are checked on both sides, tokens survive a restart
// (their key comes from the node's HSM), and prod data read by one session
// cannot be written to a dev upstream.
func TestDLPThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	card := detectorSample(t, "card-mastercard", 21)
	mail := detectorSample(t, "email", 22)
	token := detectorSample(t, "github-pat", 23)
	vault := startRecords(t, "vault", card, mail)
	sandbox := startRecords(t, "sandbox", card, mail)
	n := harness.StartNode(t)
	n.Apply(strings.NewReplacer("VAULT_URL", vault.url, "SANDBOX_URL", sandbox.url).Replace(dlpYAML))
	keys := map[string]string{}
	for _, a := range []string{"support-bot", "billing-bot", "analyst-bot"} {
		keys[a] = n.NewKey(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	connect := func(persona, agent string) *mcp.ClientSession {
		t.Helper()
		s, err := connectAgent(ctx, n.GatewayURL()+"/p/"+persona+"/mcp", keys[agent])
		if err != nil {
			t.Fatalf("connect %s: %v\n%s", agent, err, n.Logs())
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	digits := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
	}

	// support: the card is redacted, the e-mail masked, in text and in
	// structuredContent; the agent's SDK parses the rewritten result.
	support := connect("support", "support-bot")
	res, err := support.CallTool(ctx, &mcp.CallToolParams{Name: "vault_lookup", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("lookup: %v %+v", err, res)
	}
	sc, _ := json.Marshal(res.StructuredContent)
	seen := resultText(res) + string(sc)
	if strings.Contains(seen, card) || strings.Contains(seen, mail) || !strings.Contains(seen, "[REDACTED:card-") || !strings.Contains(seen, "*") {
		t.Fatalf("support-bot saw %s", seen)
	}

	// Credentials and cards in arguments never reach the upstream.
	if _, err := support.CallTool(ctx, &mcp.CallToolParams{Name: "vault_store", Arguments: map[string]any{"note": "token " + token + " card " + card}}); err != nil {
		t.Fatal(err)
	}
	got := vault.received()
	if len(got) != 1 || strings.Contains(got[0], token) || strings.Contains(got[0], digits(card)[:8]) || !strings.Contains(got[0], "[REDACTED:github-pat]") {
		t.Fatalf("vault received %q", got)
	}

	// billing: deterministic tokens, stable across a restart of the node.
	tokenOf := func() string {
		t.Helper()
		s := connect("billing", "billing-bot")
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "vault_lookup", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &m)
		tok, _ := m["card"].(string)
		if !strings.HasPrefix(tok, "tok_") || strings.Contains(resultText(res), card) {
			t.Fatalf("billing-bot saw card %q, text %q", tok, resultText(res))
		}
		return tok
	}
	before := tokenOf()
	if again := tokenOf(); again != before {
		t.Fatalf("tokens differ between sessions: %q %q", before, again)
	}
	n.Stop()
	n.Start()
	if after := tokenOf(); after != before {
		t.Fatalf("token changed across a restart: %q then %q (the key must come from the HSM)", before, after)
	}

	// analyst: no rules, so it reads the card from prod; sending it on to the
	// dev sandbox is refused with a reason that names the flow, not the value.
	analyst := connect("analyst", "analyst-bot")
	res, err = analyst.CallTool(ctx, &mcp.CallToolParams{Name: "vault_lookup", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(resultText(res), card) {
		t.Fatalf("analyst lookup: %v", err)
	}
	_, err = analyst.CallTool(ctx, &mcp.CallToolParams{Name: "sandbox_store", Arguments: map[string]any{"note": "copy of " + card}})
	var je *jsonrpc.Error
	if !errors.As(err, &je) || !strings.Contains(je.Message, `from prod upstream "vault" may not flow to dev upstream "sandbox"`) || strings.Contains(je.Message, digits(card)[:8]) {
		t.Fatalf("prod → dev: %v", err)
	}
	if got := sandbox.received(); len(got) != 0 {
		t.Fatalf("sandbox received %q", got)
	}
	// The node's decision log says what DLP did, never the values (the log
	// reaches the test through a pipe: wait for the last record).
	logs := n.Logs()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs, "dlp_request=block") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		logs = n.Logs()
	}
	if strings.Contains(logs, digits(card)[:8]) || strings.Contains(logs, token) || strings.Contains(logs, mail) {
		t.Fatal("the node logged a sensitive value")
	}
	if !strings.Contains(logs, "dlp_request=block") || !strings.Contains(logs, "dlp_response=modify") {
		t.Fatalf("decision log without DLP verdicts:\n%s", logs)
	}
}

// startContentFilter runs the real c-icap server with its content filtering
// service "filter" (see icaptest).
func startContentFilter(t *testing.T) string {
	t.Helper()
	return icaptest.Start(t)
}

// TestICAPThroughTheBinary starts the node with --icap-url pointing at a
// real c-icap content filter: its rewrite reaches the agent, its block
// refuses the call before the upstream; a node whose ICAP service is down
// refuses calls (fail-closed by default).
func TestICAPThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	icapAddr := startContentFilter(t)
	card := detectorSample(t, "card-visa", 31)
	vault := startRecords(t, "vault", card, detectorSample(t, "email", 32))
	sandbox := startRecords(t, "sandbox", card, "x@example.com")
	yaml := strings.NewReplacer("VAULT_URL", vault.url, "SANDBOX_URL", sandbox.url).Replace(dlpYAML)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	n := harness.StartNode(t, "--icap-url", "icap://"+icapAddr+"/filter", "--icap-mode", "reqmod,respmod")
	n.Apply(yaml)
	s, err := connectAgent(ctx, n.GatewayURL()+"/p/analyst/mcp", n.NewKey("analyst-bot"))
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, n.Logs())
	}
	defer s.Close()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "vault_lookup", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(resultText(res), "Jane Roe (CLASSIFIED)") {
		t.Fatalf("lookup through the content filter: %v %+v\n%s", err, res, n.Logs())
	}
	_, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "vault_store", Arguments: map[string]any{"note": "EICAR-TEST-SIGNATURE"}})
	var je *jsonrpc.Error
	if !errors.As(err, &je) || !strings.Contains(je.Message, "refused by the ICAP service") {
		t.Fatalf("blocked request: %v", err)
	}
	if got := vault.received(); len(got) != 0 {
		t.Fatalf("vault received %q", got)
	}

	down := harness.StartNode(t, "--icap-url", "icap://"+harness.FreeAddr(t)+"/filter", "--icap-timeout", "2s")
	down.Apply(yaml)
	s2, err := connectAgent(ctx, down.GatewayURL()+"/p/analyst/mcp", down.NewKey("analyst-bot"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.CallTool(ctx, &mcp.CallToolParams{Name: "vault_store", Arguments: map[string]any{"note": "hello"}})
	if err == nil || !strings.Contains(err.Error(), "content inspection is unavailable") {
		t.Fatalf("fail-closed: %v", err)
	}
	if got := vault.received(); len(got) != 0 {
		t.Fatalf("vault received %q while the ICAP service was down", got)
	}
}
