package gateway_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

func batchOf(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-%d"}}}`, i, i)
	}
	b.WriteByte(']')
	return b.String()
}

// A batch over the cap (32 by default, Config.MaxBatch) is refused whole
// with an error naming the cap: none of its calls reaches an upstream or
// leaves a record of its own. A batch at the cap is answered in full.
func TestBatchCap(t *testing.T) {
	for _, tt := range []struct {
		cfg, limit int
	}{{0, 32}, {3, 3}} {
		t.Run(fmt.Sprint("cap ", tt.limit), func(t *testing.T) {
			e := newEnv(t, func(c *gateway.Config) { c.MaxBatch = tt.cfg })
			hdr := map[string]string{mcp.HeaderSessionID: e.initSession(t, "2025-03-26")}

			r, recs := e.recordsOf(t, "support", hdr, batchOf(tt.limit+1))
			if r.status != 400 {
				t.Fatalf("batch of %d: %d %s", tt.limit+1, r.status, r.body)
			}
			je := r.rpcError(t)
			if je.Code != mcp.CodeInvalidRequest || !strings.Contains(je.Message, fmt.Sprintf("at most %d messages", tt.limit)) || !strings.Contains(je.Message, fmt.Sprint(tt.limit+1)) {
				t.Fatalf("refusal %d %q should name the cap and the batch's size", je.Code, je.Message)
			}
			if len(recs) != 1 || recs[0].Decision != gateway.Deny || recs[0].Stage() != gateway.StageProtocol {
				t.Fatalf("records %+v, want the one refusal", recs)
			}

			r, recs = e.recordsOf(t, "support", hdr, batchOf(tt.limit))
			if r.status != 200 || !strings.HasPrefix(string(r.body), "[") || strings.Count(string(r.body), "helpdesk ticket T-") != tt.limit {
				t.Fatalf("batch of %d not answered in full: %s", tt.limit, r.body)
			}
			if len(recs) != tt.limit {
				t.Fatalf("%d records for a batch of %d", len(recs), tt.limit)
			}
		})
	}
}

// Deeply nested JSON and numbers beyond float64 are refused with an error
// saying which, before anything decodes them, on every path (a session,
// a batch, 2026-07-28 without a session); the node keeps serving.
func TestDeepAndHugeJSON(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 4 << 20 })
	sid := e.initSession(t, "2025-03-26")
	sess := map[string]string{mcp.HeaderSessionID: sid}
	modern := modernHeaders("tools/call", "bill_region_query")
	modern[mcp.HeaderSessionID] = sid // ignored on 2026-07-28; recordsOf's marker uses it
	call := func(args string) string {
		return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"bill_region_query","arguments":{"region":"eu","q":"x","x":` + args + `}}}`
	}
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name string
		hdr  map[string]string
		body string
		want string // in the error message
	}{
		{"100k nested arrays", sess, call(nested(100_000)), "deeper than 64 levels"},
		{"100k nested objects", sess, call(strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)), "deeper than 64 levels"},
		{"one level too deep", sess, call(nested(62)), "deeper than 64 levels"},
		{"deep in a batch", sess, "[" + call(nested(1000)) + "]", "deeper than 64 levels"},
		{"deep without a session", modern, call(nested(100_000)), "deeper than 64 levels"},
		{"1e999999", sess, call("1e999999"), `number "1e999999" is out of range`},
		{"-1E+400", sess, call("[-1E+400]"), `number "-1E+400" is out of range`},
		{"a 400-digit integer", sess, call("1" + strings.Repeat("0", 399)), "(400 characters) is out of range"},
		{"huge number in a batch", sess, `[{"jsonrpc":"2.0","id":1,"method":"ping"},` + call("1e999999") + `]`, "is out of range"},
		{"huge number without a session", modern, call("1e999999"), "is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, recs := e.recordsOf(t, "support", tt.hdr, tt.body)
			if r.status != 400 {
				t.Fatalf("status %d: %.300s", r.status, r.body)
			}
			if je := r.rpcError(t); je.Code != mcp.CodeInvalidRequest || !strings.Contains(je.Message, tt.want) {
				t.Fatalf("error %d %q, want %q", je.Code, je.Message, tt.want)
			}
			if len(recs) != 1 || recs[0].Stage() != gateway.StageProtocol || !strings.Contains(recs[0].Reason, tt.want) {
				t.Fatalf("records %+v", recs)
			}
		})
	}
	// At the limit, and with numbers a float64 holds, the call goes through.
	for _, args := range []string{nested(61), "1e308", "-1.5e-999999", "123456789012345678901234567890"} {
		r := e.do(t, "POST", "support", sess, call(args))
		if r.status != 200 || !strings.Contains(string(r.body), "billing eu: x") {
			t.Fatalf("%.40s: %d %s", args, r.status, r.body)
		}
	}
}
