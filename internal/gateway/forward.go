package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// pendingCall is one upstream call running on its own goroutine, so that
// it can outlive the agent request that started it (2026-07-28 MRTR: the
// agent gets input_required and retries with the answers).
type pendingCall struct {
	upstream string
	conn     mcp.Conn
	events   chan *mcp.Message // what the upstream sends during the call
	done     chan struct{}
	resp     *mcp.Message
	err      error
	ctx      context.Context
	cancel   context.CancelFunc
}

// relay is a server-to-client request sent to an agent, awaiting its answer.
type relay struct {
	session string
	reply   func(*mcp.Message)
}

// parkedCall is a call waiting for an agent's MRTR retry.
type parkedCall struct {
	pc      *pendingCall
	keys    map[string]json.RawMessage // inputRequests key -> upstream request id
	agent   string
	persona string
	method  string
	name    string
	timer   *time.Timer
}

const (
	mrtrPrefix  = "pcgw1."
	mrtrAAD     = "portcullis/mrtr/v1"
	maxBridging = 5
)

func capabilityFor(method string) string {
	switch method {
	case mcp.MethodSampling:
		return "sampling"
	case mcp.MethodElicitation:
		return "elicitation"
	case mcp.MethodRootsList:
		return "roots"
	}
	return ""
}

func hasCap(caps json.RawMessage, name string) bool {
	v := mcp.GetField(caps, name)
	return v != nil && string(v) != "null"
}

// forward sends an authorized request to the upstream and relays what comes
// back (the upstream stage). It returns the agent's answer when the call
// ends here (an upstream failure, input_required, a cancellation, a
// refused retry), or nil with the upstream's response in c.upResp for
// response inspection. It fills c.rec as it goes.
func (g *Gateway) forward(c *Call) (*mcp.Message, int) {
	rc, m, upName, params := &c.reqCtx, c.msg, c.target.Upstream, c.params
	u := g.upstream(upName, rc.view)
	if u == nil {
		c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Fail, "upstream not configured", "unavailable"
		return mcp.NewError(m.ID, mcp.Errorf(mcp.CodeInternalError, "upstream %q is not configured", upName)), http.StatusOK
	}
	if rc.modern && bytes.Contains(params, []byte(`"requestState"`)) {
		if rs := mcp.GetField(params, "requestState"); rs != nil {
			var state string
			if json.Unmarshal(rs, &state) == nil && strings.HasPrefix(state, mrtrPrefix) {
				pc, rerr := g.resume(c, state, params)
				if rerr != nil {
					return c.refuse(c.denyError(StageProtocol, rerr.Message, rerr, http.StatusOK))
				}
				if pc != nil {
					return g.drive(c, u, pc, 0)
				}
				// The parked call is gone (expired, or parked on another
				// node): start over; the upstream asks again if it must.
				params, _ = mcp.SetFields(params, map[string]json.RawMessage{"requestState": nil, "inputResponses": nil})
			}
		}
	}
	return g.run(c, u, params, 0)
}

// run calls the upstream. A call that might have to park for a 2026-07-28
// agent's MRTR retry runs on its own goroutine (start, drive); every other
// call runs inline on the request's goroutine, with no hand-off.
func (g *Gateway) run(c *Call, u *upstream, params json.RawMessage, round int) (*mcp.Message, int) {
	if c.modern && mayNeedInput(&c.reqCtx, c.msg.Method) {
		return g.drive(c, u, g.start(u, c.msg.Method, params, callContext(&c.reqCtx, u)), round)
	}
	return g.inline(c, u, params, round)
}

// mayNeedInput reports whether an upstream could ask this agent for input
// during the call: the method supports MRTR and the agent declared a
// capability an input request needs.
func mayNeedInput(rc *reqCtx, method string) bool {
	switch method {
	case mcp.MethodToolsCall, mcp.MethodPromptsGet, mcp.MethodResourcesRead:
	default:
		return false
	}
	return hasCap(rc.caps, "sampling") || hasCap(rc.caps, "elicitation") || hasCap(rc.caps, "roots")
}

func (g *Gateway) inline(c *Call, u *upstream, params json.RawMessage, round int) (*mcp.Message, int) {
	rc, m, out := &c.reqCtx, c.msg, c.out
	ctx, cancel := context.WithTimeout(g.ctx, u.timeout())
	defer cancel()
	pc := &pendingCall{upstream: u.spec.Name, ctx: ctx, cancel: cancel}
	if rc.sess != nil {
		key := rc.sess.Nonce + "\x00" + string(m.ID)
		g.inflight.Store(key, context.CancelFunc(cancel))
		defer g.inflight.Delete(key)
	}
	var gone atomic.Bool
	stop := context.AfterFunc(rc.r.Context(), func() {
		if r, ok := out.(*responder); ok && r.detached() {
			return // legacy: not a cancellation; the stream can be resumed
		}
		gone.Store(true)
		cancel()
	})
	defer stop()
	var relays []string
	defer func() {
		for _, id := range relays {
			g.relays.Delete(id)
		}
	}()
	pc.conn, pc.err = u.connect(ctx)
	if pc.err == nil {
		pc.resp, pc.err = pc.conn.Call(callContext(rc, u)(ctx), m.Method, params, func(ev *mcp.Message) {
			g.event(c, pc, ev, &relays)
		})
	}
	if gone.Load() && pc.err != nil {
		c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Allow, "agent went away", "cancelled"
		return mcp.NewError(m.ID, mcp.Errorf(mcp.CodeInternalError, "request cancelled")), http.StatusOK
	}
	return g.finish(c, u, pc, round)
}

// callContext returns what an agent's call adds to the upstream request's
// context: its Mcp-Param-* headers, the capabilities it declared (a
// 2026-07-28 upstream must not ask it for more), and for a legacy agent
// the log level it set.
func callContext(rc *reqCtx, u *upstream) func(context.Context) context.Context {
	return func(ctx context.Context) context.Context {
		ctx = mcp.WithClientCapabilities(mcp.WithHeaders(ctx, rc.upHdr), relayableCaps(rc.caps))
		if !rc.modern {
			ctx = mcp.WithLogLevel(ctx, u.agentLogLevel())
		}
		return ctx
	}
}

// relayableCaps is the part of an agent's capabilities the gateway can
// relay: sampling, elicitation and roots, as the agent declared them.
func relayableCaps(caps json.RawMessage) json.RawMessage {
	var in map[string]json.RawMessage
	_ = json.Unmarshal(caps, &in)
	out := map[string]json.RawMessage{}
	for _, k := range []string{"sampling", "elicitation", "roots"} {
		if v, ok := in[k]; ok && string(v) != "null" {
			out[k] = v
		}
	}
	b, _ := json.Marshal(out)
	return b
}

func (g *Gateway) start(u *upstream, method string, params json.RawMessage, callCtx func(context.Context) context.Context) *pendingCall {
	ctx, cancel := context.WithTimeout(g.ctx, u.timeout())
	pc := &pendingCall{upstream: u.spec.Name, events: make(chan *mcp.Message, 32), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go func() {
		defer close(pc.done)
		conn, err := u.connect(ctx)
		if err != nil {
			pc.err = err
			return
		}
		pc.conn = conn
		pc.resp, pc.err = conn.Call(callCtx(ctx), method, params, func(ev *mcp.Message) {
			select {
			case pc.events <- ev:
			case <-ctx.Done():
			}
		})
	}()
	return pc
}

// drive relays a running call to the agent until it completes, the agent
// goes away, or (2026-07-28) the upstream needs input and the call parks.
func (g *Gateway) drive(c *Call, u *upstream, pc *pendingCall, round int) (*mcp.Message, int) {
	rc, m, out := &c.reqCtx, c.msg, c.out
	if rc.sess != nil {
		key := rc.sess.Nonce + "\x00" + string(m.ID)
		g.inflight.Store(key, pc.cancel)
		defer g.inflight.Delete(key)
	}
	var relays []string
	defer func() {
		for _, id := range relays {
			g.relays.Delete(id)
		}
	}()
	agentDone := rc.r.Context().Done()
	handle := func(ev *mcp.Message) *mcp.Message { return g.event(c, pc, ev, &relays) }
	for {
		select {
		case ev := <-pc.events:
			if res := handle(ev); res != nil {
				return res, http.StatusOK
			}
		case <-pc.done:
			for {
				select {
				case ev := <-pc.events:
					if ev.IsNotification() {
						handle(ev)
					}
					continue
				default:
				}
				break
			}
			pc.cancel()
			return g.finish(c, u, pc, round)
		case <-agentDone:
			if r, ok := out.(*responder); ok && r.detached() {
				// Legacy revisions: a dropped connection is not a
				// cancellation. The call goes on into the replay buffer
				// for the agent to resume (notifications/cancelled stops it).
				agentDone = nil
				continue
			}
			pc.cancel()
			<-pc.done
			c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Allow, "agent went away", "cancelled"
			return mcp.NewError(m.ID, mcp.Errorf(mcp.CodeInternalError, "request cancelled")), http.StatusOK
		}
	}
}

// event handles one message the upstream sent during a call: a
// notification goes to the agent's stream; a server-to-client request is
// relayed (legacy agents), parked as MRTR input_required (2026-07-28 agents
// with the capability; the returned result answers the agent), or refused.
func (g *Gateway) event(c *Call, pc *pendingCall, ev *mcp.Message, relays *[]string) *mcp.Message {
	rc, out := &c.reqCtx, c.out
	if ev.IsRequest() {
		if ev = g.inspectServerRequest(rc, pc, ev); ev == nil {
			return nil
		}
		cp := capabilityFor(ev.Method)
		if rc.modern {
			if cp != "" && hasCap(rc.caps, cp) && pc.events != nil {
				return g.park(c, pc, ev)
			}
			g.refuseServerRequest(pc, ev, "the agent did not declare the "+cp+" capability")
			return nil
		}
		if id := g.relayToAgent(rc, ev, out, func(ans *mcp.Message) {
			ans = g.inspectAnswer(rc, pc.upstream, &mcp.Message{ID: ev.ID, Result: ans.Result, Error: ans.Error})
			ctx, cancel := context.WithTimeout(pc.ctx, 10*time.Second)
			defer cancel()
			if err := pc.conn.Respond(ctx, ans); err != nil {
				g.log.Warn("could not deliver the agent's answer upstream", "upstream", pc.upstream, "err", err)
			}
		}); id != "" {
			*relays = append(*relays, id)
		}
		return nil
	}
	if ev.IsNotification() {
		if ev.Method == mcp.NotifyMessage && rc.modern && !rc.logMeta {
			return nil
		}
		if ev = g.inspectNotification(rc, pc.upstream, ev); ev != nil {
			_ = out.send(ev)
		}
	}
	return nil
}

func (g *Gateway) refuseServerRequest(pc *pendingCall, ev *mcp.Message, why string) {
	ctx, cancel := context.WithTimeout(pc.ctx, 5*time.Second)
	defer cancel()
	_ = pc.conn.Respond(ctx, mcp.NewError(ev.ID, mcp.Errorf(mcp.CodeMethodNotFound, "%s: %s", ev.Method, why)))
}

// relayToAgent sends a server-to-client request to a legacy agent on its
// response stream, under a gateway id. reply receives the agent's answer
// (or a refusal). It returns the gateway id, "" when refused.
func (g *Gateway) relayToAgent(rc *reqCtx, ev *mcp.Message, out sender, reply func(*mcp.Message)) string {
	c := capabilityFor(ev.Method)
	if c == "" || !hasCap(rc.caps, c) {
		why := "the agent did not declare the " + c + " capability"
		if c == "" {
			why = "not relayed by the gateway"
		}
		go reply(mcp.NewError(nil, mcp.Errorf(mcp.CodeMethodNotFound, "%s: %s", ev.Method, why)))
		return ""
	}
	gid := "pcr-" + randomID(12)
	g.relays.Store(gid, &relay{session: rc.sessionNonce(), reply: reply})
	if err := out.send(&mcp.Message{ID: mcp.Quote(gid), Method: ev.Method, Params: ev.Params}); err != nil {
		g.relays.Delete(gid)
		go reply(mcp.NewError(nil, mcp.Errorf(mcp.CodeInternalError, "%s: the agent cannot be reached on this request", ev.Method)))
		return ""
	}
	return gid
}

// finish turns the call's outcome into the agent's response: an upstream
// failure is answered here; the upstream's response (result or error) is
// left in c.upResp for response inspection (nil is returned), except a
// 2026-07-28 upstream's input_required, bridged for a legacy agent.
func (g *Gateway) finish(c *Call, u *upstream, pc *pendingCall, round int) (*mcp.Message, int) {
	if pc.err != nil {
		e, status := upstreamFailure(pc.upstream, pc.err, u.timeout())
		c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Fail, e.Message, status
		g.log.WarnContext(c.r.Context(), "upstream call failed", "upstream", pc.upstream, "method", c.msg.Method, "err", pc.err)
		return mcp.NewError(c.msg.ID, e), http.StatusOK
	}
	resp := pc.resp
	if resp.Error != nil {
		c.rec.Decision, c.rec.UpstreamStatus = Allow, fmt.Sprintf("error %d", resp.Error.Code)
		c.upResp = resp
		return nil, 0
	}
	res := resp.Result
	if !c.modern && bytes.Contains(res, []byte(mcp.ResultInputRequired)) && resultType(res) == mcp.ResultInputRequired {
		return g.bridgeInputRequired(c, u, res, round)
	}
	c.rec.UpstreamStatus = "ok"
	c.upResp = resp
	return nil, 0
}

func resultType(res json.RawMessage) string {
	var s string
	if v := mcp.GetField(res, "resultType"); v != nil {
		_ = json.Unmarshal(v, &s)
	}
	return s
}

// park answers a 2026-07-28 agent with input_required for the server
// request ev (and any others already queued), keeping the upstream call
// running until the agent retries.
func (g *Gateway) park(c *Call, pc *pendingCall, ev *mcp.Message) *mcp.Message {
	rc, m := &c.reqCtx, c.msg
	pk := &parkedCall{pc: pc, keys: map[string]json.RawMessage{}, agent: rc.p.Agent, persona: rc.persona, method: m.Method, name: c.rec.Tool}
	reqs := map[string]json.RawMessage{}
	add := func(ev *mcp.Message) {
		key := fmt.Sprintf("r%d", len(pk.keys)+1)
		pk.keys[key] = ev.ID
		params := ev.Params
		if params == nil {
			params = json.RawMessage("{}")
		}
		reqs[key], _ = json.Marshal(map[string]json.RawMessage{"method": mcp.Quote(ev.Method), "params": params})
	}
	add(ev)
	token := randomID(18)
	g.parked.Store(token, pk)
	pk.timer = time.AfterFunc(time.Until(deadline(pc.ctx)), func() {
		if _, ok := g.parked.LoadAndDelete(token); ok {
			pc.cancel()
		}
	})
	st, _ := json.Marshal(map[string]string{"t": token, "a": rc.p.Agent, "p": rc.persona, "m": m.Method, "n": c.rec.Tool})
	state := mrtrPrefix + g.sealer.sealBytes(st, mrtrAAD)
	ir, _ := json.Marshal(map[string]any{"resultType": mcp.ResultInputRequired, "inputRequests": reqs, "requestState": state})
	c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Allow, "upstream needs input from the agent", "input_required"
	return mcp.NewResult(m.ID, ir)
}

func deadline(ctx context.Context) time.Time {
	if t, ok := ctx.Deadline(); ok {
		return t
	}
	return time.Now().Add(time.Minute)
}

// resume finds the call an MRTR retry continues and hands the agent's
// answers to the upstream. nil: nothing to resume here.
func (g *Gateway) resume(c *Call, state string, params json.RawMessage) (*pendingCall, *mcp.Error) {
	rc, m := &c.reqCtx, c.msg
	// A state the gateway did not seal, or sealed for another agent or
	// call, is refused (SEP-2322: integrity verification); an authentic
	// one whose parked call is gone starts over.
	plain, err := g.sealer.openBytes(strings.TrimPrefix(state, mrtrPrefix), mrtrAAD)
	if err != nil {
		return nil, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: requestState failed integrity verification")
	}
	var st map[string]string
	if json.Unmarshal(plain, &st) != nil {
		return nil, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: requestState failed integrity verification")
	}
	if st["a"] != rc.p.Agent || st["p"] != rc.persona || st["m"] != m.Method || st["n"] != c.rec.Tool {
		return nil, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: requestState belongs to another agent or request")
	}
	// The answers are checked before the parked call is taken: a malformed
	// retry is refused and the call stays parked for a good one.
	var answers map[string]json.RawMessage
	if raw := mcp.GetField(params, "inputResponses"); raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &answers); err != nil {
			return nil, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: inputResponses must be an object mapping each inputRequests key to its result")
		}
	}
	v, ok := g.parked.LoadAndDelete(st["t"])
	if !ok {
		return nil, nil
	}
	pk := v.(*parkedCall)
	pk.timer.Stop()
	var wg sync.WaitGroup
	for key, upID := range pk.keys {
		ans := mcp.NewError(upID, mcp.Errorf(mcp.CodeInvalidParams, "the agent provided no input"))
		if a, ok := answers[key]; ok {
			ans = g.inspectAnswer(rc, pk.pc.upstream, mcp.NewResult(upID, a))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(pk.pc.ctx, 10*time.Second)
			defer cancel()
			if err := pk.pc.conn.Respond(ctx, ans); err != nil {
				g.log.Warn("could not deliver MRTR input upstream", "upstream", pk.pc.upstream, "err", err)
			}
		}()
	}
	wg.Wait()
	return pk.pc, nil
}

// bridgeInputRequired serves a 2026-07-28 upstream's input_required to a
// legacy agent: each input request becomes a server-to-client request on
// the agent's stream, then the call is retried with the answers.
func (g *Gateway) bridgeInputRequired(c *Call, u *upstream, res json.RawMessage, round int) (*mcp.Message, int) {
	rc, m, out := &c.reqCtx, c.msg, c.out
	var ir struct {
		InputRequests map[string]struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		} `json:"inputRequests"`
		RequestState *string `json:"requestState"`
	}
	if err := json.Unmarshal(res, &ir); err != nil || round >= maxBridging {
		c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Fail, "upstream input_required could not be bridged", "input_required"
		return mcp.NewError(m.ID, mcp.Errorf(mcp.CodeInternalError, "upstream %q needs input the gateway could not obtain", u.spec.Name)), http.StatusOK
	}
	answers := map[string]json.RawMessage{}
	ctx, cancel := context.WithTimeout(rc.r.Context(), u.timeout())
	defer cancel()
	for key, req := range ir.InputRequests {
		ch := make(chan *mcp.Message, 1)
		params, ok := g.inspectRelayed(rc, u.spec.Name, dlp.Response, req.Params)
		if !ok {
			continue // the upstream hears "no input" for it
		}
		ev := &mcp.Message{ID: mcp.Quote(key), Method: req.Method, Params: params}
		id := g.relayToAgent(rc, ev, out, func(a *mcp.Message) { ch <- a })
		select {
		case a := <-ch:
			if a = g.inspectAnswer(rc, u.spec.Name, a); a.Error == nil {
				answers[key] = a.Result
			}
		case <-ctx.Done():
		}
		if id != "" {
			g.relays.Delete(id)
		}
	}
	set := map[string]json.RawMessage{}
	set["inputResponses"], _ = json.Marshal(answers)
	if ir.RequestState != nil {
		set["requestState"] = mcp.Quote(*ir.RequestState)
	}
	params, _ := mcp.SetFields(m.Params, set)
	if head, _ := mcp.PeekParams(m.Params); head.HasName && c.rec.UpstreamTool != "" && m.Method != mcp.MethodResourcesRead {
		params, _ = mcp.SetField(params, "name", mcp.Quote(c.rec.UpstreamTool))
	}
	// The retry is built from the agent's own params: inspect them again.
	params, perr := g.inspectRetry(rc, &c.rec, m.Method, u.spec.Name, params)
	if perr != nil {
		return c.refuse(c.dlpRefusal(StageDLPRequest, perr))
	}
	return g.run(c, u, params, round+1)
}

// listen serves subscriptions/listen (2026-07-28).
func (g *Gateway) listen(w http.ResponseWriter, c *Call) {
	rc, m := &c.reqCtx, c.msg
	var p struct {
		Notifications struct {
			ToolsListChanged      bool     `json:"toolsListChanged"`
			PromptsListChanged    bool     `json:"promptsListChanged"`
			ResourcesListChanged  bool     `json:"resourcesListChanged"`
			ResourceSubscriptions []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, m.ID, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: notifications filter is malformed"))
		return
	}
	n := p.Notifications
	l := &listener{persona: rc.persona, subID: m.ID, ch: make(chan *mcp.Message, 64), uris: map[string]bool{},
		want: map[string]bool{mcp.NotifyToolsChanged: n.ToolsListChanged, mcp.NotifyPromptsChanged: n.PromptsListChanged, mcp.NotifyResourcesChanged: n.ResourcesListChanged}}
	honored := map[string]any{}
	if n.ToolsListChanged {
		honored["toolsListChanged"] = true
	}
	if n.PromptsListChanged {
		honored["promptsListChanged"] = true
	}
	if n.ResourcesListChanged {
		honored["resourcesListChanged"] = true
	}
	var uris []string
	for _, uri := range n.ResourceSubscriptions {
		if up := g.resourceRoute(rc, uri); up != "" {
			l.uris[uri] = true
			uris = append(uris, uri)
			go func() {
				if err := g.subscribeUpstream(g.ctx, rc.view, up, uri); err != nil {
					g.log.Debug("upstream resource subscription failed", "upstream", up, "uri", uri, "err", err)
				}
			}()
		}
	}
	if len(uris) > 0 {
		honored["resourceSubscriptions"] = uris
	}
	ack, _ := json.Marshal(map[string]any{"notifications": honored, "_meta": map[string]json.RawMessage{mcp.MetaSubscriptionID: m.ID}})
	c.governed = true
	c.rec.Decision, c.rec.Reason = Allow, "subscription opened"
	c.verdict(Verdict{Stage: StagePolicy, Outcome: Allow, Reason: "subscription opened"})
	g.audit(c)
	if c.auditErr != nil {
		writeJSON(w, http.StatusOK, withheld(c, m.ID, nil).AppendJSON(nil))
		return
	}
	g.stream(w, rc, l, mcp.NewNotification(mcp.NotifyAcknowledged, ack))
}

// subscribeUpstream makes the node's connection to an upstream receive
// updates of uri (resources/subscribe, or a subscriptions/listen stream on
// 2026-07-28). Updates reach the agents subscribed to uri whose role
// allows it.
func (g *Gateway) subscribeUpstream(ctx context.Context, v *View, upName, uri string) error {
	u := g.upstream(upName, v)
	if u == nil {
		return fmt.Errorf("upstream %q is not configured", upName)
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout())
	defer cancel()
	c, err := u.connect(ctx)
	if err != nil {
		return err
	}
	return c.SubscribeResource(ctx, uri)
}

// downgradeLinks bridges a tool result for a 2025-03-26 agent: content of
// type resource_link (2025-06-18) becomes a text item naming the resource,
// which that revision's clients understand.
func downgradeLinks(res json.RawMessage) json.RawMessage {
	var items []map[string]json.RawMessage
	if json.Unmarshal(mcp.GetField(res, "content"), &items) != nil {
		return res
	}
	changed := false
	for i, it := range items {
		if string(it["type"]) != `"resource_link"` {
			continue
		}
		var uri, name string
		_ = json.Unmarshal(it["uri"], &uri)
		_ = json.Unmarshal(it["name"], &name)
		text := "Resource " + uri
		if name != "" && name != uri {
			text = "Resource " + name + ": " + uri
		}
		items[i] = map[string]json.RawMessage{"type": mcp.Quote("text"), "text": mcp.Quote(text)}
		changed = true
	}
	if !changed {
		return res
	}
	content, _ := json.Marshal(items)
	out, err := mcp.SetField(res, "content", content)
	if err != nil {
		return res
	}
	return out
}
