package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Audit replication and durability modes.
//
// Every group commit of this node's trail (after its fsync) is proposed
// through raft as one audit.batch command (audit.Replicator): its records,
// compressed, and the chain head after them. Every node's store anchors
// that head (in replicated state and in raft snapshots) and hands the
// batch to audit.Replicas, which writes the records into
// AUDIT_DIR/replicas/<node>/ as a verifiable copy of that node's segments.
// Each node keeps a copy of the anchors in AUDIT_DIR/replicas/anchors.json
// (written within a second of a change); GET /v1/audit/anchors serves them.
//
// --audit-mode async (the default): the agent is answered before its
// record is durable; a record is fsynced locally within
// --audit-flush-interval and committed by raft a round trip later.
// --audit-mode strict: the answer is released only once the record is
// committed by raft (on a quorum of nodes; on a single node, in its own
// fsynced raft log); the trail flushes as soon as records wait (pipelined
// group commit). A record not durable within --audit-strict-timeout
// refuses its call (its answer is withheld), and while the trail cannot
// make records durable every new call is refused with 503 and /healthz is
// 503: the node fails closed.

// Audit modes (--audit-mode).
const (
	auditAsync  = "async"
	auditStrict = "strict"
	// auditOff keeps no records (dev mode only: the benchmark's baseline).
	auditOff = "off"
)

// auditRepl is the node's replication of its trail.
type auditRepl struct {
	replicas *audit.Replicas
	repl     *audit.Replicator
	dirty    atomic.Bool // the anchors changed since anchors.json was written
}

func addAuditReplFlags(f *pflag.FlagSet, c *AuditConfig) {
	f.StringVar(&c.Mode, "audit-mode", auditAsync, "audit durability: async (answer first; a crash can lose the last flush interval) or strict (a call is answered only once its record is committed by raft on a quorum of nodes; calls are refused while that cannot be done)")
	f.DurationVar(&c.StrictTimeout, "audit-strict-timeout", 5*time.Second, "strict audit mode: how long a call waits for its record to be durable before it is refused")
}

func (c *AuditConfig) strict() bool { return c.Mode == auditStrict }

func (c *AuditConfig) validateMode() error {
	switch c.Mode {
	case "", auditAsync, auditStrict, auditOff:
	default:
		return fmt.Errorf("--audit-mode %q: want async or strict (or off, in --dev mode)", c.Mode)
	}
	if c.StrictTimeout < 0 {
		return errors.New("--audit-strict-timeout must not be negative")
	}
	return nil
}

func (a *Appliance) auditDir() string {
	if a.cfg.Audit.Dir != "" {
		return a.cfg.Audit.Dir
	}
	return filepath.Join(a.cfg.DataDir, "audit")
}

// openReplicas opens the replicas of the other nodes' trails and has the
// store hand every applied audit batch to them. It runs before the raft
// node starts, so that no batch raft replays is missed.
func (a *Appliance) openReplicas() error {
	if err := a.cfg.Audit.validateMode(); err != nil {
		return err
	}
	if a.cfg.Audit.Mode == auditOff && !a.cfg.Dev {
		return errors.New("--audit-mode off keeps no audit records; it is for benchmarks in --dev mode only")
	}
	rs, err := audit.OpenReplicas(filepath.Join(a.auditDir(), "replicas"), a.nodeID, a.log.With("component", "audit-replicas"))
	if err != nil {
		return err
	}
	a.arepl.replicas = rs
	a.store.OnAuditBatch(func(b *state.AuditBatch, _ uint64) {
		a.arepl.dirty.Store(true)
		if err := rs.Apply(b.Node, b.Payload); err != nil {
			a.log.Error("audit: could not write a replicated batch (the records stay in raft's log; verify of the replica names the gap)", "node", b.Node, "err", err)
		}
	})
	return nil
}

// openAuditReplication attaches the replicator to the open trail and, in
// strict mode, makes the gateway wait for each record.
func (a *Appliance) openAuditReplication(gw *gateway.Config) error {
	r, err := audit.NewReplicator(a.audit, audit.ReplicatorConfig{
		Propose:  a.proposeAudit,
		Anchored: a.anchoredSeq,
		Logger:   a.log.With("component", "audit-replication"),
	})
	if err != nil {
		return err
	}
	a.arepl.repl = r
	switch a.cfg.Audit.Mode {
	case auditStrict:
		gw.Sink = a.audit.StrictSink()
	case auditOff:
		gw.Sink = nil
		a.log.Warn("--audit-mode off: gateway decisions are not recorded (a benchmark baseline)")
	}
	gauge := func(name, help string, f func() float64) {
		a.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		a.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge("portcullis_audit_replication_queued_records", "audit records fsynced here and not yet committed by raft", func() float64 { return float64(r.Stats().Queued) })
	counter("portcullis_audit_replicated_records_total", "audit records of this node committed by raft", func() float64 { return float64(r.Stats().Records) })
	counter("portcullis_audit_replication_failures_total", "audit batch proposals that failed (and are retried)", func() float64 { return float64(r.Stats().Failures) })
	counter("portcullis_audit_replica_records_total", "records of other nodes written to this node's replicas", func() float64 { return float64(a.arepl.replicas.Stats().Records) })
	counter("portcullis_audit_replica_gaps_total", "replicated batches that did not continue what this node's replica held", func() float64 { return float64(a.arepl.replicas.Stats().Gaps) })
	counter("portcullis_audit_replica_errors_total", "replicated batches this node could not decode or write", func() float64 { return float64(a.arepl.replicas.Stats().Errors) })
	gauge("portcullis_audit_down", "1 while the audit trail cannot make records durable (strict mode refuses calls then)", func() float64 {
		if a.audit.Down() != nil {
			return 1
		}
		return 0
	})
	a.log.Info("audit replication on", "mode", a.cfg.Audit.Mode, "replicas", a.arepl.replicas.Dir())
	return nil
}

// proposeAudit commits one shipment of this node's trail through raft.
func (a *Appliance) proposeAudit(ctx context.Context, s *audit.Shipment) error {
	_, err := a.propose(ctx, &state.Command{Op: state.OpAuditBatch, Time: time.Now().UTC(), Audit: &state.AuditBatch{
		Node: a.nodeID, FirstSeq: s.FirstSeq, Payload: s.Payload,
		Head: state.AuditHead{Segment: s.Segment, Records: s.Records, Seq: s.LastSeq, Hash: s.Head, Checkpoint: s.Checkpoint},
	}})
	return err
}

// anchoredSeq waits for this node's replicated state and returns the seq
// raft anchored for its trail.
func (a *Appliance) anchoredSeq(ctx context.Context) (uint64, error) {
	if err := a.node.WaitReady(ctx); err != nil {
		return 0, err
	}
	an, _ := a.store.AuditAnchor(a.nodeID)
	return an.Seq, nil
}

// runAuditReplication proposes the trail's batches, fsyncs the replicas
// and keeps anchors.json current, until ctx is done.
func (a *Appliance) runAuditReplication(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.arepl.repl.Run(ctx) })
	g.Go(func() error { return a.arepl.replicas.Run(ctx) })
	g.Go(func() error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				a.writeAnchors()
				return nil
			case <-t.C:
				a.writeAnchors()
			}
		}
	})
	return g.Wait()
}

func (a *Appliance) anchors() *audit.Anchors {
	return &audit.Anchors{From: a.nodeID, Time: time.Now().UTC(), Anchors: a.store.AuditAnchors()}
}

func (a *Appliance) writeAnchors() {
	if !a.arepl.dirty.Swap(false) {
		return
	}
	if err := audit.WriteAnchors(filepath.Join(a.arepl.replicas.Dir(), audit.AnchorsFile), a.anchors()); err != nil {
		a.log.Warn("audit: write the anchors copy", "err", err)
		a.arepl.dirty.Store(true)
	}
}

// closeAuditReplication ships what the trail's Close flushed last (while
// raft still runs) and closes the replicas.
func (a *Appliance) closeAuditReplication() error {
	var errs []error
	if a.arepl.repl != nil && a.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.arepl.repl.Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("audit: replicate the last records (the next start does): %w", err))
		}
		cancel()
	}
	if a.arepl.replicas != nil {
		a.writeAnchors()
		errs = append(errs, a.arepl.replicas.Close())
	}
	return errors.Join(errs...)
}

// auditGuard refuses agent calls while a strict-mode trail cannot make
// records durable: answering them would leave calls unaudited.
func (a *Appliance) auditGuard(h http.Handler) http.Handler {
	if !a.cfg.Audit.strict() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.audit.Down(); err != nil {
			w.Header().Set("Retry-After", "5")
			api.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable,
				"this node's audit trail cannot make records durable on a quorum of nodes now, and --audit-mode strict refuses calls rather than answer them unaudited; use another node", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// auditDown is why a strict-mode node is not healthy, or nil.
func (a *Appliance) auditDown() error {
	if !a.cfg.Audit.strict() || a.audit == nil {
		return nil
	}
	return a.audit.Down()
}

// auditReplRoutes serve the anchors on the admin API.
func (a *Appliance) auditReplRoutes() []api.Route {
	return []api.Route{{Method: http.MethodGet, Path: "/audit/anchors", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, a.anchors())
	})}}
}
