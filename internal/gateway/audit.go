package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/mcp"
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

// DurableSink is a Sink that can make a record durable before the agent's
// answer is released: the strict audit mode's seam. When Config.Sink
// implements it, the gateway calls WriteDurable instead of queueing the
// record, synchronously on the request's goroutine, after the call was
// decided (and executed) and before its answer is written. It may block
// until the record is durable (an fsync, a replicated commit); ctx is the
// request's, without its cancellation. An error means the record is not
// known to be durable: the gateway then withholds the answer and refuses
// the call with a JSON-RPC internal error (ErrAuditUnavailable's text)
// instead: it fails closed. A Sink that fans records out to several
// destinations implements DurableSink by making its durable one durable
// and queueing the rest. Without it (the async mode) nothing changes: the
// record goes through the queue and the answer never waits.
type DurableSink interface {
	Sink
	WriteDurable(ctx context.Context, d Decision) error
}

// ErrAuditUnavailable is the refusal of a call whose record a DurableSink
// could not make durable.
var ErrAuditUnavailable = errors.New("the audit trail could not make this call's record durable (strict audit mode): its answer is withheld; retry later or on another node")

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
	d.TraceID = traceID(c.r)
	if key := g.cfg.DigestKey; key != nil && d.Method == "tools/call" {
		d.ArgsDigest = digestArgs(key, c.args)
		if c.upResp != nil {
			d.ResultDigest = digest(key, c.upResp.Result)
		}
	}
	d.Latency = time.Since(c.start)
	if c.ticket != nil {
		c.ticket.Done(guardOutcome(d))
		c.ticket = nil
	}
	if g.cfg.Guard != nil && d.Method == mcp.MethodToolsCall && len(d.DLPFindings) > 0 {
		g.cfg.Guard.Saw(d.Upstream+"/"+d.UpstreamTool, d.DLPFindings)
	}
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
	if up := c.upResp; up != nil && up.Error == nil && d.Decision != Deny && d.Method == mcp.MethodToolsCall {
		d.ToolError = isErrorResult(up.Result)
	}
	g.observe(c)
	if g.cfg.OnDecision != nil {
		g.cfg.OnDecision(*d)
	}
	if ds, ok := g.cfg.Sink.(DurableSink); ok && g.audits != nil {
		if err := ds.WriteDurable(ctx, *d); err != nil {
			g.metrics.auditErrors.Inc()
			g.log.Warn("audit: a call's record is not durable; refusing the call", "err", err)
			c.auditErr = err
		}
		return
	}
	if g.audits != nil {
		g.audits.put(d)
	}
}

// withheld is what the agent gets instead of resp when the call's record
// could not be made durable (DurableSink): a JSON-RPC error, or resp
// itself when the record is durable.
func withheld(c *Call, id json.RawMessage, resp *mcp.Message) *mcp.Message {
	if c.auditErr == nil {
		return resp
	}
	return mcp.NewError(id, mcp.Errorf(mcp.CodeInternalError, "%s", ErrAuditUnavailable.Error()))
}
