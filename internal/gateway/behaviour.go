package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Behaviour is stage 6 (internal/behavior implements it): it judges a call
// against what its agent and session did before, and learns from how each
// governed request ended. Config.Behaviour plugs it in; nil skips the stage.
type Behaviour interface {
	// Judge is called by the behaviour stage on the request's goroutine,
	// once per governed request that every earlier stage allowed. It must
	// be safe for concurrent use and must not wait on the raft leader; it
	// may block only to hold a call for a human approval, until ctx ends or
	// the hold is decided. A zero verdict lets the call pass.
	Judge(ctx context.Context, c *BehaviourCall) BehaviourVerdict
	// Observe is called once per governed request when its record is
	// complete (stage 10, before the answer leaves, on the request's
	// goroutine), with the final Decision and, for a tools/call the
	// upstream answered, the result the agent receives (nil otherwise;
	// failed reports a JSON-RPC error or isError). It must not block and
	// must not keep d or result.
	Observe(c *BehaviourCall, d *Decision, result json.RawMessage, failed bool)
}

// BehaviourCall is what the behaviour stage sees of a call.
type BehaviourCall struct {
	Agent, Persona string
	// Session is the legacy session nonce, or "k:"+key id for 2026-07-28
	// agents (which have no sessions).
	Session string
	Method  string
	// Upstream and Tool are the stable identity (tools/call; the prompt or
	// resource URI otherwise); Skill is the skill whose grant allowed it.
	Upstream, Tool, Skill string
	// Egress is the upstream's egress ("external", "internal" or "").
	Egress string
	Args   map[string]any
}

// BehaviourVerdict is the behaviour stage's answer. Deny refuses the call
// with Reason as the JSON-RPC error message (and the audit reason); an
// allowed call's Reason (a hold that was approved) goes into its verdict.
// EndSession also ends the agent's session on every node.
type BehaviourVerdict struct {
	Deny       bool
	Reason     string
	EndSession bool
}

// behaviourStage asks Config.Behaviour (stage 6).
type behaviourStage struct{ g *Gateway }

// CodeBehaviourRefused is the JSON-RPC error code of a call the behaviour
// stage refused (a server error in the implementation-defined range).
const CodeBehaviourRefused = -32040

func (s behaviourStage) Check(c *Call) Verdict {
	b := s.g.cfg.Behaviour
	if b == nil {
		return Verdict{}
	}
	bc := c.behaviourCall()
	v := b.Judge(c.r.Context(), &bc)
	if !v.Deny {
		return Verdict{Stage: StageBehaviour, Outcome: Allow, Reason: v.Reason}
	}
	if v.EndSession {
		s.g.endSession(c)
	}
	return c.denyError(StageBehaviour, v.Reason, mcp.Errorf(CodeBehaviourRefused, "%s", v.Reason), http.StatusOK)
}

func (c *Call) behaviourCall() BehaviourCall {
	bc := BehaviourCall{Agent: c.p.Agent, Persona: c.persona, Session: c.sessionNonce(),
		Method: c.Method(), Upstream: c.target.Upstream, Tool: c.target.Name, Skill: c.rec.Skill, Args: c.args}
	if bc.Session == "" && c.p.KeyID != "" {
		bc.Session = "k:" + c.p.KeyID
	}
	if c.view != nil {
		if u := c.view.Upstreams[c.target.Upstream]; u != nil {
			bc.Egress = u.Egress
		}
	}
	return bc
}

// observe hands the finished call to Config.Behaviour (from audit).
func (g *Gateway) observe(c *Call) {
	if g.cfg.Behaviour == nil || c.msg == nil || c.target.Upstream == "" {
		return
	}
	bc := c.behaviourCall()
	var res json.RawMessage
	failed := c.rec.Decision == Fail
	if up := c.upResp; up != nil && c.rec.Decision != Deny {
		if up.Error != nil {
			failed = true
		} else {
			res = up.Result
			failed = failed || c.rec.ToolError // audit set it from res
		}
	}
	g.cfg.Behaviour.Observe(&bc, &c.rec, res, failed)
}

// isErrorResult reports a tools/call result with "isError": true.
func isErrorResult(res json.RawMessage) bool {
	v := mcp.GetField(res, "isError")
	return len(v) == 4 && string(v) == "true"
}

// endSession ends the call's legacy session on every node, as a DELETE
// does (2026-07-28 agents have none: the behaviour stage refuses their key
// itself).
func (g *Gateway) endSession(c *Call) {
	st := c.sess
	if st == nil {
		return
	}
	until := time.Unix(st.Issued, 0).Add(g.cfg.SessionTTL)
	g.revoked.add(st.Nonce, until)
	if g.cfg.ShareSessions != nil {
		g.cfg.ShareSessions(&state.SessionEvents{Revoked: []state.RevokedSession{{Nonce: st.Nonce, Until: until}}})
	}
	g.hub.dropSession(st.Nonce)
	g.forgetSession(st.Nonce)
	g.log.Warn("mcp session ended by the behaviour stage", "agent", c.p.Agent, "persona", c.persona, "session", st.Nonce)
}
