package gateway

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// Metrics are the gateway's Prometheus collectors. New registers them into
// Config.Metrics (the node's one registry, served at the admin listener's
// /metrics behind the admin token); without a Registerer they are kept but
// not exported. Label values come only from bounded sets: known MCP
// methods, stage names, outcomes, configured personas and upstreams, DLP
// categories and upstream status classes; never from what an agent sent.
type Metrics struct {
	requests      *prometheus.CounterVec   // method
	decisions     *prometheus.CounterVec   // persona, outcome, stage
	latency       *prometheus.HistogramVec // method
	stageLatency  []prometheus.Observer    // per govern stage, in order
	upstreamErrs  *prometheus.CounterVec   // upstream, status
	dlpFindings   *prometheus.CounterVec   // category, direction
	auditDropped  prometheus.Counter
	auditErrors   prometheus.Counter
	stageLatencyV *prometheus.HistogramVec
}

// latency buckets: 100µs to ~26s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

func newMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_gateway_requests_total",
			Help: "Agent requests the gateway answered, by MCP method (HTTP method for those refused before the body was read)."}, []string{"method"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_gateway_decisions_total",
			Help: "Decision records written, by persona, outcome (allow, deny, error) and the stage that decided."}, []string{"persona", "outcome", "stage"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portcullis_gateway_request_duration_seconds",
			Help: "End-to-end latency of governed requests, by MCP method.", Buckets: latencyBuckets}, []string{"method"}),
		stageLatencyV: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portcullis_gateway_stage_duration_seconds",
			Help: "Time spent in each govern stage (the upstream stage includes the upstream's own time).", Buckets: latencyBuckets}, []string{"stage"}),
		upstreamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_gateway_upstream_errors_total",
			Help: "Upstream calls that failed (timeout, unavailable, http, credential, cancelled, ...), by upstream."}, []string{"upstream", "status"}),
		dlpFindings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_gateway_dlp_findings_total",
			Help: "Sensitive values data-loss prevention found, by category and direction."}, []string{"category", "direction"}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_gateway_audit_dropped_total",
			Help: "Decision records dropped because the audit sink's queue was full."}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_gateway_audit_errors_total",
			Help: "Decision records the audit sink failed to write."}),
	}
	for _, s := range stageNames {
		m.stageLatency = append(m.stageLatency, m.stageLatencyV.WithLabelValues(s))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.decisions, m.latency, m.stageLatencyV, m.upstreamErrs, m.dlpFindings, m.auditDropped, m.auditErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// stageDone observes govern stage i, started at t0.
func (m *Metrics) stageDone(i int, t0 time.Time) {
	m.stageLatency[i].Observe(time.Since(t0).Seconds())
}

// decided counts one written record.
func (m *Metrics) decided(c *Call) {
	d := &c.rec
	method := methodLabel(c)
	m.requests.WithLabelValues(method).Inc()
	persona := "unknown"
	if c.known {
		persona = c.persona
	}
	m.decisions.WithLabelValues(persona, d.Decision, d.Stage()).Inc()
	if c.msg != nil {
		m.latency.WithLabelValues(method).Observe(d.Latency.Seconds())
	}
}

// answered counts a request that wrote no record (lists, ping, ...).
func (m *Metrics) answered(c *Call) { m.requests.WithLabelValues(methodLabel(c)).Inc() }

func (m *Metrics) upstreamError(upstream, status string) {
	class, _, _ := strings.Cut(status, " ") // "http 502" -> http, "error -32603" -> error
	if class == "" {
		class = "unknown"
	}
	m.upstreamErrs.WithLabelValues(upstream, class).Inc()
}

func (m *Metrics) findings(fs []dlp.Finding, dir dlp.Direction) {
	for _, f := range fs {
		m.dlpFindings.WithLabelValues(string(f.Category), dir.String()).Inc()
	}
}

// knownMethods are the method labels; anything else is "other".
var knownMethods = map[string]bool{}

func init() {
	for _, k := range []string{mcp.MethodInitialize, mcp.MethodPing, mcp.MethodDiscover, mcp.MethodToolsList, mcp.MethodToolsCall,
		mcp.MethodPromptsList, mcp.MethodPromptsGet, mcp.MethodResourcesList, mcp.MethodResourceTemplates, mcp.MethodResourcesRead,
		mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsub, mcp.MethodComplete, mcp.MethodSetLevel, mcp.MethodSubscriptionsListen} {
		knownMethods[k] = true
	}
}

func methodLabel(c *Call) string {
	if c.msg == nil {
		if c.r == nil {
			return "other"
		}
		switch c.r.Method {
		case "GET", "POST", "DELETE", "OPTIONS":
			return c.r.Method
		}
		return "other"
	}
	if knownMethods[c.msg.Method] {
		return c.msg.Method
	}
	if c.msg.Method == "" {
		return "response"
	}
	if strings.HasPrefix(c.msg.Method, "notifications/") {
		return "notification"
	}
	return "other"
}
