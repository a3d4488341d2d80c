package audit

import (
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// Record is one gateway decision as the trail keeps it: one JSON object per
// governed request. It holds what was decided and why, never a value the
// request carried: DLP findings are counts by detector id.
type Record struct {
	// Seq numbers records from 1 across the whole trail, without gaps.
	Seq   uint64    `json:"seq,omitempty"` // 0 only outside the trail (RecordOf)
	Time  time.Time `json:"time"`          // when the request arrived
	Node  string    `json:"node,omitempty"`
	Agent string    `json:"agent"`
	User  string    `json:"user,omitempty"`
	// Kind is KindRequest (a governed agent request) or KindAdmin (an
	// admin API write, described by Admin). Records written before kinds
	// existed have none and are requests.
	Kind           string         `json:"kind,omitempty"`
	Persona        string         `json:"persona"`
	KeyID          string         `json:"keyId,omitempty"`
	ClientIP       string         `json:"clientIp,omitempty"`
	Session        string         `json:"session,omitempty"`
	Revision       string         `json:"revision,omitempty"`
	Method         string         `json:"method,omitempty"`
	Tool           string         `json:"tool"`
	Upstream       string         `json:"upstream,omitempty"`
	UpstreamTool   string         `json:"upstreamTool,omitempty"`
	Skill          string         `json:"skill,omitempty"`
	Decision       string         `json:"decision"`
	Reason         string         `json:"reason,omitempty"`
	Verdicts       []Verdict      `json:"verdicts,omitempty"`
	DLPRequest     string         `json:"dlpRequest,omitempty"`
	DLPResponse    string         `json:"dlpResponse,omitempty"`
	DLPFindings    map[string]int `json:"dlpFindings,omitempty"`
	ICAP           string         `json:"icap,omitempty"`
	LatencyMs      float64        `json:"latencyMs"`
	UpstreamStatus string         `json:"upstreamStatus,omitempty"`
	// ToolError: the tool answered with a result marked isError.
	ToolError bool `json:"toolError,omitempty"`
	// ArgsDigest and ResultDigest are keyed HMAC-SHA256 digests of a tool
	// call's arguments and result (gateway.Decision): equal values, equal
	// digests, under the cluster's digest key.
	ArgsDigest   string `json:"argsDigest,omitempty"`
	ResultDigest string `json:"resultDigest,omitempty"`
	TraceID      string `json:"traceId,omitempty"`
	// Admin describes an admin record (Kind KindAdmin).
	Admin *Admin `json:"admin,omitempty"`
}

// Record kinds.
const (
	KindRequest = "request"
	KindAdmin   = "admin"
)

// IsAdmin reports whether r is an admin record.
func (r *Record) IsAdmin() bool { return r.Kind == KindAdmin }

// Verdict is one pipeline stage's verdict.
type Verdict struct {
	Stage   string `json:"stage"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// RecordOf is a gateway decision as the trail records it, without the
// seq only the trail assigns: what exporters send (internal/export).
func RecordOf(d *gateway.Decision, node string) Record { return recordOf(d, node) }

// recordOf converts a gateway decision (Seq is set by the log).
func recordOf(d *gateway.Decision, node string) Record {
	r := Record{
		Time: d.Time.UTC(), Kind: KindRequest, Node: node, Agent: d.Agent, User: d.User, Persona: d.Persona, KeyID: d.KeyID,
		ClientIP: d.ClientIP, Session: d.Session, Revision: d.Revision, Method: d.Method,
		Tool: d.Tool, Upstream: d.Upstream, UpstreamTool: d.UpstreamTool, Skill: d.Skill,
		Decision: d.Decision, Reason: d.Reason, DLPRequest: d.DLPRequest, DLPResponse: d.DLPResponse,
		ICAP: d.ICAP, UpstreamStatus: d.UpstreamStatus, ToolError: d.ToolError,
		LatencyMs:  float64(d.Latency.Microseconds()) / 1e3,
		ArgsDigest: d.ArgsDigest, ResultDigest: d.ResultDigest, TraceID: d.TraceID,
	}
	if len(d.DLPFindings) > 0 {
		r.DLPFindings = make(map[string]int, len(d.DLPFindings))
		for k, v := range d.DLPFindings {
			r.DLPFindings[k] = v
		}
	}
	if len(d.Verdicts) > 0 {
		r.Verdicts = make([]Verdict, len(d.Verdicts))
		for i, v := range d.Verdicts {
			r.Verdicts[i] = Verdict{Stage: v.Stage, Outcome: v.Outcome, Reason: v.Reason}
		}
	}
	return r
}
