package gateway

import (
	"log/slog"
	"time"
)

// Decision outcomes.
const (
	Allow = "allow"
	Deny  = "deny"
	Fail  = "error" // allowed, but the upstream failed or timed out
)

// Decision is the one record written per governed request: who asked for
// what, what the gateway decided and why, and how the upstream answered.
// It never holds arguments, results or credentials: only their keyed
// digests.
type Decision struct {
	Time         time.Time
	Agent        string
	Persona      string
	KeyID        string
	ClientIP     string
	Session      string // session nonce ("" for 2026-07-28)
	Revision     string
	Method       string
	Tool         string // exposed name (tool, prompt) or resource URI
	Upstream     string
	UpstreamTool string // the upstream's own name
	Decision     string // Allow, Deny or Fail
	Reason       string
	Skill        string // the skill whose grant allowed a tools/call
	Latency      time.Duration
	// UpstreamStatus is "ok", "error <code>", "timeout", "unavailable" or ""
	// when the upstream was not called.
	UpstreamStatus string
	// ToolError is set when the upstream answered a tools/call with a
	// result marked isError (the call was served, the tool failed).
	ToolError bool
	// DLPRequest and DLPResponse are what data-loss prevention decided on
	// the arguments and on the result: "allow", "modify", "block", or ""
	// when that side was not inspected.
	DLPRequest, DLPResponse string
	// DLPFindings counts sensitive values found, by detector id (both
	// directions; never the values).
	DLPFindings map[string]int
	// ICAP lists the ICAP exchanges' outcomes ("reqmod 204, respmod 200
	// modified"; "… blocked", "… failed", "… failed-open"), "" when unused.
	ICAP string
	// Verdicts are the stages' verdicts in request-path order: the last
	// one is the stage that decided (a refusal names its stage).
	Verdicts []Verdict
	// ArgsDigest and ResultDigest are hex HMAC-SHA256 digests (under
	// Config.DigestKey) of a tools/call's canonical arguments and of the
	// upstream's result bytes: equal values give equal digests, so calls can
	// be correlated without the values being kept ("" without a key, or
	// when there was no such value).
	ArgsDigest, ResultDigest string
	// TraceID is the W3C trace id of the request's traceparent header, or
	// a new one when it had none.
	TraceID string
	// User is the human the agent acts for, when the credential says so
	// ("" today: API keys name an agent only).
	User string
}

// Stage is the stage that decided: the last verdict's ("" when none).
func (d *Decision) Stage() string {
	if len(d.Verdicts) == 0 {
		return ""
	}
	return d.Verdicts[len(d.Verdicts)-1].Stage
}

// verdictsText renders verdicts as "stage:outcome[ (reason)], ...".
func verdictsText(vs []Verdict) string {
	var b []byte
	for i, v := range vs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, v.Stage...)
		b = append(b, ':')
		b = append(b, v.Outcome...)
		if v.Reason != "" && v.Outcome != Allow {
			b = append(b, " ("...)
			b = append(b, v.Reason...)
			b = append(b, ')')
		}
	}
	return string(b)
}

// LogValue renders the record as a flat slog group.
func (d Decision) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("agent", d.Agent),
		slog.String("persona", d.Persona),
		slog.String("key_id", d.KeyID),
		slog.String("client_ip", d.ClientIP),
		slog.String("session", d.Session),
		slog.String("revision", d.Revision),
		slog.String("method", d.Method),
		slog.String("tool", d.Tool),
		slog.String("upstream", d.Upstream),
		slog.String("upstream_tool", d.UpstreamTool),
		slog.String("decision", d.Decision),
		slog.String("reason", d.Reason),
		slog.String("skill", d.Skill),
		slog.Duration("latency", d.Latency),
		slog.String("upstream_status", d.UpstreamStatus),
		slog.String("dlp_request", d.DLPRequest),
		slog.String("dlp_response", d.DLPResponse),
		slog.Any("dlp_findings", d.DLPFindings),
		slog.String("icap", d.ICAP),
		slog.String("verdicts", verdictsText(d.Verdicts)),
		slog.String("trace_id", d.TraceID),
	)
}
