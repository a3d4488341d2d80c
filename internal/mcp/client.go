package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Client is a Streamable HTTP client for one upstream. It negotiates the
// revision once (server/discover for 2026-07-28, else initialize) and keeps
// the session; a session the server forgot (404) is re-created transparently
// on the next call.
type Client struct {
	cfg    ClientConfig
	nextID atomic.Int64

	mu       sync.Mutex // serializes writers of st
	reinitMu sync.Mutex // one re-initialize at a time
	st       atomic.Pointer[clientState]

	subMu sync.Mutex
	subs  map[string]bool // resources with a listen stream (2026-07-28)

	calls  calls     // in flight, for server requests on the standalone stream
	life   *lifetime // listeners and background answers; ends at Close
	done   chan struct{}
	closed atomic.Bool
}

var _ Conn = (*Client)(nil)

// Dial connects to a Streamable HTTP server and negotiates the revision.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, done: make(chan struct{})}
	c.st.Store(&clientState{})
	c.life = newLifetime()
	if err := c.handshake(ctx); err != nil {
		c.life.end()
		return nil, err
	}
	if cfg.OnMessage != nil {
		// Wait until the standalone stream is open (or refused): a server
		// that sends a call's requests on it drops them while no stream
		// exists, so the first call must not race the GET.
		ready := make(chan struct{})
		c.life.run(func() { c.listen(ready) })
		t := time.NewTimer(min(c.cfg.HandshakeTimeout, listenWait))
		select {
		case <-ready:
		case <-t.C:
			c.cfg.Logger.Debug("upstream standalone stream not open yet; going on", "url", c.cfg.URL)
		case <-ctx.Done():
		}
		t.Stop()
	}
	return c, nil
}

// Server reports the negotiated revision and capabilities.
func (c *Client) Server() ServerInfo {
	return c.state().info
}

// SessionID returns the current session id ("" for 2026-07-28).
func (c *Client) SessionID() string {
	return c.state().sessionID
}

// Done is closed after Close.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) handshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	pin := c.cfg.ProtocolVersion
	if pin == "" || Modern(pin) {
		ok, err := c.discover(ctx)
		if ok {
			return nil
		}
		if pin != "" {
			return fmt.Errorf("discover: %w", err)
		}
		c.cfg.Logger.Debug("upstream is not modern, falling back to initialize", "url", c.cfg.URL, "err", err)
	}
	return c.initialize(ctx)
}

// discover probes for 2026-07-28. ok is false when the server is legacy.
func (c *Client) discover(ctx context.Context) (bool, error) {
	c.update(func(st *clientState) { st.info.ProtocolVersion = Rev20260728 })
	resp, err := c.roundTrip(ctx, MethodDiscover, json.RawMessage("{}"), nil, false)
	if err != nil {
		return false, err
	}
	if resp.Error != nil {
		if resp.Error.Code == CodeUnsupportedProtocolVersion {
			return false, fmt.Errorf("upstream does not support %s: %w", Rev20260728, resp.Error)
		}
		return false, resp.Error
	}
	var res struct {
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
		Instructions      string          `json:"instructions"`
		Meta              struct {
			ServerInfo json.RawMessage `json:"io.modelcontextprotocol/serverInfo"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return false, fmt.Errorf("discover result: %w", err)
	}
	modern := false
	for _, v := range res.SupportedVersions {
		if v == Rev20260728 {
			modern = true
		}
	}
	if !modern {
		return false, fmt.Errorf("upstream supports %v", res.SupportedVersions)
	}
	c.update(func(st *clientState) {
		st.info = ServerInfo{ProtocolVersion: Rev20260728, Capabilities: res.Capabilities, Implementation: res.Meta.ServerInfo, Instructions: res.Instructions}
	})
	return true, nil
}

func (c *Client) initialize(ctx context.Context) error {
	want, params := c.cfg.initializeParams()
	c.update(func(st *clientState) {
		st.sessionID = ""
		st.info = ServerInfo{ProtocolVersion: want}
	})
	resp, err := c.roundTrip(ctx, MethodInitialize, params, nil, true)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	info, err := c.cfg.initializeResult(resp, false)
	if err != nil {
		return err
	}
	c.update(func(st *clientState) {
		st.info = info
		st.epoch++
	})
	if err := c.send(ctx, NewNotification(MethodInitialized, nil)); err != nil {
		return fmt.Errorf("initialized: %w", err)
	}
	return nil
}

// Call sends a request; see Conn.
func (c *Client) Call(ctx context.Context, method string, params json.RawMessage, onMsg func(*Message)) (*Message, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if onMsg != nil {
		// Registered for the whole call, retry included: a server may send
		// the call's server-to-client requests on the standalone stream.
		cl := c.calls.add(params, onMsg)
		defer c.calls.remove(cl)
		onMsg = func(m *Message) { cl.deliver(m) }
	}
	epoch := c.state().epoch
	resp, err := c.roundTrip(ctx, method, params, onMsg, false)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound && c.SessionID() != "" {
		// The server forgot our session: re-initialize once and retry.
		if rerr := c.reinitialize(ctx, epoch); rerr != nil {
			return nil, rerr
		}
		return c.roundTrip(ctx, method, params, onMsg, false)
	}
	return resp, err
}

func (c *Client) reinitialize(ctx context.Context, seen uint64) error {
	c.reinitMu.Lock()
	defer c.reinitMu.Unlock()
	if c.state().epoch != seen {
		return nil // someone else already did
	}
	c.cfg.Logger.Info("upstream session expired, re-initializing", "url", c.cfg.URL)
	if err := c.initialize(ctx); err != nil {
		return err
	}
	if c.cfg.OnSession != nil {
		c.cfg.OnSession(c.Server())
	}
	return nil
}

// Notify sends a notification.
func (c *Client) Notify(ctx context.Context, method string, params json.RawMessage) error {
	return c.send(ctx, NewNotification(method, params))
}

// Respond answers a server-to-client request.
func (c *Client) Respond(ctx context.Context, m *Message) error {
	if !m.IsResponse() {
		return errors.New("respond: not a response")
	}
	return c.send(ctx, m)
}

// send POSTs a notification or response and expects 202.
func (c *Client) send(ctx context.Context, m *Message) error {
	body := m.AppendJSON(nil)
	req, err := c.newPost(ctx, m, body)
	if err != nil {
		return err
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer drain(res.Body)
	if res.StatusCode/100 != 2 {
		return httpError(res)
	}
	return nil
}

func (c *Client) newPost(ctx context.Context, m *Message, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	h := req.Header
	for k, vs := range c.cfg.Header {
		h[k] = vs
	}
	for k, vs := range headersFrom(ctx) {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	st := c.state()
	sid, ver := st.sessionID, st.info.ProtocolVersion
	if sid != "" {
		h.Set(HeaderSessionID, sid)
	}
	if Modern(ver) {
		if m.Method != "" {
			head, _ := PeekParams(m.Params)
			SetRequestHeaders(h, m, head, ver)
		} else {
			h.Set(HeaderProtocolVersion, ver)
		}
	} else if HasVersionHeader(ver) && m.Method != MethodInitialize {
		h.Set(HeaderProtocolVersion, ver)
	}
	return req, nil
}

// roundTrip performs one request exchange. Messages other than our response
// go to onMsg (server requests are answered with an error when onMsg is nil).
func (c *Client) roundTrip(ctx context.Context, method string, params json.RawMessage, onMsg func(*Message), handshake bool) (*Message, error) {
	id := IntID(c.nextID.Add(1))
	ver := c.state().info.ProtocolVersion
	if Modern(ver) {
		var err error
		if params, err = c.withMeta(ctx, params, ver); err != nil {
			return nil, err
		}
	}
	m := NewRequest(id, method, params)
	req, err := c.newPost(ctx, m, m.AppendJSON(nil))
	if err != nil {
		return nil, err
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		c.cancelled(ctx, id, ver)
		return nil, fmt.Errorf("post %s: %w", method, err)
	}
	if handshake {
		if sid := res.Header.Get(HeaderSessionID); sid != "" {
			c.update(func(st *clientState) { st.sessionID = sid })
		}
	}
	resp, err := c.readResponse(ctx, res, id, ver, onMsg)
	if err != nil && ctx.Err() != nil {
		c.cancelled(ctx, id, ver)
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
	return resp, err
}

// withMeta adds the per-request _meta of 2026-07-28 to params: the
// capabilities given with WithClientCapabilities (else the client's own),
// and the log level asked for with WithLogLevel unless the request names
// its own.
func (c *Client) withMeta(ctx context.Context, params json.RawMessage, ver string) (json.RawMessage, error) {
	level := logLevelFrom(ctx)
	meta := GetField(params, "_meta")
	info, _ := json.Marshal(c.cfg.ClientInfo)
	caps := c.cfg.Capabilities
	if v := capsFrom(ctx); v != nil {
		caps = v
	}
	set := map[string]json.RawMessage{
		MetaProtocolVersion:    Quote(ver),
		MetaClientInfo:         info,
		MetaClientCapabilities: caps,
	}
	if level != "" && GetField(meta, MetaLogLevel) == nil {
		set[MetaLogLevel] = Quote(level)
	}
	meta, err := SetFields(meta, set)
	if err != nil {
		return nil, err
	}
	return SetField(params, "_meta", meta)
}

// cancelled tells a legacy server that we abandoned request id. On
// 2026-07-28 closing the stream is the cancellation.
func (c *Client) cancelled(ctx context.Context, id json.RawMessage, ver string) {
	if ctx.Err() == nil || Modern(ver) || c.closed.Load() {
		return
	}
	params, _ := json.Marshal(map[string]any{"requestId": id, "reason": "cancelled by the gateway"})
	c.life.spawn(respondTimeout, func(ctx context.Context) { _ = c.Notify(ctx, NotifyCancelled, params) })
}

func (c *Client) readResponse(ctx context.Context, res *http.Response, id json.RawMessage, ver string, onMsg func(*Message)) (*Message, error) {
	defer drain(res.Body)
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode/100 != 2 {
		// A JSON-RPC error body is the server's answer (e.g. 400 with
		// HeaderMismatch, 404 with MethodNotFound on 2026-07-28).
		if ct == "application/json" && !(res.StatusCode == http.StatusNotFound && c.SessionID() != "") {
			b, _ := io.ReadAll(io.LimitReader(res.Body, int64(c.maxSize())))
			if m, perr := Parse(b); perr == nil && m.Error != nil {
				m.ID = id
				return m, nil
			}
		}
		return nil, httpError(res)
	}
	switch ct {
	case "application/json":
		b, err := io.ReadAll(io.LimitReader(res.Body, int64(c.maxSize())+1))
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if len(b) > c.maxSize() {
			return nil, fmt.Errorf("read response: message over %d bytes", c.maxSize())
		}
		m, perr := Parse(b)
		if perr != nil {
			return nil, fmt.Errorf("upstream sent an invalid message: %w", perr)
		}
		if !m.IsResponse() || !bytes.Equal(m.ID, id) {
			return nil, errors.New("upstream response does not answer the request")
		}
		return m, nil
	case "text/event-stream":
		return c.readStream(ctx, res.Body, id, ver, onMsg)
	}
	return nil, fmt.Errorf("%w: %q", ErrBadContentType, ct)
}

func (c *Client) readStream(ctx context.Context, body io.ReadCloser, id json.RawMessage, ver string, onMsg func(*Message)) (*Message, error) {
	for attempt := 0; ; attempt++ {
		er := NewEventReader(body, c.maxSize())
		var retry time.Duration
		for {
			ev, err := er.Next()
			if err != nil {
				break
			}
			if ev.Retry > 0 {
				retry = ev.Retry
			}
			if ev.Type() != "message" || len(bytes.TrimSpace(ev.Data)) == 0 {
				continue
			}
			m, perr := Parse(ev.Data)
			if perr != nil {
				c.cfg.Logger.Warn("upstream sent an invalid message on a stream", "err", perr)
				continue
			}
			if m.IsResponse() && bytes.Equal(m.ID, id) {
				return m, nil
			}
			c.dispatch(ctx, m, onMsg)
		}
		body.Close()
		last := er.LastEventID()
		if ctx.Err() != nil || !Resumable(ver) || last == "" || attempt >= 3 {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, ErrNoResponse
		}
		// Resume the stream where it broke (2025-03-26 .. 2025-11-25).
		if retry <= 0 || retry > 5*time.Second {
			retry = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retry):
		}
		res, err := c.get(ctx, last)
		if err != nil {
			return nil, fmt.Errorf("resume stream: %w", err)
		}
		body = res.Body
	}
}

func (c *Client) dispatch(ctx context.Context, m *Message, onMsg func(*Message)) {
	if c.answerPing(m) {
		return
	}
	if sessionWide(m) && c.cfg.OnMessage != nil {
		// A list change sent on a call's stream concerns every user of the
		// session, not that call.
		c.cfg.OnMessage(m)
		return
	}
	if onMsg != nil {
		onMsg(m)
		return
	}
	if m.IsRequest() {
		_ = c.Respond(ctx, NewError(m.ID, Errorf(CodeMethodNotFound, "client does not handle %s here", m.Method)))
	}
}

// get opens a GET stream, resuming after lastID when non-empty.
func (c *Client) get(ctx context.Context, lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.cfg.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/event-stream")
	st := c.state()
	sid, ver := st.sessionID, st.info.ProtocolVersion
	if sid != "" {
		req.Header.Set(HeaderSessionID, sid)
	}
	if HasVersionHeader(ver) {
		req.Header.Set(HeaderProtocolVersion, ver)
	}
	if lastID != "" {
		req.Header.Set(HeaderLastEventID, lastID)
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		defer drain(res.Body)
		return nil, httpError(res)
	}
	return res, nil
}

// sessionWide reports whether m is a notification about the session's
// lists or resources, which no single call owns.
func sessionWide(m *Message) bool {
	switch m.Method {
	case NotifyToolsChanged, NotifyPromptsChanged, NotifyResourcesChanged, NotifyResourceUpdated:
		return m.IsNotification()
	}
	return false
}

// standalone handles a message from a stream that belongs to no call: a
// server request (or progress) goes to the call in flight it belongs to,
// the rest to OnMessage.
func (c *Client) standalone(m *Message) {
	if c.answerPing(m) {
		return
	}
	if sessionWide(m) {
		c.cfg.OnMessage(m)
		return
	}
	c.calls.outOfBand(m, c.cfg.Logger, c.cfg.URL, func(r *Message) {
		c.life.spawn(respondTimeout, func(ctx context.Context) { _ = c.Respond(ctx, r) })
	}, c.cfg.OnMessage)
}

// listenWait bounds how long Dial waits for the standalone stream.
const listenWait = 2 * time.Second

// listen keeps the standalone notification stream open: GET on legacy
// revisions, subscriptions/listen on 2026-07-28. It reconnects until Close.
// ready is closed once the first attempt is open or has failed.
func (c *Client) listen(ready chan struct{}) {
	backoff := 200 * time.Millisecond
	lastID := ""
	var once sync.Once
	opened := func() { once.Do(func() { close(ready) }) }
	defer opened()
	for c.life.ctx.Err() == nil {
		st := c.state()
		ver, epoch := st.info.ProtocolVersion, st.epoch
		start := time.Now()
		if Modern(ver) {
			params := json.RawMessage(`{"notifications":{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true}}`)
			_, err := c.roundTrip(c.life.ctx, MethodSubscriptionsListen, params, func(m *Message) {
				if m.Method == NotifyAcknowledged {
					opened()
				} else {
					c.standalone(m)
				}
			}, false)
			opened()
			if err != nil && c.life.ctx.Err() == nil {
				c.cfg.Logger.Debug("upstream listen stream ended", "url", c.cfg.URL, "err", err)
			}
		} else {
			res, err := c.get(c.life.ctx, lastID)
			opened()
			var he *HTTPError
			if errors.As(err, &he) && he.Status == http.StatusMethodNotAllowed {
				return // the server offers no standalone stream
			}
			if errors.As(err, &he) && he.Status == http.StatusNotFound {
				_ = c.reinitialize(c.life.ctx, epoch)
			}
			if err == nil {
				er := NewEventReader(res.Body, c.maxSize())
				for {
					ev, err := er.Next()
					if err != nil {
						break
					}
					if ev.Type() != "message" {
						continue
					}
					if m, perr := Parse(ev.Data); perr == nil {
						c.standalone(m)
					}
				}
				lastID = er.LastEventID()
				res.Body.Close()
			}
		}
		if time.Since(start) > 10*time.Second {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-c.life.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// Close stops the listener and ends the session (DELETE).
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.life.end()
	close(c.done)
	sid := c.SessionID()
	if sid == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.cfg.URL, nil)
	if err != nil {
		return nil
	}
	for k, vs := range c.cfg.Header {
		req.Header[k] = vs
	}
	req.Header.Set(HeaderSessionID, sid)
	if v := c.Server().ProtocolVersion; HasVersionHeader(v) {
		req.Header.Set(HeaderProtocolVersion, v)
	}
	if res, err := c.cfg.HTTPClient.Do(req); err == nil {
		drain(res.Body)
	}
	return nil
}

func (c *Client) maxSize() int {
	if c.cfg.MaxMessageSize > 0 {
		return c.cfg.MaxMessageSize
	}
	return DefaultMaxEventSize
}

func httpError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 256))
	return &HTTPError{Status: res.StatusCode, Body: string(bytes.TrimSpace(b))}
}

func drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	_ = r.Close()
}

// answerPing answers a server's ping itself; it reports whether m was one.
func (c *Client) answerPing(m *Message) bool {
	if m.Method != MethodPing || !m.IsRequest() {
		return false
	}
	c.life.spawn(respondTimeout, func(ctx context.Context) { _ = c.Respond(ctx, NewResult(m.ID, json.RawMessage("{}"))) })
	return true
}

// SubscribeResource subscribes to updates of uri (see Conn).
func (c *Client) SubscribeResource(ctx context.Context, uri string) error {
	if !Modern(c.Server().ProtocolVersion) {
		params, _ := json.Marshal(map[string]string{"uri": uri})
		resp, err := c.Call(ctx, MethodResourcesSubscribe, params, nil)
		if err != nil {
			return err
		}
		if resp.Error != nil {
			return resp.Error
		}
		return nil
	}
	if c.cfg.OnMessage == nil {
		return errors.New("subscribe: no OnMessage to deliver updates to")
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.subs == nil {
		c.subs = map[string]bool{}
	}
	if c.subs[uri] || c.closed.Load() {
		return nil
	}
	c.subs[uri] = true
	params, _ := json.Marshal(map[string]any{"notifications": map[string]any{"resourceSubscriptions": []string{uri}}})
	c.life.run(func() { c.keepListening(params) })
	return nil
}

// keepListening holds one subscriptions/listen stream open until Close.
func (c *Client) keepListening(params json.RawMessage) {
	backoff := 200 * time.Millisecond
	for c.life.ctx.Err() == nil {
		start := time.Now()
		_, err := c.roundTrip(c.life.ctx, MethodSubscriptionsListen, params, func(m *Message) {
			if m.Method != NotifyAcknowledged {
				c.standalone(m)
			}
		}, false)
		if err != nil && c.life.ctx.Err() == nil {
			c.cfg.Logger.Debug("upstream resource listen stream ended", "url", c.cfg.URL, "err", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-c.life.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// clientState is the negotiated state, replaced whole on every change so
// that calls read it without locking.
type clientState struct {
	sessionID string
	info      ServerInfo
	epoch     uint64 // bumped by every (re-)initialize
}

func (c *Client) state() *clientState { return c.st.Load() }

func (c *Client) update(f func(*clientState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := *c.st.Load()
	f(&n)
	c.st.Store(&n)
}

// initializeParams returns the revision to ask for in initialize (the pin,
// or the newest legacy revision) and the request's params.
func (cfg *ClientConfig) initializeParams() (want string, params json.RawMessage) {
	want = cfg.ProtocolVersion
	if want == "" || Modern(want) {
		want = LatestLegacy
	}
	params, _ = json.Marshal(map[string]any{
		"protocolVersion": want,
		"capabilities":    cfg.Capabilities,
		"clientInfo":      cfg.ClientInfo,
	})
	return want, params
}

// initializeResult checks an initialize response: a legacy revision this
// package speaks (2024-11-05 too when allow20241105, the HTTP+SSE
// transport's), and the pinned one when there is a pin.
func (cfg *ClientConfig) initializeResult(resp *Message, allow20241105 bool) (ServerInfo, error) {
	if resp.Error != nil {
		return ServerInfo{}, fmt.Errorf("initialize: %w", resp.Error)
	}
	var res struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage `json:"serverInfo"`
		Instructions    string          `json:"instructions"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return ServerInfo{}, fmt.Errorf("initialize result: %w", err)
	}
	legacy2024 := allow20241105 && res.ProtocolVersion == Rev20241105
	if !legacy2024 && (!Known(res.ProtocolVersion) || Modern(res.ProtocolVersion)) {
		return ServerInfo{}, fmt.Errorf("initialize: server chose unsupported protocol version %q", res.ProtocolVersion)
	}
	if cfg.ProtocolVersion != "" && res.ProtocolVersion != cfg.ProtocolVersion {
		return ServerInfo{}, fmt.Errorf("initialize: server chose %q, pinned %q", res.ProtocolVersion, cfg.ProtocolVersion)
	}
	return ServerInfo{ProtocolVersion: res.ProtocolVersion, Capabilities: res.Capabilities, Implementation: res.ServerInfo, Instructions: res.Instructions}, nil
}
