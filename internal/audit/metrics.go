package audit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the log's Prometheus collectors (registered when
// Config.Metrics is set).
type metrics struct {
	records prometheus.Counter
	flush   prometheus.Histogram
	errors  *prometheus.CounterVec // op: flush, checkpoint
	owed    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_audit_records_total",
			Help: "Audit records written and fsynced to the trail."}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "portcullis_audit_flush_seconds",
			Help:    "Duration of one group commit (write and fsync) of the audit trail.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_audit_errors_total",
			Help: "Failed audit flushes (records stay buffered and are retried) and checkpoints."}, []string{"op"}),
		owed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portcullis_audit_unsigned_segments",
			Help: "Closed audit segments still waiting for their signed final checkpoint (the HSM was unavailable)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.records, m.flush, m.errors, m.owed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("audit: register metrics: %w", err)
		}
	}
	return m, nil
}
