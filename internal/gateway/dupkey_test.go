package gateway_test

import (
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// An argument named twice could show the policy one value (Go keeps the
// last) and the upstream another (many parsers keep the first): refused.
func TestDuplicateArgumentsRefused(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-7","id":"T-8"},` + modernMeta + `}}`
	r := e.do(t, "POST", "support", modernHeaders("tools/call", "helpdesk_get_ticket"), body)
	rpcErr := r.rpcError(t)
	if rpcErr == nil || rpcErr.Code != mcp.CodeInvalidParams || !strings.Contains(rpcErr.Message, `argument "id" appears more than once`) {
		t.Fatalf("duplicate argument: %d %s", r.status, r.body)
	}
	// The same call without the duplicate goes through.
	body = strings.Replace(body, `,"id":"T-8"`, "", 1)
	r = e.do(t, "POST", "support", modernHeaders("tools/call", "helpdesk_get_ticket"), body)
	if msgs := r.messages(t); msgs[len(msgs)-1].Error != nil {
		t.Fatalf("plain call refused: %s", r.body)
	}
}
