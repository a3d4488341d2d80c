package gateway

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Data-loss prevention, stages 7 and 9 of the request path: the arguments of
// tools/call, prompts/get and completion/complete are inspected on their way
// to the upstream, and every result (and notification) on its way back, by
// the persona's DLP engine. Engines are compiled once per control-state view
// and share one scanner, one tokenizer and one taint tracker, so a
// policy change never forgets what a session has already received.

// DLPBlockedCode is the JSON-RPC error code of a request or result refused
// by data-loss prevention or by the ICAP service. (Not -32003: the
// official Go SDK reads that code as "client is closing" and reports a
// closed connection instead of the reason.)
const DLPBlockedCode = -32040

// dlpStage is the gateway's DLP state that outlives views.
type dlpStage struct {
	log     *slog.Logger
	scanner *dlp.Scanner
	tok     *dlp.Tokenizer // tok_… tokens, or FF1 for rules with format ff1
	taint   *dlp.Taint
	icap    *ICAPConfig
	set     atomic.Pointer[dlpSet]
}

// dlpSet is the DLP policy of one view, compiled.
type dlpSet struct {
	view     *View
	personas map[string]*personaDLP
	base     *personaDLP // personas without rules: credentials in arguments are still redacted
	// taint is set when some upstream of the view has an environment or an
	// egress, the only case in which a flow can be refused.
	taint bool
}

type personaDLP struct {
	engine   *dlp.Engine
	rules    []state.DLPRule
	response bool // some rule applies to responses
}

func newDLPStage(cfg *Config) (*dlpStage, error) {
	key := cfg.DLPKey
	if key == nil {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("dlp key: %w", err)
		}
		h, err := dlp.NewHMAC(k)
		if err != nil {
			return nil, err
		}
		key = h
		cfg.Logger.Warn("no DLP key configured (no HSM): tokens and taint fingerprints use a random per-process key, so tokens differ between nodes and restarts")
	}
	sc, err := dlp.New(dlp.Config{})
	if err != nil {
		return nil, fmt.Errorf("dlp scanner: %w", err)
	}
	tok, err := dlp.NewTokenizer(dlp.TokenizerConfig{MAC: key})
	if err != nil {
		return nil, fmt.Errorf("dlp tokenizer: %w", err)
	}
	tc := dlp.TaintConfig{MAC: key}
	if share := cfg.ShareSessions; share != nil {
		ttl := cfg.SessionTTL
		tc.OnRecord = func(session string, fp [16]byte, from dlp.Upstream, detector string) {
			share(&state.SessionEvents{Taints: []state.TaintRecord{{Session: session, Fingerprint: fp[:], Upstream: from.Name,
				Environment: string(from.Environment), Detector: detector, Until: time.Now().Add(ttl)}}})
		}
	}
	taint, err := dlp.NewTaint(tc)
	if err != nil {
		return nil, fmt.Errorf("dlp taint: %w", err)
	}
	return &dlpStage{log: cfg.Logger.With("component", "dlp"), scanner: sc, tok: tok, taint: taint, icap: cfg.ICAP}, nil
}

// compiled returns the DLP policy of view v, compiling it on first use.
func (s *dlpStage) compiled(v *View) *dlpSet {
	if cur := s.set.Load(); cur != nil && cur.view == v {
		return cur
	}
	ds := &dlpSet{view: v, personas: map[string]*personaDLP{}}
	for _, u := range v.Upstreams {
		if u.Environment != "" || u.Egress != "" {
			ds.taint = true
		}
	}
	var err error
	if ds.base, err = s.compile(nil); err != nil {
		// An empty policy always compiles; should it not, fail closed.
		s.log.Error("the baseline DLP policy does not compile; calls are refused", "err", err)
		ds.base = &personaDLP{}
	}
	names := make([]string, 0, len(v.DLP))
	for name := range v.DLP {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rules := v.DLP[name]
		if len(rules) == 0 {
			continue
		}
		p, err := s.compile(rules)
		if err != nil {
			// Validation keeps bad rules out of the state; if one slips
			// through, the persona fails closed rather than unprotected.
			s.log.Error("persona DLP policy does not compile; its calls are refused", "persona", name, "err", err)
			p = &personaDLP{rules: rules}
		}
		ds.personas[name] = p
	}
	if cur := s.set.Load(); cur == nil || cur.view == nil || v.Index >= cur.view.Index {
		s.set.Store(ds)
	}
	return ds
}

// compile builds the engine of one persona's rules.
func (s *dlpStage) compile(rules []state.DLPRule) (*personaDLP, error) {
	pol, err := dlp.PolicyFromSpec(rules)
	if err != nil {
		return nil, err
	}
	e, err := dlp.NewEngine(dlp.EngineConfig{Policy: pol, Scanner: s.scanner, Tokenizer: s.tok, Taint: s.taint, Logger: s.log})
	if err != nil {
		return nil, err
	}
	p := &personaDLP{engine: e, rules: rules}
	for _, r := range pol.Rules {
		if r.Direction != "request" { // "" is both
			p.response = true
		}
	}
	return p, nil
}

// dlpFor returns the persona's compiled policy under the request's view.
func (g *Gateway) dlpFor(rc *reqCtx) (*dlpSet, *personaDLP) {
	ds := g.dlp.compiled(rc.view)
	if p, ok := ds.personas[rc.persona]; ok {
		return ds, p
	}
	return ds, ds.base
}

// flow identifies the session and upstream for taint tracking. A
// 2026-07-28 agent has no session; its flows are keyed by agent and key.
func (g *Gateway) flow(rc *reqCtx, ds *dlpSet, upstream string) dlp.Flow {
	if !ds.taint {
		return dlp.Flow{}
	}
	f := dlp.Flow{Upstream: dlp.Upstream{Name: upstream}}
	if u := rc.view.Upstreams[upstream]; u != nil {
		f.Upstream.Environment, f.Upstream.Egress = dlp.Environment(u.Environment), dlp.Egress(u.Egress)
	}
	if rc.sess != nil {
		f.Session = "s\x00" + rc.sess.Nonce
	} else {
		f.Session = "k\x00" + rc.persona + "\x00" + rc.p.Agent + "\x00" + rc.p.KeyID
	}
	return f
}

// ImportSessions applies what another node's gateway shared (see
// Config.ShareSessions): ended sessions are refused here too, and their
// streams on this node closed; taint fingerprints join this node's tracker,
// so the session's next call here is judged with them. Safe from any
// goroutine; it does not block on the network.
func (g *Gateway) ImportSessions(ev *state.SessionEvents) {
	for _, r := range ev.Revoked {
		g.revoked.add(r.Nonce, r.Until)
		g.hub.dropSession(r.Nonce)
		g.forgetSession(r.Nonce)
	}
	for _, r := range ev.Taints {
		var fp [16]byte
		if len(r.Fingerprint) != len(fp) || time.Now().After(r.Until) {
			continue
		}
		copy(fp[:], r.Fingerprint)
		g.dlp.taint.Import(r.Session, fp, dlp.Upstream{Name: r.Upstream, Environment: dlp.Environment(r.Environment)}, r.Detector)
	}
}

// forgetSession drops the taint of a legacy session that ended.
func (g *Gateway) forgetSession(nonce string) { g.dlp.taint.Forget("s\x00" + nonce) }

// inspectRequest applies DLP (and ICAP REQMOD) to params[field] of a
// request on its way to upstream up. It returns the params to send, or the
// error that refuses the request (d then says why). hdrs are the tool's
// x-mcp-header parameters: when the arguments change, the Mcp-Param-*
// headers sent upstream are derived again, so that a redacted value does
// not travel on in a header.
func (g *Gateway) inspectRequest(rc *reqCtx, d *Decision, method, up, field string, params json.RawMessage, hdrs []mcp.ParamHeader) (json.RawMessage, *mcp.Error) {
	out, e := g.inspectArguments(rc, d, method, up, field, params)
	if e != nil || len(hdrs) == 0 || mcp.GetField(out, field) == nil || string(mcp.GetField(out, field)) == string(mcp.GetField(params, field)) {
		return out, e
	}
	var args map[string]any
	if err := json.Unmarshal(mcp.GetField(out, field), &args); err != nil {
		return nil, mcp.Errorf(mcp.CodeInternalError, "dlp: the rewritten arguments are not an object")
	}
	h, err := mcp.ParamHeaderValues(hdrs, args)
	if err != nil {
		return nil, mcp.Errorf(mcp.CodeInternalError, "dlp: the rewritten arguments do not fit the tool's parameter headers")
	}
	rc.upHdr = h
	return out, nil
}

// inspectRetry inspects the arguments of a call retried by the gateway
// itself (a 2026-07-28 upstream's input_required bridged for a legacy
// agent), built again from the agent's params.
func (g *Gateway) inspectRetry(rc *reqCtx, d *Decision, method, up string, params json.RawMessage) (json.RawMessage, *mcp.Error) {
	field := "arguments"
	if method == mcp.MethodComplete {
		field = "argument"
	}
	return g.inspectArguments(rc, d, method, up, field, params)
}

func (g *Gateway) inspectArguments(rc *reqCtx, d *Decision, method, up, field string, params json.RawMessage) (json.RawMessage, *mcp.Error) {
	ds, p := g.dlpFor(rc)
	if p.engine == nil {
		d.DLPRequest = dlp.Block.String()
		d.Reason = "the persona's DLP policy does not compile"
		return nil, blockedError("request", "cannot be inspected: the persona's DLP policy is invalid; ask an administrator", nil, nil)
	}
	doc := mcp.GetField(params, field)
	if len(doc) == 0 || string(doc) == "null" {
		return params, nil
	}
	out, v, err := p.engine.ApplyFlow(g.flow(rc, ds, up), dlp.Request, doc)
	if err != nil {
		d.DLPRequest, d.Reason = dlp.Block.String(), "dlp: arguments are not valid JSON"
		return nil, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: %s is not valid JSON", field)
	}
	d.DLPRequest = v.Decision.String()
	d.addFindings(v.Findings)
	g.metrics.findings(v.Findings, dlp.Request)
	switch v.Decision {
	case dlp.Block:
		reasons, dets, rules := explain(v, p.rules, dlp.Request)
		d.Reason = "dlp: " + reasons
		return nil, blockedError("request", reasons, dets, rules)
	case dlp.Modify:
		doc = out
		if params, err = mcp.SetField(params, field, out); err != nil {
			return nil, mcp.Errorf(mcp.CodeInternalError, "dlp: could not rewrite the request")
		}
	}
	if ic := g.dlp.icap; ic != nil && ic.ReqMod {
		mod, e := g.icapRequest(rc, d, method, up, doc)
		if e != nil {
			return nil, e
		}
		if mod != nil {
			if params, err = mcp.SetField(params, field, mod); err != nil {
				return nil, mcp.Errorf(mcp.CodeInternalError, "icap: could not rewrite the request")
			}
		}
	}
	return params, nil
}

// inspectResult applies DLP (and ICAP RESPMOD) to a result coming back
// from upstream up. It returns the result for the agent, or the error that
// replaces it.
func (g *Gateway) inspectResult(rc *reqCtx, d *Decision, method, up string, res json.RawMessage) (json.RawMessage, *mcp.Error) {
	ds, p := g.dlpFor(rc)
	if p.engine == nil {
		d.DLPResponse = dlp.Block.String()
		return nil, blockedError("result", "cannot be inspected: the persona's DLP policy is invalid; ask an administrator", nil, nil)
	}
	if p.response || ds.taint {
		out, v, err := p.engine.ApplyFlow(g.flow(rc, ds, up), dlp.Response, res)
		if err != nil {
			// The upstream's result is not JSON the gateway can inspect:
			// never pass uninspected data.
			d.DLPResponse = dlp.Block.String()
			return nil, mcp.Errorf(mcp.CodeInternalError, "upstream %q returned a result the gateway cannot inspect", up)
		}
		d.DLPResponse = v.Decision.String()
		d.addFindings(v.Findings)
		g.metrics.findings(v.Findings, dlp.Response)
		switch v.Decision {
		case dlp.Block:
			reasons, dets, rules := explain(v, p.rules, dlp.Response)
			d.Reason = "dlp: " + reasons
			return nil, blockedError("result", reasons, dets, rules)
		case dlp.Modify:
			res = out
		}
	}
	if ic := g.dlp.icap; ic != nil && ic.RespMod {
		mod, e := g.icapResponse(rc, d, method, up, res)
		if e != nil {
			return nil, e
		}
		if mod != nil {
			res = mod
		}
	}
	return res, nil
}

// inspectNotification applies the persona's response rules to a
// notification relayed during a call (progress messages, log data). It
// returns nil when the notification must be dropped.
func (g *Gateway) inspectNotification(rc *reqCtx, up string, ev *mcp.Message) *mcp.Message {
	ds, p := g.dlpFor(rc)
	if p.engine == nil {
		return nil
	}
	if len(ev.Params) == 0 || (!p.response && !ds.taint) {
		return ev
	}
	out, v, err := p.engine.ApplyFlow(g.flow(rc, ds, up), dlp.Response, ev.Params)
	switch {
	case err != nil || v.Decision == dlp.Block:
		g.dlp.log.Info("notification dropped by dlp", "method", ev.Method, "upstream", up, "persona", rc.persona)
		return nil
	case v.Decision == dlp.Modify:
		return &mcp.Message{Method: ev.Method, Params: out}
	}
	return ev
}

// inspectRelayed applies DLP to a document relayed during a call: the
// params of a server-to-client request (sampling, elicitation, roots;
// Response: upstream → agent) or the agent's answer to one (Request). It
// reports false when the document must not pass.
func (g *Gateway) inspectRelayed(rc *reqCtx, up string, dir dlp.Direction, doc json.RawMessage) (json.RawMessage, bool) {
	ds, p := g.dlpFor(rc)
	if p.engine == nil {
		return nil, false
	}
	if len(doc) == 0 || (dir == dlp.Response && !p.response && !ds.taint) {
		return doc, true
	}
	out, v, err := p.engine.ApplyFlow(g.flow(rc, ds, up), dir, doc)
	switch {
	case err != nil || v.Decision == dlp.Block:
		g.dlp.log.Info("relayed message refused by dlp", "direction", dir.String(), "upstream", up, "persona", rc.persona)
		return nil, false
	case v.Decision == dlp.Modify:
		return out, true
	}
	return doc, true
}

// inspectServerRequest returns the server-to-client request ev as the
// agent may see it, or nil (and refuses it toward the upstream) when DLP
// blocks it.
func (g *Gateway) inspectServerRequest(rc *reqCtx, pc *pendingCall, ev *mcp.Message) *mcp.Message {
	params, ok := g.inspectRelayed(rc, pc.upstream, dlp.Response, ev.Params)
	if !ok {
		g.refuseServerRequest(pc, ev, "blocked by data-loss prevention")
		return nil
	}
	return &mcp.Message{ID: ev.ID, Method: ev.Method, Params: params}
}

// inspectAnswer returns the agent's answer to a server-to-client request as
// the upstream may see it: rewritten, or an error when DLP blocks it.
func (g *Gateway) inspectAnswer(rc *reqCtx, up string, ans *mcp.Message) *mcp.Message {
	if ans.Result == nil {
		return ans
	}
	res, ok := g.inspectRelayed(rc, up, dlp.Request, ans.Result)
	if !ok {
		return mcp.NewError(ans.ID, &mcp.Error{Code: DLPBlockedCode, Message: "the answer was blocked by data-loss prevention"})
	}
	return mcp.NewResult(ans.ID, res)
}

// inspectError applies the persona's response rules to an upstream's
// JSON-RPC error (its message and data can carry values too). A blocked
// error is replaced by one that says so.
func (g *Gateway) inspectError(rc *reqCtx, d *Decision, up string, e *mcp.Error) *mcp.Error {
	ds, p := g.dlpFor(rc)
	if p.engine == nil || (!p.response && !ds.taint) {
		return e
	}
	out := *e
	msg, v, err := p.engine.ApplyText(dlp.Response, []byte(e.Message))
	if err != nil || v.Decision == dlp.Block {
		d.DLPResponse = dlp.Block.String()
		return &mcp.Error{Code: e.Code, Message: "upstream error withheld by data-loss prevention"}
	}
	d.addFindings(v.Findings)
	g.metrics.findings(v.Findings, dlp.Response)
	out.Message = string(msg)
	if len(e.Data) > 0 {
		data, dv, err := p.engine.ApplyFlow(g.flow(rc, ds, up), dlp.Response, e.Data)
		if err != nil || dv.Decision == dlp.Block {
			out.Data = nil
		} else {
			out.Data = data
			d.addFindings(dv.Findings)
			g.metrics.findings(dv.Findings, dlp.Response)
			v.Decision = max(v.Decision, dv.Decision)
		}
	}
	d.DLPResponse = v.Decision.String()
	return &out
}

// blockedError is the JSON-RPC error of a refused request or result: it
// names the detectors and rules, never the values.
func blockedError(what, reasons string, detectors, rules []string) *mcp.Error {
	data, _ := json.Marshal(map[string]any{"detectors": detectors, "rules": rules})
	return &mcp.Error{Code: DLPBlockedCode, Message: "blocked by data-loss prevention: the " + what + " " + reasons, Data: data}
}

// explain turns a blocking verdict into a reason (detector ids, JSON paths
// and flow errors; never values), the detector ids and the persona rules
// ("spec.dlp[i]") that blocked.
func explain(v dlp.Verdict, rules []state.DLPRule, dir dlp.Direction) (string, []string, []string) {
	var parts, dets, names []string
	for _, r := range v.Reasons {
		if strings.HasPrefix(r, string(dlp.ActionBlock)+" ") || strings.HasPrefix(r, "dlp: ") {
			parts = append(parts, strings.TrimPrefix(r, "dlp: "))
		}
	}
	for _, f := range v.Findings {
		rule := blockingRule(rules, f, dir)
		if rule < 0 && !slices.ContainsFunc(parts, func(p string) bool { return strings.HasPrefix(p, f.Detector+" value") }) {
			continue
		}
		if !slices.Contains(dets, f.Detector) {
			dets = append(dets, f.Detector)
		}
		if rule >= 0 {
			if n := fmt.Sprintf("spec.dlp[%d]", rule); !slices.Contains(names, n) {
				names = append(names, n)
			}
		} else if !slices.Contains(names, "data-flow") {
			names = append(names, "data-flow")
		}
	}
	reason := "contains " + strings.Join(parts, "; ")
	if len(names) > 0 {
		reason += " (rule " + strings.Join(names, ", ") + ")"
	}
	return reason, dets, names
}

// blockingRule returns the index of the persona rule that blocks finding f
// in direction dir, or -1.
func blockingRule(rules []state.DLPRule, f dlp.Finding, dir dlp.Direction) int {
	for i, r := range rules {
		if r.Action != string(dlp.ActionBlock) || (r.Direction != "" && r.Direction != "both" && r.Direction != dir.String()) {
			continue
		}
		if slices.Contains(r.Detectors, f.Detector) || slices.Contains(r.Categories, string(f.Category)) {
			return i
		}
	}
	return -1
}

func (d *Decision) addFindings(fs []dlp.Finding) {
	if len(fs) == 0 {
		return
	}
	if d.DLPFindings == nil {
		d.DLPFindings = make(map[string]int, len(fs))
	}
	for _, f := range fs {
		d.DLPFindings[f.Detector]++
	}
}
