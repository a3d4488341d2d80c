package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UpstreamStatus is what this node last saw of one upstream: whether it
// holds a session with it, and how its tools/list fetch went. It is
// node-local (every node keeps its own connections) and read from caches:
// asking never waits for the upstream (for one not used yet it starts the
// tool list fetch in the background, so the next ask can tell).
type UpstreamStatus struct {
	// State is "up" (connected, and its tool list loaded), "down" (its
	// last connection or tools/list failed) or "unknown" (not used yet).
	State string `json:"state"`
	// Revision is the MCP revision the session negotiated.
	Revision string `json:"revision,omitempty"`
	// Tools is how many tools its last good list had.
	Tools int `json:"tools"`
	// Error is why it is down: the connection or tools/list error.
	Error string `json:"error,omitempty"`
	// CheckedAt is when its tool list was last fetched.
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// Circuit is this node's circuit breaker of it (Config.Guard): closed,
	// open (calls refused until CircuitRetryAt) or half-open (a trial
	// call decides); Failures counts its failed calls in a row.
	Circuit        string    `json:"circuit,omitempty"`
	CircuitRetryAt time.Time `json:"circuitRetryAt,omitzero"`
	Failures       int       `json:"failures,omitempty"`
}

// UpstreamStatus reports the status of upstream name; false when the
// state has no such upstream. Safe from any goroutine.
func (g *Gateway) UpstreamStatus(name string) (UpstreamStatus, bool) {
	v := g.cfg.Source.View()
	if v == nil || v.Upstreams[name] == nil {
		return UpstreamStatus{}, false
	}
	st := UpstreamStatus{State: "unknown"}
	if g.cfg.Guard != nil {
		b := g.cfg.Guard.Breaker(name)
		st.Circuit, st.CircuitRetryAt, st.Failures = b.State, b.RetryAt, b.Failures
	}
	u := g.upstream(name, v)
	if u == nil {
		return st, true
	}
	if b := u.conn.Load(); b != nil && !isDone(b.c) {
		st.Revision = b.c.Server().ProtocolVersion
	}
	if l := u.lists[kindTools].Load(); l != nil {
		st.CheckedAt = l.at
		if l.err != nil {
			st.State, st.Error = "down", l.err.Error()
		} else {
			st.State, st.Tools = "up", len(l.items)
		}
	} else {
		u.ensure(kindTools)
	}
	return st, true
}

var upstreamUpDesc = prometheus.NewDesc("portcullis_upstream_up",
	"1 when this node's last tools/list from the upstream succeeded, 0 when its connection or list failed (upstreams not used yet are left out).",
	[]string{"upstream"}, nil)

// upstreamUp exports UpstreamStatus as the portcullis_upstream_up gauge,
// computed at scrape time from the same caches.
type upstreamUp struct{ g *Gateway }

func (c upstreamUp) Describe(ch chan<- *prometheus.Desc) { ch <- upstreamUpDesc }

func (c upstreamUp) Collect(ch chan<- prometheus.Metric) {
	v := c.g.cfg.Source.View()
	if v == nil {
		return
	}
	for name := range v.Upstreams { // the registry sorts what it serves
		st, ok := c.g.UpstreamStatus(name)
		if !ok || st.State == "unknown" {
			continue
		}
		up := 0.0
		if st.State == "up" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upstreamUpDesc, prometheus.GaugeValue, up, name)
	}
}
