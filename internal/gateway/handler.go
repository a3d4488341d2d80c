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
}

func (rc *reqCtx) sessionNonce() string {
	if rc.sess == nil {
		return ""
	}
	return rc.sess.Nonce
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	persona := r.PathValue("persona")
	if !g.originAllowed(r) {
		g.refused(r, start, persona, authn.Principal{}, "Origin not allowed")
		httpFail(w, http.StatusForbidden, mcp.CodeInvalidRequest, "forbidden: Origin not allowed")
		return
	}
	if !g.hostAllowed(r) {
		g.refused(r, start, persona, authn.Principal{}, "Host not allowed")
		httpFail(w, http.StatusForbidden, mcp.CodeInvalidRequest, "forbidden: Host not allowed")
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
		httpFail(w, http.StatusMethodNotAllowed, mcp.CodeInvalidRequest, "method not allowed")
		return
	}
	p, err := g.cfg.Authenticator.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", authn.Challenge(err))
		msg := "unauthorized: a valid API key is required (Authorization: Bearer <key>)"
		var ae *authn.Error
		if errors.As(err, &ae) {
			msg = "unauthorized: " + ae.Reason
		}
		g.refused(r, start, persona, authn.Principal{}, msg)
		httpFail(w, http.StatusUnauthorized, mcp.CodeInvalidRequest, msg)
		return
	}
	v := g.cfg.Source.View()
	var role Role
	if v != nil && v.Role != nil {
		role = v.Role(persona)
	}
	if role == nil {
		g.refused(r, start, persona, p, "unknown persona")
		httpFail(w, http.StatusNotFound, mcp.CodeInvalidRequest, "unknown persona")
		return
	}
	if p.Persona != persona {
		g.refused(r, start, persona, p, "key belongs to persona "+p.Persona)
		httpFail(w, http.StatusForbidden, mcp.CodeInvalidRequest, "forbidden: this key is not valid for persona "+persona)
		return
	}
	rc := &reqCtx{r: r, p: p, persona: persona, role: role, view: v, start: start}
	switch r.Method {
	case http.MethodPost:
		g.post(w, rc)
	case http.MethodGet:
		g.get(w, rc)
	case http.MethodDelete:
		g.delete(w, rc)
	}
}

// httpFail answers with an HTTP error status and a JSON-RPC error without id.
func httpFail(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, mcp.NewError(nil, &mcp.Error{Code: code, Message: msg}).AppendJSON(nil))
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

func (g *Gateway) post(w http.ResponseWriter, rc *reqCtx) {
	r := rc.r
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		httpFail(w, http.StatusUnsupportedMediaType, mcp.CodeInvalidRequest, "Content-Type must be application/json")
		return
	}
	if !accepts(r, "application/json", "text/event-stream") {
		httpFail(w, http.StatusNotAcceptable, mcp.CodeInvalidRequest, "Accept must list application/json and text/event-stream")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpFail(w, http.StatusRequestEntityTooLarge, mcp.CodeInvalidRequest, "request body too large")
			return
		}
		httpFail(w, http.StatusBadRequest, mcp.CodeInvalidRequest, "could not read the request body")
		return
	}
	// 2026-07-28 has no sessions: a stray Mcp-Session-Id on a modern
	// request is ignored.
	if sid := r.Header.Get(mcp.HeaderSessionID); sid != "" && !mcp.Modern(r.Header.Get(mcp.HeaderProtocolVersion)) {
		st, err := g.openSession(sid, rc)
		if err != nil {
			httpFail(w, http.StatusNotFound, mcp.CodeInvalidRequest, "session not found: "+err.Error()+"; initialize a new session")
			return
		}
		// An unsupported MCP-Protocol-Version is refused (400). A supported
		// one that differs from the session's is accepted, as the reference
		// SDKs do (the conformance suite sends 2025-03-26 on a 2025-11-25
		// session): the session's negotiated revision alone decides how the
		// request is parsed, governed and answered.
		if pv := r.Header.Get(mcp.HeaderProtocolVersion); pv != "" && !mcp.Known(pv) {
			writeJSON(w, http.StatusBadRequest, mcp.NewError(nil, unsupportedVersion(pv)).AppendJSON(nil))
			return
		}
		rc.sess, rc.rev, rc.caps = st, st.Rev, st.Caps
		g.postSession(w, rc, body)
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
		writeJSON(w, status, mcp.NewError(id, perr).AppendJSON(nil))
		return
	}
	// 2026-07-28 removed initialize: under its header it is an unknown
	// method (404), answered by postModern.
	if m.Method == mcp.MethodInitialize && !mcp.Modern(r.Header.Get(mcp.HeaderProtocolVersion)) {
		g.initialize(w, rc, m)
		return
	}
	g.postModern(w, rc, m)
}

// postModern handles a sessionless request: 2026-07-28, or an error.
func (g *Gateway) postModern(w http.ResponseWriter, rc *reqCtx, m *mcp.Message) {
	r := rc.r
	pv := r.Header.Get(mcp.HeaderProtocolVersion)
	fail := func(status int, e *mcp.Error) { writeJSON(w, status, mcp.NewError(m.ID, e).AppendJSON(nil)) }
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
	rc.modern, rc.rev, rc.caps, rc.logMeta = true, meta.ProtocolVersion, meta.ClientCapabilities, meta.LogLevel != ""
	if m.Method == mcp.MethodSubscriptionsListen {
		g.listen(w, rc, m)
		return
	}
	out := newResponder(w, g, rc)
	resp, status := g.dispatch(rc, m, head, out)
	if status == http.StatusOK && resp != nil && resp.Error != nil {
		status = modernStatus(resp.Error.Code) // an upstream's error, too
	}
	out.finish(resp, status)
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
func (g *Gateway) postSession(w http.ResponseWriter, rc *reqCtx, body []byte) {
	msgs, errs, batch, perr := mcp.ParseBody(body, mcp.AllowsBatch(rc.rev))
	if perr != nil && !batch {
		var id json.RawMessage
		if len(msgs) == 1 && msgs[0] != nil {
			id = msgs[0].ID
		}
		writeJSON(w, http.StatusBadRequest, mcp.NewError(id, perr).AppendJSON(nil))
		return
	}
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, mcp.NewError(nil, perr).AppendJSON(nil))
		return
	}
	if !batch {
		m := msgs[0]
		switch {
		case m.IsRequest():
			head, perr := mcp.PeekParams(m.Params)
			if perr != nil {
				writeJSON(w, http.StatusOK, mcp.NewError(m.ID, perr).AppendJSON(nil))
				return
			}
			out := newResponder(w, g, rc)
			resp, status := g.dispatch(rc, m, head, out)
			out.finish(resp, status)
		case m.IsNotification():
			g.notification(rc, m)
			w.WriteHeader(http.StatusAccepted)
		default:
			if err := g.agentResponse(rc, m); err != nil {
				httpFail(w, http.StatusBadRequest, mcp.CodeInvalidRequest, err.Error())
				return
			}
			w.WriteHeader(http.StatusAccepted)
		}
		return
	}
	// A 2025-03-26 batch: answer every request in one JSON array.
	var out []byte
	n := 0
	for i, m := range msgs {
		var resp *mcp.Message
		switch {
		case errs[i] != nil:
			var id json.RawMessage
			if m != nil {
				id = m.ID
			}
			resp = mcp.NewError(id, errs[i])
		case m.Method == mcp.MethodInitialize:
			resp = mcp.NewError(m.ID, mcp.Errorf(mcp.CodeInvalidRequest, "initialize must not be part of a batch"))
		case m.IsRequest():
			head, herr := mcp.PeekParams(m.Params)
			if herr != nil {
				resp = mcp.NewError(m.ID, herr)
				break
			}
			resp, _ = g.dispatch(rc, m, head, noStream{})
		case m.IsNotification():
			g.notification(rc, m)
		default:
			if err := g.agentResponse(rc, m); err != nil {
				g.log.Debug("agent response in batch rejected", "err", err)
			}
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

func (g *Gateway) initialize(w http.ResponseWriter, rc *reqCtx, m *mcp.Message) {
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
		writeJSON(w, http.StatusBadRequest, mcp.NewError(m.ID, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: initialize needs protocolVersion, capabilities and clientInfo")).AppendJSON(nil))
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
func (g *Gateway) get(w http.ResponseWriter, rc *reqCtx) {
	r := rc.r
	sid := r.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		if mcp.Modern(r.Header.Get(mcp.HeaderProtocolVersion)) {
			w.Header().Set("Allow", "POST")
			httpFail(w, http.StatusMethodNotAllowed, mcp.CodeInvalidRequest, "protocol version "+mcp.Rev20260728+" has no GET stream; use subscriptions/listen")
			return
		}
		httpFail(w, http.StatusBadRequest, mcp.CodeInvalidRequest, "missing Mcp-Session-Id")
		return
	}
	if !accepts(r, "text/event-stream") {
		httpFail(w, http.StatusNotAcceptable, mcp.CodeInvalidRequest, "Accept must list text/event-stream")
		return
	}
	st, err := g.openSession(sid, rc)
	if err != nil {
		httpFail(w, http.StatusNotFound, mcp.CodeInvalidRequest, "session not found: "+err.Error())
		return
	}
	if last := r.Header.Get(mcp.HeaderLastEventID); last != "" {
		g.resumeStream(w, rc, st, last)
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
func (g *Gateway) delete(w http.ResponseWriter, rc *reqCtx) {
	sid := rc.r.Header.Get(mcp.HeaderSessionID)
	if mcp.Modern(rc.r.Header.Get(mcp.HeaderProtocolVersion)) {
		w.Header().Set("Allow", "POST")
		httpFail(w, http.StatusMethodNotAllowed, mcp.CodeInvalidRequest, "protocol version "+mcp.Rev20260728+" has no sessions to delete")
		return
	}
	if sid == "" {
		httpFail(w, http.StatusBadRequest, mcp.CodeInvalidRequest, "missing Mcp-Session-Id")
		return
	}
	st, err := g.openSession(sid, rc)
	if err != nil {
		httpFail(w, http.StatusNotFound, mcp.CodeInvalidRequest, "session not found: "+err.Error())
		return
	}
	g.revoked.add(st.Nonce, time.Unix(st.Issued, 0).Add(g.cfg.SessionTTL))
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

// refused records a request turned away before any MCP method was looked at.
func (g *Gateway) refused(r *http.Request, start time.Time, persona string, p authn.Principal, reason string) {
	ip := p.ClientIP
	if !ip.IsValid() {
		ip = authn.ClientIP(r)
	}
	d := Decision{Time: start, Agent: p.Agent, Persona: persona, KeyID: p.KeyID, Method: r.Method + " " + r.URL.Path,
		Decision: Deny, Reason: reason, Latency: time.Since(start)}
	if ip.IsValid() {
		d.ClientIP = ip.String()
	}
	g.record(r.Context(), d)
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
