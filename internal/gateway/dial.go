package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// Dialer opens this node's connection to one upstream: the seam for
// upstreams that are not MCP servers reached over HTTP (REST APIs exposed
// as generated tools, in-process tools). Config.Dialers picks one per
// UpstreamSpec.Transport; streamable-http and sse use the built-in HTTP
// dialer unless the map says otherwise.
//
// Contract: Dial is called on a goroutine of the upstream's own (at most
// one dial at a time per upstream), never on an agent request's goroutine:
// requests wait for it only as long as their own deadline allows. ctx ends
// after the handshake timeout (10s) or when the gateway closes; Dial may
// block on the network until then and must return when ctx ends. What the
// upstream sends outside any call (list_changed, resources/updated,
// requests nobody asked for) goes to opts.OnMessage, from any goroutine.
// The Conn is shared by every agent on the node and must be safe for
// concurrent use; its Done channel closes when it must be dialled again,
// and Close releases everything Dial acquired (e.g. a credential
// transport). The agent's own credential never reaches a Dialer; the
// upstream's credential is in spec.Credential (sealed; unseal it with the
// node's HSM the way Config.UpstreamTransport does).
type Dialer interface {
	Dial(ctx context.Context, spec *UpstreamSpec, opts DialOptions) (mcp.Conn, error)
}

// DialOptions is what the gateway asks of every upstream connection.
type DialOptions struct {
	ClientInfo   mcp.Implementation // the gateway, as the client
	Capabilities json.RawMessage    // the client capabilities to declare
	OnMessage    func(*mcp.Message) // messages outside any call
	// OnSession, when set, is called after the connection re-created a
	// session the upstream had forgotten (it restarted, perhaps with other
	// lists), from any goroutine; it must not block.
	OnSession func(mcp.ServerInfo)
	Logger    *slog.Logger
}

// httpDialer reaches an MCP server over Streamable HTTP or HTTP+SSE
// through Config.HTTPClient, with Config.UpstreamTransport's credential.
type httpDialer struct{ g *Gateway }

var _ Dialer = httpDialer{}

func (d httpDialer) Dial(ctx context.Context, spec *UpstreamSpec, opts DialOptions) (mcp.Conn, error) {
	hc := d.g.cfg.HTTPClient
	var closer io.Closer
	if wrap := d.g.cfg.UpstreamTransport; wrap != nil {
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		rt, err := wrap(spec, base)
		if err != nil {
			return nil, fmt.Errorf("upstream credential: %w", err)
		}
		closer, _ = rt.(io.Closer)
		hc = &http.Client{Transport: rt}
	}
	cfg := mcp.ClientConfig{
		URL:             spec.URL,
		HTTPClient:      hc,
		ProtocolVersion: spec.ProtocolVersion,
		ClientInfo:      opts.ClientInfo,
		Capabilities:    opts.Capabilities,
		OnMessage:       opts.OnMessage,
		OnSession:       opts.OnSession,
		Logger:          opts.Logger,
	}
	var (
		c   mcp.Conn
		err error
	)
	if spec.Transport == TransportSSE {
		c, err = mcp.DialSSE(ctx, cfg)
	} else {
		c, err = mcp.Dial(ctx, cfg)
	}
	if err != nil {
		if closer != nil {
			_ = closer.Close()
		}
		return nil, err
	}
	if closer != nil {
		return closingConn{c, closer}, nil
	}
	return c, nil
}

// closingConn also closes the credential transport with the connection.
type closingConn struct {
	mcp.Conn
	extra io.Closer
}

func (c closingConn) Close() error {
	err := c.Conn.Close()
	_ = c.extra.Close()
	return err
}

// defaultHTTPClient is the pooled upstream client: its transport bounds
// connecting, TLS, and any request that carries no deadline of its own.
func defaultHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: handshakeTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = handshakeTimeout
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ForceAttemptHTTP2 = false
	return &http.Client{Transport: &boundedTransport{base: t, timeout: timeout, header: handshakeTimeout}}
}

// boundedTransport gives a deadline to upstream requests that have none.
// An http.Client Timeout would cut the long-lived streams (the standalone
// GET stream, an SSE response that relays a long call), so the bound is
// per request: calls carry their per-call deadline in the context already;
// a request without one (a notification or an answer sent on a background
// context) gets timeout for the whole exchange, and a GET event stream
// gets header to answer with its headers, then lives as long as the
// connection.
type boundedTransport struct {
	base            http.RoundTripper
	timeout, header time.Duration
}

func (t *boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Context().Deadline(); ok {
		return t.base.RoundTrip(r)
	}
	stream := r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	ctx, cancel := context.WithCancel(r.Context())
	limit := t.timeout
	if stream {
		limit = t.header
	}
	timer := time.AfterFunc(limit, cancel)
	res, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		timer.Stop()
		cancel()
		return nil, err
	}
	if stream && timer.Stop() {
		// Headers in time: the stream lives until the body is closed.
		res.Body = &cancelBody{ReadCloser: res.Body, cancel: cancel}
		return res, nil
	}
	res.Body = &cancelBody{ReadCloser: res.Body, cancel: func() { timer.Stop(); cancel() }}
	return res, nil
}

// cancelBody releases the request's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// Route is an HTTP endpoint served beside the persona endpoints, on the
// gateway's listener (Handler) and on every persona's dedicated listener
// (PersonaHandler): the seam for /.well-known/* discovery documents (RFC
// 9728 protected resource metadata, RFC 8414 authorization server
// metadata) and an authorization server's authorize, token and
// registration endpoints.
//
// Contract: Handler is called on the HTTP server's goroutine for each
// request matching Pattern (http.ServeMux syntax, e.g.
// "GET /.well-known/oauth-protected-resource/"); it must be safe for
// concurrent use, may block only on its own work, and authenticates (or
// not) on its own: the gateway's Authenticator, policy and audit do not
// apply. A pattern must not cover the persona endpoints (/p/...) or /mcp.
type Route struct {
	Pattern string
	Handler http.Handler
}

func (r Route) validate() error {
	_, path, _ := strings.Cut(r.Pattern, " ")
	if !strings.Contains(r.Pattern, " ") {
		path = r.Pattern
	}
	if i := strings.Index(path, "/"); i > 0 {
		path = path[i:] // a host-qualified pattern
	}
	switch {
	case r.Handler == nil:
		return fmt.Errorf("route %q: no handler", r.Pattern)
	case !strings.HasPrefix(path, "/") || path == "/" || path == "/p/" || strings.HasPrefix(path, "/p/") || path == "/mcp" || strings.HasPrefix(path, "/{"):
		return fmt.Errorf("route %q: must be a path of its own, outside /p/ and /mcp", r.Pattern)
	}
	return nil
}

// Challenger is implemented by an Authenticator that knows how a refused
// agent should authenticate: Challenge returns the WWW-Authenticate value
// of the 401 answer to r (e.g. an OAuth 2.1 resource server's
// `Bearer resource_metadata="https://…/.well-known/oauth-protected-resource/p/x/mcp"`,
// RFC 9728). Without it the gateway answers authn.Challenge(err).
//
// Contract: called on the request's goroutine after Authenticate failed
// with err; it must not block and must not put the credential in the value.
type Challenger interface {
	Challenge(r *http.Request, err error) string
}
