package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Implementation names a client or server (name and version).
type Implementation struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ServerInfo is what the upstream told us about itself.
type ServerInfo struct {
	ProtocolVersion string          // negotiated revision
	Capabilities    json.RawMessage // ServerCapabilities, raw
	Implementation  json.RawMessage // serverInfo, raw
	Instructions    string
}

// Conn is a client connection to one upstream MCP server. It is safe for
// concurrent use; calls are independent and never share an HTTP exchange.
type Conn interface {
	// Call sends a request and returns the server's response (result or
	// error). The id on the wire is assigned by the Conn; the returned
	// message carries it. Messages the server sends in the context of the
	// call (progress, logging, server-to-client requests) are passed to
	// onMsg in order, never concurrently and never after Call returned;
	// that includes server requests the server sent on another stream but
	// that belong to this call (see ClientConfig.OnMessage). A transport
	// failure returns an error and no message.
	// Cancelling ctx abandons the call and tells the server.
	Call(ctx context.Context, method string, params json.RawMessage, onMsg func(*Message)) (*Message, error)
	// Notify sends a notification.
	Notify(ctx context.Context, method string, params json.RawMessage) error
	// Respond answers a server-to-client request (m must be a response).
	Respond(ctx context.Context, m *Message) error
	// SubscribeResource asks for notifications/resources/updated about uri,
	// delivered to ClientConfig.OnMessage: resources/subscribe on the
	// legacy revisions, a subscriptions/listen stream on 2026-07-28.
	SubscribeResource(ctx context.Context, uri string) error
	// Server reports the negotiated revision and the server's capabilities.
	Server() ServerInfo
	// Done is closed when the connection can no longer be used and must be
	// dialled again.
	Done() <-chan struct{}
	// Close ends the connection (and its session, if any).
	Close() error
}

// ClientConfig configures an upstream connection.
type ClientConfig struct {
	// URL is the MCP endpoint (Streamable HTTP) or the SSE endpoint
	// (HTTP+SSE).
	URL string
	// HTTPClient sends the requests; it should pool keep-alive connections.
	// Its Timeout must be zero (streams are long-lived); use contexts.
	HTTPClient *http.Client
	// ProtocolVersion pins the revision; "" negotiates the newest both sides
	// speak.
	ProtocolVersion string
	// ClientInfo identifies the client to the server.
	ClientInfo Implementation
	// Capabilities are the client capabilities to declare (nil: {}).
	Capabilities json.RawMessage
	// Header is added to every request (e.g. an injected upstream
	// credential). Never put an agent's credential here.
	Header http.Header
	// OnMessage receives server-initiated messages not tied to a call:
	// list_changed and resource updates (wherever they arrive, a call's
	// stream included), and server-to-client requests sent while no call
	// is in flight. Requests must be answered with Respond. nil disables
	// the standalone stream.
	//
	// A server-to-client request that arrives outside a call's response
	// stream (the standalone GET stream, the one HTTP+SSE stream) while
	// calls are in flight goes to the onMsg of the call it belongs to: the
	// one whose progress token it names in _meta, else the only call in
	// flight. When it names none and several are in flight, the client
	// refuses it with a JSON-RPC error and logs it: a session shared by
	// several agents must never hand one agent's request to another.
	OnMessage func(*Message)
	// OnSession is called (on the goroutine of the call that found out)
	// after the client re-created a session the server had forgotten, as a
	// restarted server does: its tools, prompts and resources may differ.
	// It must not block. Not called for the handshake of Dial.
	OnSession func(ServerInfo)
	// Logger receives transport diagnostics.
	Logger *slog.Logger
	// MaxMessageSize bounds one incoming message (DefaultMaxEventSize).
	MaxMessageSize int
	// HandshakeTimeout bounds the initialize/discover exchange (10s).
	HandshakeTimeout time.Duration
}

func (c *ClientConfig) setDefaults() error {
	if c.URL == "" {
		return errors.New("client config: empty URL")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ClientInfo.Name == "" {
		c.ClientInfo = Implementation{Name: "portcullis", Version: "dev"}
	}
	if len(c.Capabilities) == 0 {
		c.Capabilities = json.RawMessage("{}")
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.ProtocolVersion != "" && !Known(c.ProtocolVersion) && c.ProtocolVersion != Rev20241105 {
		return fmt.Errorf("client config: unknown protocol version %q", c.ProtocolVersion)
	}
	return nil
}

// HTTPError is a transport-level failure with the upstream's HTTP status.
type HTTPError struct {
	Status int
	Body   string // first bytes of the body, for diagnostics
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("upstream answered HTTP %d", e.Status)
	}
	return fmt.Sprintf("upstream answered HTTP %d: %s", e.Status, e.Body)
}

// Sentinel transport errors.
var (
	ErrClosed         = errors.New("connection closed")
	ErrNoResponse     = errors.New("stream ended without a response")
	ErrBadContentType = errors.New("unexpected response content type")
)
