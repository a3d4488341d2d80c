package harness

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// EchoIn and EchoOut are the echo tool's input and structured output.
type EchoIn struct {
	Text string `json:"text"`
}

// EchoOut is what the echo tool returns.
type EchoOut struct {
	Echo string `json:"echo"`
}

// StartEchoUpstream serves a real go-sdk MCP server named name with one
// cheap tool, echo (JSON responses), on loopback until the test ends, and
// returns its endpoint URL. Start it before the nodes that use it, so it
// closes after them.
func StartEchoUpstream(t testing.TB, name string) string {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "Echo the text back"}, func(ctx context.Context, req *mcp.CallToolRequest, in EchoIn) (*mcp.CallToolResult, EchoOut, error) {
		return nil, EchoOut{Echo: in.Text}, nil
	})
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
