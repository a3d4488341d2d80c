package gateway_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

func text(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func call(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) (*sdk.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
}

// The exposed catalog of persona "support": the tools its grants allow,
// named <prefix>_<tool>, sorted.
var supportTools = []string{
	"bill_close_ticket", "bill_confirm_close", "bill_delete_ticket", "bill_get_ticket", "bill_link_ticket", "bill_region_query", "bill_report", "bill_slow",
	"get_ticket", // upstream "old" has an empty prefix
	"helpdesk_close_ticket", "helpdesk_confirm_close", "helpdesk_get_ticket", "helpdesk_link_ticket", "helpdesk_report", "helpdesk_slow",
	"legacy_get_ticket",
}

func TestSDKAgentsThroughGateway(t *testing.T) {
	e := newEnv(t, nil)
	for _, version := range []string{"2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			cs := e.connect("support", e.key, version, nil)
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %q with the gateway, want %q", got, version)
			}
			if !strings.HasPrefix(cs.InitializeResult().Instructions, "First-line support: reads and closes helpdesk tickets.") {
				t.Fatalf("instructions %q", cs.InitializeResult().Instructions)
			}
			ctx := context.Background()
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			var names []string
			for _, tool := range lt.Tools {
				names = append(names, tool.Name)
			}
			if !slices.Equal(names, supportTools) {
				t.Fatalf("tools/list =\n %v\nwant\n %v", names, supportTools)
			}

			// Allowed calls reach each kind of upstream.
			for tool, want := range map[string]string{
				"helpdesk_get_ticket": "helpdesk ticket T-1", // stateful Streamable HTTP
				"bill_get_ticket":     "billing ticket T-1",  // stateless, 2026-07-28
				"legacy_get_ticket":   "legacy ticket T-1",   // HTTP+SSE
				"get_ticket":          "old ticket T-1",      // 2025-03-26 only
			} {
				res, err := call(t, cs, tool, map[string]any{"id": "T-1"})
				if err != nil || res.IsError {
					t.Fatalf("%s: %v %+v", tool, err, res)
				}
				if got := text(t, res); got != want {
					t.Fatalf("%s = %q, want %q", tool, got, want)
				}
			}

			// x-mcp-header: the parameter travels in Mcp-Param-Region to the
			// 2026-07-28 upstream, whatever the agent's revision.
			if res, err := call(t, cs, "bill_region_query", map[string]any{"region": "eu-wëst", "q": "open"}); err != nil || text(t, res) != "billing eu-wëst: open" {
				t.Fatalf("region_query: %v %+v", err, res)
			}

			// resource_link content (2025-06-18) reaches a 2025-03-26 agent as text.
			res, err := call(t, cs, "helpdesk_link_ticket", map[string]any{"id": "T-6"})
			if err != nil || len(res.Content) != 2 {
				t.Fatalf("link_ticket: %v %+v", err, res)
			}
			_, isLink := res.Content[1].(*sdk.ResourceLink)
			if isLink == (version == "2025-03-26") {
				t.Fatalf("%s: second content item is %T", version, res.Content[1])
			}
			if tc, ok := res.Content[1].(*sdk.TextContent); ok && tc.Text != "Resource ticket T-6: ticket://T-6" {
				t.Fatalf("bridged link %q", tc.Text)
			}

			// A tool outside the role never reaches the upstream.
			before := e.ups["helpdesk"].requests.Load()
			_, err = call(t, cs, "helpdesk_delete_ticket", map[string]any{"id": "T-1"})
			if err == nil || !strings.Contains(err.Error(), "not available to persona") {
				t.Fatalf("hidden tool: err = %v, want a refusal", err)
			}
			// Arguments outside the constraints: a tool error the model can read.
			res, err = call(t, cs, "helpdesk_close_ticket", map[string]any{"id": "X-9"})
			if err != nil || !res.IsError || !strings.Contains(text(t, res), "argument id") {
				t.Fatalf("constrained call: %v %+v", err, res)
			}
			if n := e.ups["helpdesk"].requests.Load(); n != before {
				t.Fatalf("denied calls reached the upstream (%d requests)", n-before)
			}
			res, err = call(t, cs, "helpdesk_close_ticket", map[string]any{"id": "T-9"})
			if err != nil || res.IsError || text(t, res) != "closed T-9" {
				t.Fatalf("allowed constrained call: %v %+v", err, res)
			}

			// Resources and prompts are filtered the same way.
			lr, err := cs.ListResources(ctx, nil)
			if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != "ticket://open" {
				t.Fatalf("resources/list = %+v, %v", lr, err)
			}
			rr, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "ticket://T-5"})
			if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "ticket body for ticket://T-5" {
				t.Fatalf("read template resource: %+v, %v", rr, err)
			}
			if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "secret://keys"}); err == nil {
				t.Fatal("a resource outside the role was readable")
			}
			lp, err := cs.ListPrompts(ctx, nil)
			if err != nil || len(lp.Prompts) != 1 || lp.Prompts[0].Name != "helpdesk_summarize" {
				t.Fatalf("prompts/list = %+v, %v", lp, err)
			}
			gp, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "helpdesk_summarize", Arguments: map[string]string{"id": "T-3"}})
			if err != nil || len(gp.Messages) != 1 {
				t.Fatalf("prompts/get: %+v, %v", gp, err)
			}
			if _, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "helpdesk_internal"}); err == nil {
				t.Fatal("a prompt outside the role was served")
			}
		})
	}
	for name, u := range e.ups {
		if n := u.sawAuth.Load(); n != 0 {
			t.Fatalf("upstream %s received %d requests with an Authorization header", name, n)
		}
	}
	// Every governed call left a decision record.
	var allow, deny int
	for {
		select {
		case d := <-e.decisions:
			if d.Agent != "support-bot" || d.Persona != "support" {
				t.Fatalf("decision without principal: %+v", d)
			}
			switch d.Decision {
			case gateway.Allow:
				allow++
				if d.Method == "tools/call" && (d.Skill == "" || d.UpstreamStatus != "ok" || d.Latency <= 0 || d.ClientIP != "127.0.0.1") {
					t.Fatalf("allowed call record incomplete: %+v", d)
				}
			case gateway.Deny:
				deny++
				if d.Reason == "" {
					t.Fatalf("deny without reason: %+v", d)
				}
			}
			continue
		default:
		}
		break
	}
	if allow != 4*9 || deny != 4*4 {
		t.Fatalf("decisions: %d allow, %d deny", allow, deny)
	}
}

func TestPersonaIsolation(t *testing.T) {
	e := newEnv(t, nil)
	cs := e.connect("finance", e.otherKey, "2025-11-25", nil)
	lt, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Tools) != 1 || lt.Tools[0].Name != "bill_get_ticket" {
		t.Fatalf("finance sees %+v", lt.Tools)
	}
	if _, err := call(t, cs, "helpdesk_get_ticket", map[string]any{"id": "T-1"}); err == nil {
		t.Fatal("finance called a support tool")
	}
}
