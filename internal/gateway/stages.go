package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/guard"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// The stages govern runs, in order (stages 4–9 of the request path; 1–3
// run in handler.go before a target exists, 10 is audit). A new stage goes
// into this list at its place in the request path; guard and behaviour are
// the insertion points of rate limits and behaviour rules.
func (g *Gateway) stageList() []Stage {
	return []Stage{
		policyStage{},
		guardStage{g},
		behaviourStage{g},
		dlpRequestStage{g},
		upstreamStage{g},
		dlpResponseStage{g},
	}
}

var stageNames = []string{StagePolicy, StageGuard, StageBehaviour, StageDLPRequest, StageUpstream, StageDLPResponse}

// policyStage decides the call against the persona's role (default deny).
// Tools are decided with their decoded arguments; prompts and resources
// were already found only among those the role grants (resolve).
type policyStage struct{}

func (policyStage) Check(c *Call) Verdict {
	if c.msg.Method != mcp.MethodToolsCall {
		return Verdict{Stage: StagePolicy, Outcome: Allow}
	}
	dec := c.role.Allow(c.target.Upstream, c.target.Name, c.args)
	c.rec.Skill, c.pattern = dec.Skill, dec.Pattern
	if dec.Allow {
		return Verdict{Stage: StagePolicy, Outcome: Allow, Reason: dec.Skill}
	}
	reason := "denied by policy"
	if dec.Violation != nil {
		reason = dec.Violation.Error()
	}
	// A tool execution error, so the model sees why and can correct itself.
	text, _ := json.Marshal("Denied by Portcullis policy: " + reason)
	res := `{"content":[{"type":"text","text":` + string(text) + `}],"isError":true`
	if c.modern {
		res += `,"resultType":"complete"`
	}
	return c.deny(StagePolicy, reason, mcp.NewResult(c.msg.ID, json.RawMessage(res+"}")), http.StatusOK)
}

// guardStage applies rate limits, concurrency caps and circuit breakers
// (internal/guard, Config.Guard) under the view's limits. An admitted call
// holds a ticket that audit hands back with the call's outcome.
type guardStage struct{ g *Gateway }

// CodeRefused is the JSON-RPC error code of a call the guard refused (a
// rate limit, a concurrency cap, an open circuit); its data says when to
// retry: {"retryAfterMs": N, "limit": "rate-limit"|"concurrency"|"circuit-open"}.
const CodeRefused = -32029

func (s guardStage) Check(c *Call) Verdict {
	gd := s.g.cfg.Guard
	if gd == nil || c.view == nil {
		return Verdict{}
	}
	gc := guard.Call{Persona: c.persona, Agent: c.p.Agent, Upstream: c.target.Upstream}
	if c.msg.Method == mcp.MethodToolsCall {
		gc.Tool = c.target.Name
		if c.pattern != "" {
			if r := s.g.toolRisk(c.view, c.target.Upstream, c.target.Name); r.High() {
				reason := fmt.Sprintf("high-risk tool %s/%s (risk %d, %s: %s) is granted only by the pattern %q of skill %s; a high-risk tool needs a grant of its exact name",
					c.target.Upstream, c.target.Name, r.Score, r.Level, strings.Join(r.Reasons, "; "), c.pattern, c.rec.Skill)
				return c.denyError(StageGuard, reason, mcp.Errorf(CodeRefused, "%s", reason), http.StatusOK)
			}
		}
	}
	t, ref := gd.Admit(c.view.Limits, gc)
	if ref != nil {
		data, _ := json.Marshal(map[string]any{"retryAfterMs": ref.RetryAfter.Milliseconds(), "limit": ref.Kind})
		return c.denyError(StageGuard, ref.Reason, &mcp.Error{Code: CodeRefused, Message: ref.Reason, Data: data}, http.StatusOK)
	}
	c.ticket = t
	return Verdict{}
}

// toolRisk is the risk score of an upstream's tool from this node's cached
// tool list (zero, low, when the list is not loaded).
func (g *Gateway) toolRisk(v *View, upstream, tool string) guard.Risk {
	if u := g.upstream(upstream, v); u != nil {
		if l := u.lists[kindTools].Load(); l != nil {
			return g.riskOf(l, upstream, tool)
		}
	}
	return guard.Risk{}
}

// riskOf is tool's score in list l, with what the guard has seen it carry.
func (g *Gateway) riskOf(l *listing, upstream, tool string) guard.Risk {
	r := l.risk[tool]
	if g.cfg.Guard != nil {
		r = g.cfg.Guard.Adjust(upstream+"/"+tool, r)
	}
	return r
}

// guardOutcome is how a call that the guard admitted ended, for its
// breakers: the upstream stage's status says whether the upstream was
// reached and answered.
func guardOutcome(d *Decision) guard.Outcome {
	st := d.UpstreamStatus
	switch {
	case st == "ok":
		return guard.Succeeded
	case st == "timeout" || st == "unavailable" || strings.HasPrefix(st, "http 5"):
		return guard.FailedUpstream
	case strings.HasPrefix(st, "error ") || strings.HasPrefix(st, "http "):
		return guard.FailedCall
	}
	return guard.NotCalled
}

// dlpRequestStage inspects the arguments on their way upstream (and hands
// them to ICAP REQMOD when configured).
type dlpRequestStage struct{ g *Gateway }

func (s dlpRequestStage) Check(c *Call) Verdict {
	if c.target.field == "" {
		return Verdict{}
	}
	params, perr := s.g.inspectRequest(&c.reqCtx, &c.rec, c.msg.Method, c.target.Upstream, c.target.field, c.params, c.target.headers)
	if perr != nil {
		return c.dlpRefusal(StageDLPRequest, perr)
	}
	c.params = params
	return Verdict{Stage: StageDLPRequest, Outcome: dlpOutcome(c.rec.DLPRequest)}
}

// dlpRefusal answers a request or result that DLP or ICAP refused.
func (c *Call) dlpRefusal(stage string, e *mcp.Error) Verdict {
	reason := c.rec.Reason
	if reason == "" {
		reason = e.Message
	}
	return c.denyError(stage, reason, e, http.StatusOK)
}

func dlpOutcome(d string) string {
	if d == Modify {
		return Modify
	}
	return Allow
}

// upstreamStage calls the upstream (forward.go: streams, relays, MRTR,
// bridging) and leaves its answer for dlpResponseStage.
type upstreamStage struct{ g *Gateway }

func (s upstreamStage) Check(c *Call) Verdict {
	switch c.msg.Method {
	case mcp.MethodResourcesUnsub:
		// The node's upstream subscription is shared; only this session
		// stops hearing about the resource.
		s.g.hub.subscribe(c.sess.Nonce, c.target.Name, false)
		c.rec.Decision = Allow
		c.resp, c.status = mcp.NewResult(c.msg.ID, json.RawMessage("{}")), http.StatusOK
		return Verdict{Stage: StageUpstream, Outcome: Allow, Reason: "local"}
	case mcp.MethodResourcesSubscribe:
		if err := s.g.subscribeUpstream(c.r.Context(), c.view, c.target.Upstream, c.target.Name); err != nil {
			e, status := upstreamFailure(c.target.Upstream, err, 0)
			var rpcErr *mcp.Error
			if errors.As(err, &rpcErr) {
				e, status = rpcErr, fmt.Sprintf("error %d", rpcErr.Code)
			}
			s.g.metrics.upstreamError(c.target.Upstream, status)
			return c.fail(StageUpstream, e.Message, status, e)
		}
		s.g.hub.subscribe(c.sess.Nonce, c.target.Name, true)
		c.rec.Decision, c.rec.UpstreamStatus = Allow, "ok"
		c.resp, c.status = mcp.NewResult(c.msg.ID, json.RawMessage("{}")), http.StatusOK
		return Verdict{Stage: StageUpstream, Outcome: Allow, Reason: "ok"}
	}
	resp, status := s.g.forward(c)
	if resp != nil {
		c.resp, c.status = resp, status
	}
	switch c.rec.Decision {
	case Fail:
		s.g.metrics.upstreamError(c.target.Upstream, c.rec.UpstreamStatus)
		return Verdict{Stage: StageUpstream, Outcome: Fail, Reason: c.rec.Reason}
	case Deny:
		return Verdict{} // refused inside the call (its verdict is recorded)
	}
	return Verdict{Stage: StageUpstream, Outcome: Allow, Reason: c.rec.UpstreamStatus}
}

// dlpResponseStage inspects the upstream's answer (result or error) on its
// way to the agent (and hands results to ICAP RESPMOD when configured).
// Notifications and server-to-client requests during a call are inspected
// as they stream, inside the upstream stage.
type dlpResponseStage struct{ g *Gateway }

func (s dlpResponseStage) Check(c *Call) Verdict {
	up := c.upResp
	if up == nil {
		return Verdict{}
	}
	if up.Error != nil {
		c.rec.Decision = Allow
		e := *s.g.inspectError(&c.reqCtx, &c.rec, c.target.Upstream, up.Error)
		if c.modern && e.Code == mcp.CodeResourceNotFound {
			e.Code = mcp.CodeInvalidParams
		}
		c.resp, c.status = mcp.NewError(c.msg.ID, &e), http.StatusOK
		return Verdict{Stage: StageDLPResponse, Outcome: dlpOutcome(c.rec.DLPResponse)}
	}
	res, derr := s.g.inspectResult(&c.reqCtx, &c.rec, c.msg.Method, c.target.Upstream, up.Result)
	if derr != nil {
		return c.dlpRefusal(StageDLPResponse, derr)
	}
	up.Result = res
	return Verdict{Stage: StageDLPResponse, Outcome: dlpOutcome(c.rec.DLPResponse)}
}
