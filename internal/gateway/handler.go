package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// reqCtx is everything known about one agent HTTP request after the
// transport checks.
type reqCtx struct {
	r       *http.Request
	p       authn.Principal
	persona string
	role    Role
	view    *View
	rev     string
	modern  bool
	sess    *session        // legacy revisions
	caps    json.RawMessage // client capabilities
	logMeta bool            // 2026-07-28: the request asked for log messages
	upHdr   http.Header     // extra headers for the upstream request (Mcp-Param-*)
	start   time.Time
	known   bool // the persona exists (its name may label metrics)
}

func (rc *reqCtx) sessionNonce() string {
	if rc.sess == nil {
		return ""
	}
	return rc.sess.Nonce
}

// serve handles one agent HTTP request: stage 1 (authn) and the door
// checks, then the method's handler. The request's Call is written to the
// audit trail when it ends, whatever the outcome (audit is idempotent:
// paths that answer earlier write it before their answer leaves).
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	c := newCall(r, r.PathValue("persona"), time.Now())
	defer g.end(c)
	if !g.originAllowed(r) {
		g.reject(w, c, StageProtocol, http.StatusForbidden, nil, mcp.Errorf(mcp.CodeInvalidRequest, "forbidden: Origin not allowed"), "Origin not allowed")
		return
	}
	if !g.hostAllowed(r) {
		g.reject(w, c, StageProtocol, http.StatusForbidden, nil, mcp.Errorf(mcp.CodeInvalidRequest, "forbidden: Host not allowed"), "Host not allowed")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// A browser-based agent from an allowed origin (CORS).
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", allowedRequestHeaders(r.Header.Get("Access-Control-Request-Headers")))
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		g.reject(w, c, StageProtocol, http.StatusMethodNotAllowed, nil, mcp.Errorf(mcp.CodeInvalidRequest, "method not allowed"))
		return
	}
	p, err := g.cfg.Authenticator.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", g.challenge(r, err))
		msg := "unauthorized: a valid API key is required (Authorization: Bearer <key>)"
		var ae *authn.Error
		if errors.As(err, &ae) {
			msg = "unauthorized: " + ae.Reason
		}
		g.reject(w, c, StageAuthn, http.StatusUnauthorized, nil, mcp.Errorf(mcp.CodeInvalidRequest, "%s", msg))
		return
	}
	v := g.cfg.Source.View()
	var role Role
	if v != nil && v.Role != nil {
		role = v.Role(c.persona)
	}
	if role == nil {
		c.p = p
		g.reject(w, c, StageAuthn, http.StatusNotFound, nil, mcp.Errorf(mcp.CodeInvalidRequest, "unknown persona"))
		return
	}
	c.known = true
	if p.Persona != c.persona {
		c.p = p
		g.reject(w, c, StageAuthn, http.StatusForbidden, nil, mcp.Errorf(mcp.CodeInvalidRequest, "forbidden: this key is not valid for persona %s", c.persona), "key belongs to persona "+p.Persona)
		return
	}
	c.verdict(Verdict{Stage: StageAuthn, Outcome: Allow, Reason: p.Method})
	c.p, c.role, c.view = p, role, v
	switch r.Method {
	case http.MethodPost:
		g.post(w, c)
	case http.MethodGet:
		g.get(w, c)
	case http.MethodDelete:
		g.delete(w, c)
	}
}

// reject answers a request refused before govern (at the door, in
// authentication, or as a protocol error) with status and a JSON-RPC error,
// after recording the refusal. reason, if given, is what the record says
// instead of the error's message.
func (g *Gateway) reject(w http.ResponseWriter, c *Call, stage string, status int, id json.RawMessage, e *mcp.Error, reason ...string) {
	why := e.Message
	if len(reason) > 0 {
		why = reason[0]
	}
	c.verdict(c.deny(stage, why, nil, status))
	g.audit(c)
	writeJSON(w, status, mcp.NewError(id, e).AppendJSON(nil))
}

func (g *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	if len(g.cfg.AllowedOrigins) > 0 {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (g *Gateway) hostAllowed(r *http.Request) bool {
	if len(g.cfg.AllowedHosts) == 0 {
		return true
	}
	host := r.Host
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	for _, a := range g.cfg.AllowedHosts {
		if strings.EqualFold(a, host) || strings.EqualFold(a, bare) {
			return true
		}
	}
	return false
}

func accepts(r *http.Request, types ...string) bool {
	vals := r.Header.Values("Accept")
	if len(vals) == 0 {
		return false
	}
	ok := make([]bool, len(types))
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || params["q"] == "0" {
				continue
			}
			for i, t := range types {
				if mt == t || mt == "*/*" || (strings.HasSuffix(mt, "/*") && strings.HasPrefix(t, strings.TrimSuffix(mt, "*"))) {
					ok[i] = true
				}
			}
		}
	}
	return !slices.Contains(ok, false)
}

// openSession verifies a sealed session id and that it belongs to the
// caller.
func (g *Gateway) openSession(id string, rc *reqCtx) (*session, error) {
	st, err := g.sealer.openSession(id)
	if err != nil {
		return nil, err
	}
	if st.Persona != rc.persona || st.Agent != rc.p.Agent || st.KeyID != rc.p.KeyID {
		return nil, errSessionForged
	}
	if time.Since(time.Unix(st.Issued, 0)) > g.cfg.SessionTTL {
		return nil, errSessionExpired
	}
	if g.revoked.has(st.Nonce) {
		return nil, errSessionRevoked
	}
	if !mcp.Known(st.Rev) || mcp.Modern(st.Rev) {
		return nil, errSessionMalformed
	}
	return st, nil
}

func (g *Gateway) post(w http.ResponseWriter, c *Call) {
	r := c.r
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		g.reject(w, c, StageProtocol, http.StatusUnsupportedMediaType, nil, mcp.Errorf(mcp.CodeInvalidRequest, "Content-Type must be application/json"))
		return
	}
	if !accepts(r, "application/json", "text/event-stream") {
		g.reject(w, c, StageProtocol, http.StatusNotAcceptable, nil, mcp.Errorf(mcp.CodeInvalidRequest, "Accept must list application/json and text/event-stream"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.reject(w, c, StageProtocol, http.StatusRequestEntityTooLarge, nil, mcp.Errorf(mcp.CodeInvalidRequest, "request body too large"))
			return
		}
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, mcp.Errorf(mcp.CodeInvalidRequest, "could not read the request body"))
		return
	}
	if perr := checkJSON(body, g.cfg.MaxJSONDepth); perr != nil {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, perr)
		return
	}
	// 2026-07-28 has no sessions: a stray Mcp-Session-Id on a modern
	// request is ignored.
	if sid := r.Header.Get(mcp.HeaderSessionID); sid != "" && !mcp.Modern(r.Header.Get(mcp.HeaderProtocolVersion)) {
		st, err := g.openSession(sid, &c.reqCtx)
		if err != nil {
			g.reject(w, c, StageProtocol, http.StatusNotFound, nil, mcp.Errorf(mcp.CodeInvalidRequest, "session not found: %s; initialize a new session", err.Error()))
			return
		}
		// An unsupported MCP-Protocol-Version is refused (400). A supported
		// one that differs from the session's is accepted, as the reference
		// SDKs do (the conformance suite sends 2025-03-26 on a 2025-11-25
		// session): the session's negotiated revision alone decides how the
		// request is parsed, governed and answered.
		if pv := r.Header.Get(mcp.HeaderProtocolVersion); pv != "" && !mcp.Known(pv) {
			g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, unsupportedVersion(pv))
			return
		}
		c.sess, c.rev, c.caps = st, st.Rev, st.Caps
		g.postSession(w, c, body)
		return
	}
	m, perr := mcp.Parse(body)
	if perr != nil {
		status := http.StatusBadRequest
		var id json.RawMessage
		if m != nil {
			id = m.ID
		}
		if len(body) > 0 && strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
			perr = mcp.Errorf(mcp.CodeInvalidRequest, "invalid request: JSON-RPC batches need a 2025-03-26 session")
			if !json.Valid(body) {
				perr = mcp.Errorf(mcp.CodeParseError, "parse error: body is not valid JSON")
			}
		}
		g.reject(w, c, StageProtocol, status, id, perr)
		return
	}
	c.msg = m
	// 2026-07-28 removed initialize: under its header it is an unknown
	// method (404), answered by postModern.
	if m.Method == mcp.MethodInitialize && !mcp.Modern(r.Header.Get(mcp.HeaderProtocolVersion)) {
		g.initialize(w, c)
		return
	}
	g.postModern(w, c)
}

// postModern handles a sessionless request: 2026-07-28, or an error.
func (g *Gateway) postModern(w http.ResponseWriter, c *Call) {
	r, m := c.r, c.msg
	pv := r.Header.Get(mcp.HeaderProtocolVersion)
	fail := func(status int, e *mcp.Error) { g.reject(w, c, StageProtocol, status, m.ID, e) }
	head, perr := mcp.PeekParams(m.Params)
	if perr != nil {
		fail(http.StatusBadRequest, perr)
		return
	}
	meta, perr := mcp.ParseMeta(head.Meta)
	if perr != nil {
		fail(http.StatusBadRequest, perr)
		return
	}
	if pv == "" && meta.ProtocolVersion == "" {
		fail(http.StatusBadRequest, mcp.Errorf(mcp.CodeInvalidRequest, "missing Mcp-Session-Id: send initialize first, or use protocol version %s with per-request _meta", mcp.Rev20260728))
		return
	}
	// A header that disagrees with the body is a HeaderMismatch before
	// either value is judged.
	if pv != "" && meta.ProtocolVersion != "" && pv != meta.ProtocolVersion {
		fail(http.StatusBadRequest, mcp.Errorf(mcp.CodeHeaderMismatch, "Header mismatch: %s header value %q does not match the body value %q", mcp.HeaderProtocolVersion, pv, meta.ProtocolVersion))
		return
	}
	for _, v := range []string{pv, meta.ProtocolVersion} {
		if v != "" && !mcp.Known(v) {
			fail(http.StatusBadRequest, unsupportedVersion(v))
			return
		}
	}
	if pv != "" && !mcp.Modern(pv) {
		fail(http.StatusBadRequest, mcp.Errorf(mcp.CodeInvalidRequest, "protocol version %s needs a session: send initialize first", pv))
		return
	}
	if m.IsResponse() {
		fail(http.StatusBadRequest, mcp.Errorf(mcp.CodeInvalidRequest, "protocol version %s takes no JSON-RPC responses from clients", mcp.Rev20260728))
		return
	}
	if m.IsNotification() {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if meta.ProtocolVersion == "" {
		fail(http.StatusBadRequest, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: _meta[%q] is required", mcp.MetaProtocolVersion))
		return
	}
	if !mcp.Modern(meta.ProtocolVersion) {
		fail(http.StatusBadRequest, unsupportedVersion(meta.ProtocolVersion))
		return
	}
	if herr := mcp.CheckRequestHeaders(r.Header, m, head, meta.ProtocolVersion); herr != nil {
		fail(http.StatusBadRequest, herr)
		return
	}
	if meta.ClientCapabilities == nil {
		fail(http.StatusBadRequest, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: _meta[%q] is required", mcp.MetaClientCapabilities))
		return
	}
	c.modern, c.rev, c.caps, c.logMeta = true, meta.ProtocolVersion, meta.ClientCapabilities, meta.LogLevel != ""
	c.verdict(Verdict{Stage: StageProtocol, Outcome: Allow, Reason: c.rev})
	if m.Method == mcp.MethodSubscriptionsListen {
		g.listen(w, c)
		return
	}
	out := newResponder(w, g, &c.reqCtx)
	c.head, c.out = head, out
	resp, status := g.dispatch(c)
	if status == http.StatusOK && resp != nil && resp.Error != nil {
		status = modernStatus(resp.Error.Code) // an upstream's error, too
	}
	g.audit(c)
	out.finish(withheld(c, m.ID, resp), status)
}

// modernStatus is the HTTP status of a 2026-07-28 error response.
func modernStatus(code int) int {
	switch code {
	case mcp.CodeMethodNotFound:
		return http.StatusNotFound
	case mcp.CodeHeaderMismatch, mcp.CodeUnsupportedProtocolVersion, mcp.CodeMissingRequiredClientCapability:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func unsupportedVersion(v string) *mcp.Error {
	data, _ := json.Marshal(map[string]any{"supported": mcp.Revisions, "requested": v})
	return &mcp.Error{Code: mcp.CodeUnsupportedProtocolVersion, Message: "Unsupported protocol version", Data: data}
}

// postSession handles a POST within a legacy session.
func (g *Gateway) postSession(w http.ResponseWriter, c *Call, body []byte) {
	msgs, errs, batch, perr := mcp.ParseBody(body, mcp.AllowsBatch(c.rev))
	if perr != nil && !batch {
		var id json.RawMessage
		if len(msgs) == 1 && msgs[0] != nil {
			id = msgs[0].ID
		}
		g.reject(w, c, StageProtocol, http.StatusBadRequest, id, perr)
		return
	}
	if perr != nil {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, perr)
		return
	}
	if batch && len(msgs) > g.cfg.MaxBatch {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, batchTooLarge(len(msgs), g.cfg.MaxBatch))
		return
	}
	if !batch {
		m := msgs[0]
		c.msg = m
		c.verdict(Verdict{Stage: StageProtocol, Outcome: Allow, Reason: c.rev})
		switch {
		case m.IsRequest():
			head, perr := mcp.PeekParams(m.Params)
			if perr != nil {
				g.reject(w, c, StageProtocol, http.StatusOK, m.ID, perr)
				return
			}
			out := newResponder(w, g, &c.reqCtx)
			c.head, c.out = head, out
			resp, status := g.dispatch(c)
			g.audit(c)
			out.finish(withheld(c, m.ID, resp), status)
		case m.IsNotification():
			g.notification(&c.reqCtx, m)
			w.WriteHeader(http.StatusAccepted)
		default:
			if err := g.agentResponse(&c.reqCtx, m); err != nil {
				g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, mcp.Errorf(mcp.CodeInvalidRequest, "%s", err.Error()))
				return
			}
			w.WriteHeader(http.StatusAccepted)
		}
		return
	}
	// A 2025-03-26 batch: answer every request in one JSON array. Each
	// message is a call of its own, with its own record.
	var out []byte
	n := 0
	for i, m := range msgs {
		mc := c.child()
		mc.msg = m
		var resp *mcp.Message
		switch {
		case errs[i] != nil:
			var id json.RawMessage
			if m != nil {
				id = m.ID
			}
			mc.verdict(mc.deny(StageProtocol, errs[i].Message, nil, 0))
			resp = mcp.NewError(id, errs[i])
		case m.Method == mcp.MethodInitialize:
			e := mcp.Errorf(mcp.CodeInvalidRequest, "initialize must not be part of a batch")
			mc.verdict(mc.deny(StageProtocol, e.Message, nil, 0))
			resp = mcp.NewError(m.ID, e)
		case m.IsRequest():
			head, herr := mcp.PeekParams(m.Params)
			if herr != nil {
				mc.verdict(mc.deny(StageProtocol, herr.Message, nil, 0))
				resp = mcp.NewError(m.ID, herr)
				break
			}
			mc.verdict(Verdict{Stage: StageProtocol, Outcome: Allow, Reason: c.rev})
			mc.head, mc.out = head, noStream{}
			resp, _ = g.dispatch(mc)
		case m.IsNotification():
			g.notification(&mc.reqCtx, m)
		default:
			if err := g.agentResponse(&mc.reqCtx, m); err != nil {
				g.log.Debug("agent response in batch rejected", "err", err)
			}
		}
		g.audit(mc)
		if resp != nil && m != nil {
			resp = withheld(mc, m.ID, resp)
		}
		if resp != nil {
			if n == 0 {
				out = append(out, '[')
			} else {
				out = append(out, ',')
			}
			out = resp.AppendJSON(out)
			n++
		}
	}
	c.written = true // each message had its own record
	if n == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSON(w, http.StatusOK, append(out, ']'))
}

// sender is where intermediate messages of a request go.
type sender interface {
	send(m *mcp.Message) error
}

// noStream is the sender of batched requests, which cannot stream.
type noStream struct{}

func (noStream) send(*mcp.Message) error { return errors.New("cannot stream inside a batch") }

func (g *Gateway) initialize(w http.ResponseWriter, c *Call) {
	rc, m := &c.reqCtx, c.msg
	if m.ID == nil {
		w.WriteHeader(http.StatusAccepted) // an initialize notification is meaningless; ignore
		return
	}
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil || p.ProtocolVersion == "" {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, m.ID, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: initialize needs protocolVersion, capabilities and clientInfo"))
		return
	}
	rev := p.ProtocolVersion
	if !mcp.Known(rev) || mcp.Modern(rev) {
		rev = mcp.LatestLegacy // the client disconnects if it cannot speak it
	}
	st := &session{
		Persona: rc.persona, Agent: rc.p.Agent, KeyID: rc.p.KeyID, Rev: rev,
		Client: p.ClientInfo, Caps: p.Capabilities, Nonce: randomID(12), Issued: time.Now().Unix(),
	}
	sid := g.sealer.sealSession(st)
	res, _ := json.Marshal(map[string]any{
		"protocolVersion": rev,
		"capabilities":    json.RawMessage(serverCaps),
		"serverInfo":      mcp.Implementation{Name: g.cfg.ServerName, Version: g.cfg.ServerVersion},
		"instructions":    instructions(rc),
	})
	w.Header().Set(mcp.HeaderSessionID, sid)
	writeJSON(w, http.StatusOK, mcp.NewResult(m.ID, res).AppendJSON(nil))
	g.log.Info("mcp session started", "agent", rc.p.Agent, "persona", rc.persona, "revision", rev, "session", st.Nonce)
}

const serverCaps = `{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"prompts":{"listChanged":true},"completions":{},"logging":{}}`

// get opens the standalone SSE stream of a legacy session.
func (g *Gateway) get(w http.ResponseWriter, c *Call) {
	rc, r := &c.reqCtx, c.r
	sid := r.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		if mcp.Modern(r.Header.Get(mcp.HeaderProtocolVersion)) {
			w.Header().Set("Allow", "POST")
			g.reject(w, c, StageProtocol, http.StatusMethodNotAllowed, nil, mcp.Errorf(mcp.CodeInvalidRequest, "protocol version %s has no GET stream; use subscriptions/listen", mcp.Rev20260728))
			return
		}
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, mcp.Errorf(mcp.CodeInvalidRequest, "missing Mcp-Session-Id"))
		return
	}
	if !accepts(r, "text/event-stream") {
		g.reject(w, c, StageProtocol, http.StatusNotAcceptable, nil, mcp.Errorf(mcp.CodeInvalidRequest, "Accept must list text/event-stream"))
		return
	}
	st, err := g.openSession(sid, rc)
	if err != nil {
		g.reject(w, c, StageProtocol, http.StatusNotFound, nil, mcp.Errorf(mcp.CodeInvalidRequest, "session not found: %s", err.Error()))
		return
	}
	if last := r.Header.Get(mcp.HeaderLastEventID); last != "" {
		g.resumeStream(w, c, st, last)
		return
	}
	l := &listener{
		persona: rc.persona, session: st.Nonce, ch: make(chan *mcp.Message, 64),
		want: map[string]bool{mcp.NotifyToolsChanged: true, mcp.NotifyPromptsChanged: true, mcp.NotifyResourcesChanged: true},
	}
	g.stream(w, rc, l, nil)
}

// stream serves a listener until the agent or the gateway goes away.
// first, if set, is written before anything else.
func (g *Gateway) stream(w http.ResponseWriter, rc *reqCtx, l *listener, first *mcp.Message) {
	g.hub.add(l)
	defer g.hub.remove(l)
	// What the agent can know of its lists now, loading them as a list
	// request would (bounded by ListWait): a stream opened before the
	// agent's first tools/list must not hear the first load as a change.
	// The listener is in the hub first, so a change meanwhile is not
	// missed: its announcement (all kinds, seen being unset) wins.
	l.seen.CompareAndSwap(nil, printCatalog(g.catalog(rc.r.Context(), rc.persona, rc.role, rc.view, allKinds...)))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rcw := http.NewResponseController(w)
	if first != nil {
		_ = mcp.WriteEvent(w, mcp.Event{Name: "message", Data: first.AppendJSON(nil)})
	}
	_ = rcw.Flush()
	tick := time.NewTicker(g.cfg.KeepAlive)
	defer tick.Stop()
	ctx := rc.r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.ctx.Done():
			if l.subID != nil {
				res := mcp.NewResult(l.subID, []byte(`{"resultType":"complete","_meta":{"`+mcp.MetaSubscriptionID+`":`+string(l.subID)+`}}`))
				_ = mcp.WriteEvent(w, mcp.Event{Name: "message", Data: res.AppendJSON(nil)})
				_ = rcw.Flush()
			}
			return
		case m := <-l.ch:
			if mcp.WriteEvent(w, mcp.Event{Name: "message", Data: m.AppendJSON(nil)}) != nil || rcw.Flush() != nil {
				return
			}
		case <-tick.C:
			if mcp.WriteComment(w, "") != nil || rcw.Flush() != nil {
				return
			}
		}
	}
}

// delete ends a legacy session.
func (g *Gateway) delete(w http.ResponseWriter, c *Call) {
	rc := &c.reqCtx
	sid := rc.r.Header.Get(mcp.HeaderSessionID)
	if mcp.Modern(rc.r.Header.Get(mcp.HeaderProtocolVersion)) {
		w.Header().Set("Allow", "POST")
		g.reject(w, c, StageProtocol, http.StatusMethodNotAllowed, nil, mcp.Errorf(mcp.CodeInvalidRequest, "protocol version %s has no sessions to delete", mcp.Rev20260728))
		return
	}
	if sid == "" {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, mcp.Errorf(mcp.CodeInvalidRequest, "missing Mcp-Session-Id"))
		return
	}
	st, err := g.openSession(sid, rc)
	if err != nil {
		g.reject(w, c, StageProtocol, http.StatusNotFound, nil, mcp.Errorf(mcp.CodeInvalidRequest, "session not found: %s", err.Error()))
		return
	}
	until := time.Unix(st.Issued, 0).Add(g.cfg.SessionTTL)
	g.revoked.add(st.Nonce, until)
	if g.cfg.ShareSessions != nil {
		g.cfg.ShareSessions(&state.SessionEvents{Revoked: []state.RevokedSession{{Nonce: st.Nonce, Until: until}}})
	}
	g.hub.dropSession(st.Nonce)
	g.forgetSession(st.Nonce)
	w.WriteHeader(http.StatusNoContent)
	g.log.Info("mcp session ended", "agent", rc.p.Agent, "persona", rc.persona, "session", st.Nonce)
}

// allowedRequestHeaders answers a CORS preflight: the standard MCP request
// headers plus any requested Mcp-Param-* header.
func allowedRequestHeaders(requested string) string {
	out := []string{"Authorization", "Content-Type", "Accept", mcp.HeaderSessionID, mcp.HeaderProtocolVersion, mcp.HeaderMethod, mcp.HeaderName, mcp.HeaderLastEventID}
	for _, h := range strings.Split(requested, ",") {
		h = strings.TrimSpace(h)
		if len(h) > len(mcp.HeaderParamPrefix) && strings.EqualFold(h[:len(mcp.HeaderParamPrefix)], mcp.HeaderParamPrefix) && len(h) < 128 {
			out = append(out, h)
		}
	}
	return strings.Join(out, ", ")
}

// instructions tells the agent what the endpoint is for.
func instructions(rc *reqCtx) string {
	text := "Tools, resources and prompts of persona " + rc.persona + ", governed by Portcullis: calls outside the persona's role are refused."
	if rc.view != nil && rc.view.Describe != nil {
		if d := rc.view.Describe(rc.persona); d != "" {
			text = d + "\n\n" + text
		}
	}
	return text
}
