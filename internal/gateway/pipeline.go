package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/guard"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// Stage names, in the order of the request path (DESIGN.md). Each names the
// Verdict a stage leaves on a Call and the "stage" label of the metrics.
const (
	StageAuthn       = "authn"
	StageNetwork     = "network"
	StageProtocol    = "protocol"
	StagePolicy      = "policy"
	StageGuard       = "guard"
	StageBehaviour   = "behaviour"
	StageDLPRequest  = "dlp-request"
	StageUpstream    = "upstream"
	StageDLPResponse = "dlp-response"
	StageAudit       = "audit"
)

// Verdict outcomes beyond Allow, Deny and Fail.
const (
	Modify = "modify" // allowed, altered (DLP redacted, masked or tokenized)
)

// Verdict is what one stage decided about a call, with the reason a
// person reads in the audit trail. It never holds arguments or results.
type Verdict struct {
	Stage   string // Stage* constant
	Outcome string // Allow, Deny, Fail or Modify
	Reason  string // "" when the stage has nothing to add
	// At is when the verdict was given, since the request arrived (set by
	// the Call; exporters draw stage spans from it).
	At time.Duration
}

// Stage is one step of govern, the ordered checks every targeted MCP
// request passes after resolve (see the package documentation for the
// order and where a new stage goes).
//
// Contract: Check is called on the request's goroutine, once per governed
// request, in the order of the stage list, and only while every earlier
// stage allowed the call. It must be safe for concurrent use (one Stage
// value serves every request), must read only immutable snapshots (the
// Call's View, compiled policy), must never wait on the raft leader, and
// should not block: everything it waits for adds to the agent's latency.
// Only the upstream stage waits on the network. A stage refuses by
// returning a Deny or Fail verdict after answering the call (Call.deny,
// Call.fail); a zero Verdict means the stage had nothing to say (it is not
// recorded).
type Stage interface {
	Check(c *Call) Verdict
}

// Call is one agent request as it moves through the pipeline: the
// principal, persona, role and view it was judged under, the revision it
// speaks, the message, the target resolve found, the params that go
// upstream, the verdicts so far and the record written once at the end.
// It lives on the request's goroutine; stages read and fill it.
type Call struct {
	reqCtx
	msg  *mcp.Message
	head mcp.Head
	out  sender

	target Target
	params json.RawMessage // what goes upstream (rewritten, inspected)
	args   map[string]any  // tools/call: the decoded arguments

	// resp and status are the agent's answer once a stage gave one; upResp
	// is the upstream's answer awaiting response inspection.
	resp   *mcp.Message
	status int
	upResp *mcp.Message

	rec      Decision
	ticket   *guard.Ticket // the guard admitted it; audit hands it back
	pattern  string        // the "*" pattern of the grant that allowed it
	verdicts [maxVerdicts]Verdict
	nv       int
	governed bool // write a record even when everything allowed the call
	written  bool
	auditErr error // a DurableSink could not make the record durable
}

// maxVerdicts bounds the verdicts a record holds (a bridged MRTR retry
// inspects again; the rest are dropped, never the refusal: see verdict).
const maxVerdicts = 12

// Target is the upstream identity an agent's request resolved to.
type Target struct {
	Upstream string // upstream name
	Name     string // the upstream's own tool or prompt name, or the resource URI
	Exposed  string // the name (or URI) the agent used
	// field is the member of params DLP inspects on the way up
	// ("arguments", "argument"; "" for none); headers are a tool's
	// x-mcp-header parameters.
	field   string
	headers []mcp.ParamHeader
}

// Principal is the authenticated caller.
func (c *Call) Principal() authn.Principal { return c.p }

// Persona is the persona whose endpoint was called.
func (c *Call) Persona() string { return c.persona }

// Method is the MCP method ("" before the body was parsed).
func (c *Call) Method() string {
	if c.msg == nil {
		return ""
	}
	return c.msg.Method
}

// Revision is the MCP revision the agent speaks ("" before it is known).
func (c *Call) Revision() string { return c.rev }

// Target is what the request resolved to (zero before resolve).
func (c *Call) Target() Target { return c.target }

// Verdicts are the verdicts so far, in stage order.
func (c *Call) Verdicts() []Verdict { return c.verdicts[:c.nv] }

// verdict appends v to the call's record. A refusal always finds room.
func (c *Call) verdict(v Verdict) {
	if c.nv == len(c.verdicts) {
		if v.Outcome == Allow || v.Outcome == Modify {
			return
		}
		c.nv--
	}
	if !c.start.IsZero() {
		v.At = time.Since(c.start)
	}
	c.verdicts[c.nv] = v
	c.nv++
}

// deny refuses the call at stage with reason and answers resp.
func (c *Call) deny(stage, reason string, resp *mcp.Message, status int) Verdict {
	c.governed = true
	c.rec.Decision, c.rec.Reason = Deny, reason
	c.resp, c.status = resp, status
	v := Verdict{Stage: stage, Outcome: Deny, Reason: reason}
	return v
}

// denyError refuses the call with a JSON-RPC error.
func (c *Call) denyError(stage, reason string, e *mcp.Error, status int) Verdict {
	return c.deny(stage, reason, mcp.NewError(c.msg.ID, e), status)
}

// fail ends an allowed call that could not be served (the upstream, its
// list or its credential failed).
func (c *Call) fail(stage, reason, upstreamStatus string, e *mcp.Error) Verdict {
	c.governed = true
	c.rec.Decision, c.rec.Reason, c.rec.UpstreamStatus = Fail, reason, upstreamStatus
	c.resp, c.status = mcp.NewError(c.msg.ID, e), http.StatusOK
	return Verdict{Stage: stage, Outcome: Fail, Reason: reason}
}

// refuse answers a request that a check outside govern refused (resolve,
// dispatch's protocol checks, a bridged retry) and records the verdict.
func (c *Call) refuse(v Verdict) (*mcp.Message, int) {
	c.verdict(v)
	return c.resp, c.status
}

// newCall starts the record of one agent HTTP request.
func newCall(r *http.Request, persona string, start time.Time) *Call {
	c := &Call{}
	c.r, c.persona, c.start = r, persona, start
	return c
}

// child is the call of one message of a 2025-03-26 batch: the request's
// principal, session and revision, a record of its own.
func (c *Call) child() *Call {
	cc := &Call{reqCtx: c.reqCtx}
	cc.upHdr = nil
	return cc
}

// govern runs the stage list on a resolved call and returns the agent's
// answer. The record is written by audit, once, when the request ends.
func (g *Gateway) govern(c *Call) (*mcp.Message, int) {
	c.governed = true
	for i, s := range g.stages {
		t0 := time.Now()
		v := s.Check(c)
		g.metrics.stageDone(i, t0)
		if v.Stage != "" {
			c.verdict(v)
		}
		if c.resp != nil || v.Outcome == Deny || v.Outcome == Fail {
			break
		}
	}
	if c.resp == nil {
		return c.respond()
	}
	return c.resp, c.status
}

// respond shapes an allowed upstream result for the agent's revision.
func (c *Call) respond() (*mcp.Message, int) {
	if c.upResp == nil || c.upResp.Result == nil {
		return mcp.NewError(c.msg.ID, mcp.Errorf(mcp.CodeInternalError, "the gateway produced no answer")), http.StatusOK
	}
	res := c.upResp.Result
	if c.modern {
		res = modernResult(res, c.msg.Method == mcp.MethodResourcesRead)
	}
	if c.rev < mcp.Rev20250618 && c.msg.Method == mcp.MethodToolsCall && bytes.Contains(res, []byte(`"resource_link"`)) {
		res = downgradeLinks(res)
	}
	if c.rec.Decision == "" {
		c.rec.Decision = Allow
	}
	return mcp.NewResult(c.msg.ID, res), http.StatusOK
}
