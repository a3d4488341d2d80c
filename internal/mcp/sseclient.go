package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// SSEClient speaks the deprecated HTTP+SSE transport of 2024-11-05: a GET
// opens an event stream whose first "endpoint" event names the URL to POST
// messages to; every server message, responses included, arrives on that
// one stream.
type SSEClient struct {
	cfg      ClientConfig
	endpoint string
	nextID   atomic.Int64

	mu      sync.Mutex
	pending map[string]chan *Message // by response id
	info    ServerInfo
	err     error

	calls  calls     // in flight with an onMsg: progress and server requests
	life   *lifetime // the event stream and background answers; ends at Close
	done   chan struct{}
	closed atomic.Bool
}

var _ Conn = (*SSEClient)(nil)

// DialSSE connects over HTTP+SSE and performs the initialize handshake.
func DialSSE(ctx context.Context, cfg ClientConfig) (*SSEClient, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &SSEClient{cfg: cfg, pending: map[string]chan *Message{}, done: make(chan struct{}), life: newLifetime()}
	sctx, cancel := c.life.ctx, c.life.end
	hctx, hcancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer hcancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sse dial: %w", err)
	}
	for k, vs := range cfg.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/event-stream")
	type result struct {
		res *http.Response
		err error
	}
	ch := make(chan result, 1)
	c.life.run(func() {
		res, err := cfg.HTTPClient.Do(req)
		ch <- result{res, err}
	})
	var res *http.Response
	select {
	case r := <-ch:
		res, err = r.res, r.err
	case <-hctx.Done():
		cancel()
		return nil, fmt.Errorf("sse dial: %w", hctx.Err())
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sse dial: %w", err)
	}
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		defer drain(res.Body)
		cancel()
		return nil, fmt.Errorf("sse dial: %w", httpError(res))
	}
	er := NewEventReader(res.Body, c.maxSize())
	endpoint := make(chan string, 1)
	go c.read(er, res, endpoint)
	select {
	case ep, ok := <-endpoint:
		if !ok {
			cancel()
			return nil, fmt.Errorf("sse dial: stream ended before the endpoint event: %w", c.failure())
		}
		base, _ := url.Parse(cfg.URL)
		u, err := base.Parse(strings.TrimSpace(ep))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host != base.Host {
			cancel()
			return nil, fmt.Errorf("sse dial: endpoint event %q is not on the server's origin", ep)
		}
		c.endpoint = u.String()
	case <-hctx.Done():
		cancel()
		return nil, fmt.Errorf("sse dial: no endpoint event: %w", hctx.Err())
	}
	if err := c.initialize(hctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *SSEClient) maxSize() int {
	if c.cfg.MaxMessageSize > 0 {
		return c.cfg.MaxMessageSize
	}
	return DefaultMaxEventSize
}

func (c *SSEClient) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

func (c *SSEClient) read(er *EventReader, res *http.Response, endpoint chan string) {
	defer res.Body.Close()
	gotEndpoint := false
	var err error
	for {
		var ev Event
		ev, err = er.Next()
		if err != nil {
			break
		}
		switch ev.Type() {
		case "endpoint":
			if !gotEndpoint {
				gotEndpoint = true
				endpoint <- string(ev.Data)
			}
		case "message":
			m, perr := Parse(ev.Data)
			if perr != nil {
				c.cfg.Logger.Warn("sse upstream sent an invalid message", "err", perr)
				continue
			}
			c.route(m)
		}
	}
	if !gotEndpoint {
		close(endpoint)
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("sse stream ended: %w", err)
	}
	pending := c.pending
	c.pending = map[string]chan *Message{}
	c.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
	if !c.closed.Load() {
		c.closed.Store(true)
		close(c.done)
	}
}

func (c *SSEClient) route(m *Message) {
	if m.IsResponse() {
		c.mu.Lock()
		ch := c.pending[string(m.ID)]
		delete(c.pending, string(m.ID))
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
		return
	}
	if m.Method == MethodPing && m.IsRequest() {
		c.life.spawn(respondTimeout, func(ctx context.Context) { _ = c.Respond(ctx, NewResult(m.ID, json.RawMessage("{}"))) })
		return
	}
	if sessionWide(m) && c.cfg.OnMessage != nil {
		c.cfg.OnMessage(m)
		return
	}
	// Every message shares the one stream: progress and server requests go
	// to the call they belong to.
	c.calls.outOfBand(m, c.cfg.Logger, c.cfg.URL, func(r *Message) {
		c.life.spawn(respondTimeout, func(ctx context.Context) { _ = c.Respond(ctx, r) })
	}, c.cfg.OnMessage)
}

func (c *SSEClient) initialize(ctx context.Context) error {
	_, params := c.cfg.initializeParams()
	resp, err := c.Call(ctx, MethodInitialize, params, nil)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	info, err := c.cfg.initializeResult(resp, true)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()
	return c.Notify(ctx, MethodInitialized, nil)
}

// Server reports the negotiated revision and capabilities.
func (c *SSEClient) Server() ServerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Done is closed when the event stream ends; dial again then.
func (c *SSEClient) Done() <-chan struct{} { return c.done }

// Call sends a request; the response arrives on the event stream. Progress
// notifications for the call's progressToken and the server requests that
// belong to the call (see ClientConfig.OnMessage) go to onMsg; other
// server-initiated messages go to ClientConfig.OnMessage.
func (c *SSEClient) Call(ctx context.Context, method string, params json.RawMessage, onMsg func(*Message)) (*Message, error) {
	n := c.nextID.Add(1)
	id := IntID(n)
	ch := make(chan *Message, 1)
	if h, _ := PeekParams(params); h.Meta != nil && onMsg != nil {
		if orig := GetField(h.Meta, MetaProgressToken); orig != nil {
			// Every call shares the one event stream: give the progress
			// token a connection-unique value and restore the caller's
			// token on the way back, so concurrent callers never see each
			// other's progress.
			token := Quote(fmt.Sprintf("pcp-%d", n))
			meta, err := SetField(h.Meta, MetaProgressToken, token)
			if err == nil {
				params, err = SetField(params, "_meta", meta)
			}
			if err != nil {
				return nil, fmt.Errorf("call: %w", err)
			}
			inner := onMsg
			onMsg = func(m *Message) {
				if m.Method == NotifyProgress {
					if p, err := SetField(m.Params, MetaProgressToken, orig); err == nil {
						m.Params = p
					}
				}
				inner(m)
			}
		}
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[string(id)] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, string(id))
		c.mu.Unlock()
	}()
	if onMsg != nil {
		cl := c.calls.add(params, onMsg)
		defer c.calls.remove(cl)
	}
	if err := c.post(ctx, NewRequest(id, method, params)); err != nil {
		return nil, fmt.Errorf("post %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, c.failure()
		}
		return m, nil
	case <-ctx.Done():
		p, _ := json.Marshal(map[string]any{"requestId": id, "reason": "cancelled by the gateway"})
		c.life.spawn(respondTimeout, func(ctx context.Context) { _ = c.Notify(ctx, NotifyCancelled, p) })
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Notify sends a notification.
func (c *SSEClient) Notify(ctx context.Context, method string, params json.RawMessage) error {
	return c.post(ctx, NewNotification(method, params))
}

// Respond answers a server-to-client request.
func (c *SSEClient) Respond(ctx context.Context, m *Message) error {
	if !m.IsResponse() {
		return errors.New("respond: not a response")
	}
	return c.post(ctx, m)
}

func (c *SSEClient) post(ctx context.Context, m *Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(m.AppendJSON(nil)))
	if err != nil {
		return err
	}
	for k, vs := range c.cfg.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer drain(res.Body)
	if res.StatusCode/100 != 2 {
		return httpError(res)
	}
	return nil
}

// Close ends the event stream and the client's background work.
func (c *SSEClient) Close() error {
	c.life.end()
	<-c.done
	return nil
}

// SubscribeResource sends resources/subscribe (see Conn).
func (c *SSEClient) SubscribeResource(ctx context.Context, uri string) error {
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
