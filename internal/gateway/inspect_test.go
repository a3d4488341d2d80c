package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// sample generates a fresh value a detector recognises (test secrets are
// made at test time, never committed).
func sample(t testing.TB, id string, seed uint64) string {
	t.Helper()
	d, err := dlp.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	s, a, b := d.Sample(mrand.New(mrand.NewPCG(seed, 7)))
	return s[a:b]
}

// recorder is an upstream MCP server (the real SDK) that remembers the raw
// arguments every call brought and serves records holding sensitive values.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []string // raw arguments, in order
	card string   // served by lookup, the prompt and the resource
	mail string
	say  string // more text lookup returns
}

func (r *recorder) setSay(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.say = s
}

func (r *recorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *recorder) server(t testing.TB) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: r.name, Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	s.AddTool(&sdk.Tool{Name: "store", Description: "Stores a note", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		r.mu.Lock()
		r.got = append(r.got, string(req.Params.Arguments))
		r.mu.Unlock()
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "stored"}}}, nil
	})
	s.AddTool(&sdk.Tool{Name: "lookup", Description: "Reads a customer", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: "reading card " + r.card})
		}
		_ = req.Session.Log(ctx, &sdk.LoggingMessageParams{Level: "info", Logger: r.name, Data: "read card " + r.card})
		r.mu.Lock()
		say := r.say
		r.mu.Unlock()
		rec := map[string]any{"name": "Jane Roe", "card": r.card, "email": r.mail, "note": "VIP" + say}
		js, _ := json.Marshal(rec)
		return &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: "Customer Jane Roe pays with card " + r.card + " (" + r.mail + ")"}, &sdk.TextContent{Text: string(js)}},
			StructuredContent: rec,
		}, nil
	})
	s.AddTool(&sdk.Tool{Name: "ask", Description: "Asks the user to confirm a charge", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		res, err := req.Session.Elicit(ctx, &sdk.ElicitParams{Message: "Charge card " + r.card + "?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"note": map[string]any{"type": "string"}}}})
		if err != nil {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "elicitation failed: " + err.Error()}}, IsError: true}, nil
		}
		b, _ := json.Marshal(res.Content)
		r.mu.Lock()
		r.got = append(r.got, string(b))
		r.mu.Unlock()
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "answered " + res.Action}}}, nil
	})
	// confirm asks the user first, MRTR style (input_required on
	// 2026-07-28, elicitation for older clients), and records the arguments
	// of every round.
	s.AddTool(&sdk.Tool{Name: "confirm", Description: "Confirms with the user", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		r.mu.Lock()
		r.got = append(r.got, string(req.Params.Arguments))
		r.mu.Unlock()
		if _, ok := req.Params.InputResponses["ok"].(*sdk.ElicitResult); ok {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "confirmed"}}}, nil
		}
		return &sdk.CallToolResult{
			InputRequests: sdk.InputRequestMap{"ok": &sdk.ElicitParams{Message: "Sure?", RequestedSchema: map[string]any{"type": "object"}}},
			RequestState:  "st",
		}, nil
	})
	// tag mirrors its "label" argument into Mcp-Param-Label (x-mcp-header)
	// and records what arrived in the header.
	s.AddTool(&sdk.Tool{Name: "tag", Description: "Tags a record", InputSchema: map[string]any{
		"type":       "object",
		"properties": map[string]any{"label": map[string]any{"type": "string", "x-mcp-header": "Label"}},
	}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var h string
		if req.Extra != nil {
			h = req.Extra.Header.Get("Mcp-Param-Label")
		}
		r.mu.Lock()
		r.got = append(r.got, "header:"+h+" body:"+string(req.Params.Arguments))
		r.mu.Unlock()
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "tagged"}}}, nil
	})
	s.AddPrompt(&sdk.Prompt{Name: "billing"}, func(ctx context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		r.mu.Lock()
		args, _ := json.Marshal(req.Params.Arguments)
		r.got = append(r.got, string(args))
		r.mu.Unlock()
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "Refund card " + r.card}}}}, nil
	})
	s.AddResource(&sdk.Resource{URI: "customer://jane", Name: "jane", MIMEType: "application/json"}, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, MIMEType: "application/json", Text: `{"card":"` + r.card + `"}`}}}, nil
	})
	return s
}

// dlpEnv is the test gateway plus four recording upstreams with data-flow
// labels, and one persona per DLP policy under test.
type dlpEnv struct {
	*env
	rec  map[string]*recorder
	keys map[string]string // persona -> agent key
	card string
	mail string
}

var dlpPersonas = map[string][]state.DLPRule{
	"p-none":     nil,
	"p-mask":     {{Categories: []string{"pci"}, Direction: "response", Action: "mask", KeepTail: intptr(4)}},
	"p-redact":   {{Categories: []string{"pci", "secrets"}, Direction: "both", Action: "redact"}, {Categories: []string{"pii"}, Direction: "response", Action: "mask"}},
	"p-tokenize": {{Categories: []string{"pci"}, Action: "tokenize"}},
	"p-ff1":      {{Categories: []string{"pci"}, Action: "tokenize", Format: "ff1"}},
	"p-block":    {{Categories: []string{"pii"}, Direction: "response", Action: "log"}, {Categories: []string{"pci"}, Direction: "both", Action: "block"}},
	// state validation cannot know every detector id; the gateway fails closed
	"p-broken": {{Detectors: []string{"no-such-detector"}, Action: "redact"}},
}

func intptr(i int) *int { return &i }

func newDLPEnv(t *testing.T, mut func(*gateway.Config)) *dlpEnv {
	e := &dlpEnv{rec: map[string]*recorder{}, keys: map[string]string{}}
	e.card = sample(t, "card-visa", 1)
	e.mail = sample(t, "email", 2)
	labels := map[string][2]string{ // upstream -> environment, egress; and its transport
		"vault":   {"prod", "internal"},
		"crm":     {"prod", "internal"},
		"sandbox": {"dev", "internal"},
		"partner": {"prod", "external"},
	}
	modes := map[string]string{"vault": "stateful", "crm": "json", "sandbox": "stateless", "partner": "stateful"}
	// The upstreams start first, so they close after the gateway (whose
	// open streams to them would hold their Close).
	servers := map[string]*upstreamServer{}
	for name := range labels {
		r := &recorder{name: name, card: e.card, mail: e.mail}
		e.rec[name] = r
		servers[name] = serveUpstream(t, r.server(t), modes[name])
	}
	e.env = newEnv(t, mut)
	for name, u := range servers {
		e.ups[name] = u
	}
	agents := map[string]*state.Agent{}
	for persona := range dlpPersonas {
		agent := persona + "-bot"
		tok, k, err := authn.NewAPIKey(agent, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.env.keys[k.ID] = k
		e.keys[persona] = tok
		agents[agent] = &state.Agent{Meta: state.Meta{Name: agent}, Persona: persona}
	}
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Skills["records"] = &state.Skill{Meta: state.Meta{Name: "records"},
			Tools:     []state.ToolGrant{{Tool: "vault/*"}, {Tool: "crm/*"}, {Tool: "sandbox/*"}, {Tool: "partner/*"}},
			Resources: []state.ResourceGrant{{URI: "customer://*", Upstream: "vault"}},
			Prompts:   []state.PromptGrant{{Prompt: "vault/*"}},
		}
		for name, l := range labels {
			s.Upstreams[name] = &state.Upstream{Meta: state.Meta{Name: name}, URL: e.ups[name].url(), Environment: l[0], Egress: l[1]}
		}
		for persona, rules := range dlpPersonas {
			s.Personas[persona] = &state.Persona{Meta: state.Meta{Name: persona}, Skills: []string{"records"}, DLP: rules}
		}
		for n, a := range agents {
			s.Agents[n] = a
		}
	}))
	return e
}

func (e *dlpEnv) agent(persona, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	return e.connect(persona, e.keys[persona], version, opts)
}

// dlpError returns the JSON-RPC error of a refused call.
func dlpError(t *testing.T, err error) *jsonrpc.Error {
	t.Helper()
	var je *jsonrpc.Error
	if !errors.As(err, &je) {
		t.Fatalf("want a JSON-RPC error, got %v", err)
	}
	if je.Code != gateway.DLPBlockedCode {
		t.Fatalf("error code %d (%s), want %d", je.Code, je.Message, gateway.DLPBlockedCode)
	}
	return je
}

func structured(t *testing.T, res *sdk.CallToolResult) map[string]any {
	t.Helper()
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("structuredContent %s: %v", b, err)
	}
	return m
}

func digits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Results: every action rewrites the card wherever it appears (text,
// JSON inside text, structuredContent), the result stays valid for the
// agent's SDK, and block refuses with the detector and rule, never the value.
func TestDLPResultActions(t *testing.T) {
	e := newDLPEnv(t, nil)
	last4 := digits(e.card)[len(digits(e.card))-4:]
	for _, v := range []string{"2025-06-18", "2026-07-28"} {
		for _, up := range []string{"vault", "crm"} { // SSE-streamed and JSON upstream responses
			t.Run(v+"/"+up, func(t *testing.T) {
				// p-none: no rules, nothing changes
				res, err := call(t, e.agent("p-none", v, nil), up+"_lookup", nil)
				if err != nil || !strings.Contains(text(t, res), e.card) {
					t.Fatalf("p-none: %v %q", err, text(t, res))
				}

				res, err = call(t, e.agent("p-mask", v, nil), up+"_lookup", nil)
				if err != nil {
					t.Fatal(err)
				}
				sc := structured(t, res)
				masked, _ := sc["card"].(string)
				if strings.Contains(text(t, res), e.card) || masked == e.card || digits(masked) != last4 || !strings.Contains(masked, "****") {
					t.Fatalf("p-mask: text %q, card %q", text(t, res), masked)
				}
				if !strings.Contains(text(t, res), masked) || sc["email"] != e.mail {
					t.Fatalf("p-mask: text %q should hold %q and the e-mail untouched (%v)", text(t, res), masked, sc["email"])
				}

				res, err = call(t, e.agent("p-redact", v, nil), up+"_lookup", nil)
				if err != nil {
					t.Fatal(err)
				}
				sc = structured(t, res)
				if strings.Contains(text(t, res), e.card) || strings.Contains(text(t, res), e.mail) || !strings.HasPrefix(fmt.Sprint(sc["card"]), "[REDACTED:card-") {
					t.Fatalf("p-redact: %q %v", text(t, res), sc)
				}
				if sc["name"] != "Jane Roe" || sc["note"] != "VIP" {
					t.Fatalf("p-redact damaged other fields: %v", sc)
				}

				tok1, err := call(t, e.agent("p-tokenize", v, nil), up+"_lookup", nil)
				if err != nil {
					t.Fatal(err)
				}
				tok2, _ := call(t, e.agent("p-tokenize", v, nil), up+"_lookup", nil)
				a, b := fmt.Sprint(structured(t, tok1)["card"]), fmt.Sprint(structured(t, tok2)["card"])
				if !strings.HasPrefix(a, "tok_") || a != b || strings.Contains(text(t, tok1), e.card) {
					t.Fatalf("p-tokenize: tokens %q %q (deterministic across sessions)", a, b)
				}

				res, err = call(t, e.agent("p-ff1", v, nil), up+"_lookup", nil)
				if err != nil {
					t.Fatal(err)
				}
				f := fmt.Sprint(structured(t, res)["card"])
				if f == e.card || len(f) != len(e.card) || len(digits(f)) != len(digits(e.card)) || strings.Contains(text(t, res), e.card) {
					t.Fatalf("p-ff1: %q for %q (same layout, other digits)", f, e.card)
				}

				_, err = call(t, e.agent("p-block", v, nil), up+"_lookup", nil)
				je := dlpError(t, err)
				if strings.Contains(je.Message+string(je.Data), digits(e.card)[:6]) || !strings.Contains(je.Message, "card-") || !strings.Contains(je.Message, "spec.dlp[1]") {
					t.Fatalf("p-block: %s %s", je.Message, je.Data)
				}
			})
		}
	}
	// The decision records carry the verdicts, never values.
	var sawModify, sawBlock bool
	for {
		select {
		case d := <-e.decisions:
			if strings.Contains(fmt.Sprintf("%+v", d), digits(e.card)[:8]) {
				t.Fatalf("decision holds the card: %+v", d)
			}
			if d.Persona == "p-redact" && d.DLPResponse == "modify" && d.DLPFindings["email"] > 0 {
				sawModify = true
			}
			if d.Persona == "p-block" && d.Decision == gateway.Deny && d.DLPResponse == "block" && strings.Contains(d.Reason, "card-") {
				sawBlock = true
			}
			continue
		default:
		}
		break
	}
	if !sawModify || !sawBlock {
		t.Fatalf("decision records: modify %v, block %v", sawModify, sawBlock)
	}
}

// Prompts, resources and the notifications of a call are inspected too.
func TestDLPPromptsResourcesNotifications(t *testing.T) {
	e := newDLPEnv(t, nil)
	logs := make(chan string, 8)
	progress := make(chan string, 8)
	cs := e.agent("p-redact", "2025-11-25", &sdk.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) { logs <- fmt.Sprint(req.Params.Data) },
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			progress <- req.Params.Message
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gp, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "vault_billing", Arguments: map[string]string{"card": e.card}})
	if err != nil {
		t.Fatal(err)
	}
	if txt := gp.Messages[0].Content.(*sdk.TextContent).Text; strings.Contains(txt, e.card) || !strings.Contains(txt, "[REDACTED:card-") {
		t.Fatalf("prompt text %q", txt)
	}
	if got := e.rec["vault"].received(); len(got) != 1 || strings.Contains(got[0], e.card) {
		t.Fatalf("prompt arguments reached the upstream as %q", got)
	}
	rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "customer://jane"})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(rr.Contents[0].Text), &doc); err != nil || !strings.HasPrefix(doc["card"], "[REDACTED:card-") {
		t.Fatalf("resource text %q (%v): want valid JSON with the card redacted", rr.Contents[0].Text, err)
	}

	// An upstream's JSON-RPC error (here: not found, naming the URI) is
	// inspected too.
	_, err = cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "customer://" + e.card})
	var je *jsonrpc.Error
	if !errors.As(err, &je) || strings.Contains(je.Message+string(je.Data), e.card) || !strings.Contains(string(je.Data), "[REDACTED:card-") {
		t.Fatalf("upstream error: %v (data %s)", err, je.Data)
	}

	if err := cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	p := &sdk.CallToolParams{Name: "vault_lookup", Arguments: map[string]any{}}
	p.SetProgressToken("p-1")
	if _, err := cs.CallTool(ctx, p); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan string{"log": logs, "progress": progress} {
		select {
		case m := <-ch:
			if strings.Contains(m, e.card) || !strings.Contains(m, "[REDACTED:card-") {
				t.Fatalf("%s notification %q", name, m)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no %s notification relayed", name)
		}
	}
}

// Requests: credentials in arguments are redacted for every persona before
// the upstream sees them; a block rule refuses the call and the upstream
// never hears of it.
func TestDLPRequest(t *testing.T) {
	e := newDLPEnv(t, nil)
	token := sample(t, "github-pat", 3)
	aws := sample(t, "aws-access-key-id", 4)
	for _, v := range []string{"2025-03-26", "2026-07-28"} {
		before := len(e.rec["crm"].received())
		res, err := call(t, e.agent("p-none", v, nil), "crm_store", map[string]any{"note": "deploy with " + token, "nested": map[string]any{"key": aws, "n": 3}})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", v, err, res)
		}
		got := e.rec["crm"].received()
		if len(got) != before+1 {
			t.Fatalf("%s: upstream calls %d", v, len(got)-before)
		}
		last := got[len(got)-1]
		if strings.Contains(last, token) || strings.Contains(last, aws) || !strings.Contains(last, "[REDACTED:github-pat]") || !strings.Contains(last, "[REDACTED:aws-access-key-id]") {
			t.Fatalf("%s: upstream received %s", v, last)
		}
		var args map[string]any
		if err := json.Unmarshal([]byte(last), &args); err != nil || args["nested"].(map[string]any)["n"] != float64(3) {
			t.Fatalf("%s: arguments %s no longer valid: %v", v, last, err)
		}

		before = len(e.rec["crm"].received())
		_, err = call(t, e.agent("p-block", v, nil), "crm_store", map[string]any{"note": "charge " + e.card})
		je := dlpError(t, err)
		if !strings.Contains(je.Message, "card-") || !strings.Contains(je.Message, "spec.dlp[1]") || strings.Contains(je.Message, digits(e.card)[:8]) {
			t.Fatalf("%s: refusal %q", v, je.Message)
		}
		var data struct{ Detectors, Rules []string }
		if json.Unmarshal(je.Data, &data) != nil || len(data.Detectors) == 0 || data.Rules[0] != "spec.dlp[1]" {
			t.Fatalf("%s: error data %s", v, je.Data)
		}
		if n := len(e.rec["crm"].received()); n != before {
			t.Fatalf("%s: a blocked call reached the upstream", v)
		}

		// p-redact redacts cards in both directions
		if _, err := call(t, e.agent("p-redact", v, nil), "crm_store", map[string]any{"note": "charge " + e.card}); err != nil {
			t.Fatal(err)
		}
		got = e.rec["crm"].received()
		if last := got[len(got)-1]; strings.Contains(last, e.card) || !strings.Contains(last, "[REDACTED:card-") {
			t.Fatalf("%s: upstream received %s", v, last)
		}
	}
}

// A call the gateway retries itself (a 2026-07-28 upstream's input_required
// bridged for a legacy agent) sends inspected arguments every round.
func TestDLPBridgedRetry(t *testing.T) {
	e := newDLPEnv(t, nil)
	token := sample(t, "github-pat", 7)
	cs := e.agent("p-none", "2025-11-25", &sdk.ClientOptions{ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
		return &sdk.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
	}})
	res, err := call(t, cs, "sandbox_confirm", map[string]any{"note": "key " + token})
	if err != nil || text(t, res) != "confirmed" {
		t.Fatalf("confirm: %v %+v", err, res)
	}
	got := e.rec["sandbox"].received()
	if len(got) < 2 {
		t.Fatalf("upstream saw %d rounds, want the call and its retry", len(got))
	}
	for i, g := range got {
		if strings.Contains(g, token) || !strings.Contains(g, "[REDACTED:github-pat]") {
			t.Fatalf("round %d reached the upstream as %s", i+1, g)
		}
	}
}

// A redacted argument that the tool also takes as a header (x-mcp-header)
// does not travel on in the Mcp-Param-* header.
func TestDLPParamHeaders(t *testing.T) {
	e := newDLPEnv(t, nil)
	token := sample(t, "github-pat", 6)
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		cs := e.agent("p-none", v, nil)
		if _, err := cs.ListTools(context.Background(), nil); err != nil { // the SDK learns the x-mcp-header mapping
			t.Fatal(err)
		}
		before := len(e.rec["sandbox"].received())
		if _, err := call(t, cs, "sandbox_tag", map[string]any{"label": "key " + token}); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got := e.rec["sandbox"].received()
		if len(got) != before+1 || strings.Contains(got[before], token) || !strings.Contains(got[before], "header:") || !strings.Contains(got[before], "REDACTED") {
			t.Fatalf("%s: upstream received %q", v, got[before:])
		}
		t.Logf("%s: %s", v, got[before])
	}
}

// Data-flow control: a card read from a prod upstream may go to another
// prod internal upstream, never to a dev or an external one; another
// session is not tainted.
func TestDLPTaint(t *testing.T) {
	e := newDLPEnv(t, nil)
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(v, func(t *testing.T) {
			cs := e.agent("p-none", v, nil)
			if _, err := call(t, cs, "vault_lookup", nil); err != nil {
				t.Fatal(err)
			}
			args := map[string]any{"note": "customer card " + e.card}
			for up, want := range map[string]string{"sandbox": "may not flow to dev upstream", "partner": "may not be sent to external upstream"} {
				before := len(e.rec[up].received())
				_, err := call(t, cs, up+"_store", args)
				je := dlpError(t, err)
				if !strings.Contains(je.Message, want) || !strings.Contains(je.Message, `"vault"`) || strings.Contains(je.Message, digits(e.card)[:8]) {
					t.Fatalf("to %s: %q", up, je.Message)
				}
				if len(e.rec[up].received()) != before {
					t.Fatalf("tainted data reached %s", up)
				}
			}
			before := len(e.rec["crm"].received())
			if res, err := call(t, cs, "crm_store", args); err != nil || res.IsError {
				t.Fatalf("prod to prod: %v", err)
			}
			if got := e.rec["crm"].received(); len(got) != before+1 || !strings.Contains(got[len(got)-1], e.card) {
				t.Fatalf("crm received %v", got[before:])
			}
			if v == "2026-07-28" {
				return // no sessions: the agent's key is the flow's scope
			}
			// Another session of the same agent never received the card.
			other := e.agent("p-none", v, nil)
			if _, err := call(t, other, "sandbox_store", args); err != nil {
				t.Fatalf("untainted session refused: %v", err)
			}
		})
	}
}

// A persona whose DLP rules do not compile is refused, not left unprotected.
func TestDLPBrokenPolicyFailsClosed(t *testing.T) {
	e := newDLPEnv(t, nil)
	cs := e.agent("p-broken", "2025-11-25", nil)
	_, err := call(t, cs, "crm_store", map[string]any{"note": "hello"})
	if je := dlpError(t, err); !strings.Contains(je.Message, "DLP policy is invalid") {
		t.Fatalf("refusal %q", je.Message)
	}
	if got := e.rec["crm"].received(); len(got) != 0 {
		t.Fatalf("upstream received %q", got)
	}
	if _, err := call(t, cs, "vault_lookup", nil); err == nil || !strings.Contains(err.Error(), "DLP policy is invalid") {
		t.Fatalf("a call without arguments: %v", err)
	}
}

// Server-to-client requests relayed during a call (here elicitation) are
// inspected on the way to the agent, and the agent's answer on the way back.
func TestDLPElicitationRelay(t *testing.T) {
	e := newDLPEnv(t, nil)
	token := sample(t, "github-pat", 5)
	asked := make(chan string, 2)
	opts := func() *sdk.ClientOptions {
		return &sdk.ClientOptions{ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			asked <- req.Params.Message
			return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"note": "use " + token}}, nil
		}}
	}
	for i, v := range []string{"2025-11-25", "2026-07-28"} { // relayed; MRTR input_required and retry
		res, err := call(t, e.agent("p-redact", v, opts()), "vault_ask", nil)
		if err != nil || res.IsError || text(t, res) != "answered accept" {
			t.Fatalf("%s: ask: %v %+v", v, err, res)
		}
		if m := <-asked; strings.Contains(m, e.card) || !strings.Contains(m, "[REDACTED:card-") {
			t.Fatalf("%s: the agent was asked %q", v, m)
		}
		if got := e.rec["vault"].received(); len(got) != i+1 || strings.Contains(got[i], token) || !strings.Contains(got[i], "[REDACTED:github-pat]") {
			t.Fatalf("%s: the upstream got the answer %q", v, got)
		}
	}
	// block: the agent is never asked; the upstream hears a refusal
	res, err := call(t, e.agent("p-block", "2025-11-25", opts()), "vault_ask", nil)
	if err != nil || !res.IsError || !strings.Contains(text(t, res), "data-loss prevention") {
		t.Fatalf("blocked elicitation: %v %+v", err, res)
	}
	select {
	case m := <-asked:
		t.Fatalf("the agent was asked %q", m)
	default:
	}
}
