package export

import (
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// record is a decision as syslog (JSON format) and the webhook send it:
// the audit trail's record (audit.Record, same field names) without the
// trail's sequence number, which only the trail assigns. Never a value the
// request carried: DLP findings are counts by detector id.
type record struct {
	Time           time.Time      `json:"time"`
	Node           string         `json:"node,omitempty"`
	Agent          string         `json:"agent"`
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
	Verdicts       []verdict      `json:"verdicts,omitempty"`
	DLPRequest     string         `json:"dlpRequest,omitempty"`
	DLPResponse    string         `json:"dlpResponse,omitempty"`
	DLPFindings    map[string]int `json:"dlpFindings,omitempty"`
	ICAP           string         `json:"icap,omitempty"`
	LatencyMs      float64        `json:"latencyMs"`
	UpstreamStatus string         `json:"upstreamStatus,omitempty"`
}

type verdict struct {
	Stage   string `json:"stage"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

func recordOf(d *gateway.Decision, node string) record {
	r := record{
		Time: d.Time.UTC(), Node: node, Agent: d.Agent, Persona: d.Persona, KeyID: d.KeyID,
		ClientIP: d.ClientIP, Session: d.Session, Revision: d.Revision, Method: d.Method,
		Tool: d.Tool, Upstream: d.Upstream, UpstreamTool: d.UpstreamTool, Skill: d.Skill,
		Decision: d.Decision, Reason: d.Reason, DLPRequest: d.DLPRequest, DLPResponse: d.DLPResponse,
		DLPFindings: d.DLPFindings, ICAP: d.ICAP, UpstreamStatus: d.UpstreamStatus,
		LatencyMs: float64(d.Latency.Microseconds()) / 1e3,
	}
	for _, v := range d.Verdicts {
		r.Verdicts = append(r.Verdicts, verdict{Stage: v.Stage, Outcome: v.Outcome, Reason: v.Reason})
	}
	return r
}
