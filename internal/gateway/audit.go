package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
)

// Sink receives the gateway's decision records: the seam the durable
// audit trail (internal/audit) and exporters plug into.
//
// Contract: Write is called by one goroutine the gateway owns (never a
// request's), one record at a time, in the order the requests ended. It may
// block (fsync, a network export): the records behind it wait in a bounded
// queue (Config.AuditQueue), and when that queue is full a new record is
// dropped and counted (portcullis_gateway_audit_dropped_total), so a slow
// or stuck sink never delays an agent's request. The Decision is the
// sink's to keep; the gateway never touches it again. An error is logged
// and counted (portcullis_gateway_audit_errors_total); the record is not
// retried (a durable sink retries or spools on its own). Write must be
// safe to call until Close returns; the gateway stops calling it when
// Gateway.Close has drained the queue (or after Config.AuditDrain).
type Sink interface {
	Write(d Decision) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Decision) error

// Write calls f(d).
func (f SinkFunc) Write(d Decision) error { return f(d) }

// auditQueue feeds the Sink from a bounded queue.
type auditQueue struct {
	sink  Sink
	ch    chan Decision
	log   *slog.Logger
	m     *Metrics
	done  chan struct{}
	close sync.Once
}

func newAuditQueue(sink Sink, size int, log *slog.Logger, m *Metrics) *auditQueue {
	q := &auditQueue{sink: sink, ch: make(chan Decision, size), log: log, m: m, done: make(chan struct{})}
	go q.run()
	return q
}

// put queues d without ever blocking; a full queue drops it.
func (q *auditQueue) put(d *Decision) {
	select {
	case q.ch <- *d:
	default:
		q.m.auditDropped.Inc()
	}
}

func (q *auditQueue) run() {
	defer close(q.done)
	for d := range q.ch {
		if err := q.sink.Write(d); err != nil {
			q.m.auditErrors.Inc()
			q.log.Warn("audit sink write failed", "err", err)
		}
	}
}

// shutdown stops taking records and waits up to drain for the sink to
// take the queued ones.
func (q *auditQueue) shutdown(drain time.Duration) {
	q.close.Do(func() { close(q.ch) })
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-q.done:
	case <-t.C:
		q.log.Warn("audit sink did not drain before shutdown", "left", len(q.ch))
	}
}

// end closes a request: its record if it has one, else it is counted.
func (g *Gateway) end(c *Call) {
	g.audit(c)
	if !c.written {
		c.written = true
		g.metrics.answered(c)
	}
}

// audit is stage 10: it completes the call's record and writes it, once,
// for every outcome. It runs on the request's goroutine before the
// answer leaves (and, deferred, when serve returns): the log line, the
// metrics, the synchronous OnDecision hook, and a non-blocking hand-off to
// the Sink's queue. A request answered without a target and without a
// refusal (initialize, ping, lists, notifications) writes no record.
func (g *Gateway) audit(c *Call) {
	if c.written || !c.governed {
		return
	}
	c.written = true
	d := &c.rec
	d.Time, d.Agent, d.Persona, d.KeyID, d.ClientIP = c.start, c.p.Agent, c.persona, c.p.KeyID, clientIP(&c.reqCtx)
	if d.ClientIP == "" && c.r != nil {
		if ip := authn.ClientIP(c.r); ip.IsValid() {
			d.ClientIP = ip.String()
		}
	}
	d.Session, d.Revision = c.sessionNonce(), c.rev
	switch {
	case c.msg != nil && c.msg.Method != "":
		d.Method = c.msg.Method
	case d.Method == "" && c.r != nil:
		d.Method = c.r.Method + " " + c.r.URL.Path
	}
	if d.Decision == "" {
		d.Decision = Allow
	}
	d.Verdicts = c.verdicts[:c.nv:c.nv]
	d.Latency = time.Since(c.start)
	g.metrics.decided(c)
	ctx := context.Background()
	if c.r != nil {
		ctx = context.WithoutCancel(c.r.Context())
	}
	level := slog.LevelInfo
	if d.Decision == Deny {
		level = slog.LevelWarn
	}
	if g.log.Enabled(ctx, level) {
		g.log.LogAttrs(ctx, level, "mcp decision", slog.Any("decision", *d))
	}
	g.observe(c)
	if g.cfg.OnDecision != nil {
		g.cfg.OnDecision(*d)
	}
	if g.audits != nil {
		g.audits.put(d)
	}
}
