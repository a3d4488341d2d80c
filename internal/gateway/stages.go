package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// The stages govern runs, in order (stages 4–9 of the request path; 1–3
// run in handler.go before a target exists, 10 is audit). A new stage goes
// into this list at its place in the request path; guard and behaviour are
// the insertion points of rate limits and behaviour rules.
func (g *Gateway) stageList() []Stage {
	return []Stage{
		policyStage{},
		guardStage{},
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
	c.rec.Skill = dec.Skill
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

// guardStage is the insertion point of rate limits, circuit breakers and
// tool-risk checks (internal/guard): it has nothing to say yet.
type guardStage struct{}

func (guardStage) Check(*Call) Verdict { return Verdict{} }

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
