package appliance

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/export"
	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// AuditConfig configures the node's audit trail (internal/audit).
type AuditConfig struct {
	// Dir holds the trail's segments, checkpoints and public key; default
	// DataDir/audit.
	Dir string
	// FlushInterval is the group commit interval: it bounds what a crash
	// loses (default 100ms).
	FlushInterval time.Duration
	// RetainAge and RetainBytes delete the oldest closed segments older
	// than RetainAge, or while the trail is larger than RetainBytes (0:
	// keep everything), leaving a signed retention marker.
	RetainAge   time.Duration
	RetainBytes int64
	// Export sends every decision to OTLP, syslog and webhook destinations
	// beside the trail (internal/export); all off by default.
	Export export.Config
	// Mode is async (default) or strict, StrictTimeout how long a strict
	// call waits for its record (auditrepl.go).
	Mode          string
	StrictTimeout time.Duration
}

func addAuditFlags(f *pflag.FlagSet, c *AuditConfig) {
	f.StringVar(&c.Dir, "audit-dir", "", "directory of the node's hash-chained audit trail (default DATA_DIR/audit); check it with `portcullis audit verify`")
	f.DurationVar(&c.FlushInterval, "audit-flush-interval", 100*time.Millisecond, "audit group commit: records are fsynced at most this long after a decision (what a crash can lose)")
	f.DurationVar(&c.RetainAge, "audit-retain-age", 0, "delete closed audit segments whose newest record is older than this (e.g. 2160h; 0: keep); verify stays green through a signed retention marker")
	f.Int64Var(&c.RetainBytes, "audit-retain-bytes", 0, "delete the oldest closed audit segments while the trail's files exceed this many bytes (0: no limit)")
	e := &c.Export
	f.StringVar(&e.OTLP.Endpoint, "otlp-endpoint", "", "export decisions as OTLP logs, traces and metrics to this OpenTelemetry collector (HOST:PORT)")
	f.StringVar(&e.OTLP.Protocol, "otlp-protocol", export.ProtocolGRPC, "OTLP transport: grpc or http")
	f.VarPF(optionalBool{&e.OTLP.Insecure}, "otlp-insecure", "", "OTLP in plaintext (default: plaintext to a loopback endpoint, TLS to any other)").NoOptDefVal = "true"
	f.StringVar(&e.OTLP.CAFile, "otlp-ca-file", "", "PEM CA certificates that verify the collector (default: the system roots)")
	f.DurationVar(&e.OTLP.MetricInterval, "otlp-metric-interval", 10*time.Second, "how often OTLP metrics are exported")
	f.StringVar(&e.Syslog.Addr, "syslog-addr", "", "send every decision as RFC 5424 syslog over TCP to HOST:PORT (octet-counted frames)")
	f.BoolVar(&e.Syslog.TLS, "syslog-tls", false, "syslog over TLS (RFC 5425)")
	f.StringVar(&e.Syslog.CAFile, "syslog-ca-file", "", "PEM CA certificates that verify the syslog receiver (default: the system roots)")
	f.StringVar(&e.Syslog.Format, "syslog-format", export.FormatCEF, "syslog message body: cef (ArcSight Common Event Format) or json")
	f.IntVar(&e.Syslog.Facility, "syslog-facility", 13, "syslog facility number (13: log audit)")
	f.StringVar(&e.Webhook.URL, "webhook-url", "", "POST alerting decisions (see --webhook-on) as JSON to this URL")
	f.Var(decisionList{&e.Webhook.On}, "webhook-on", "decisions that alert the webhook: comma-separated allow, deny, error (default deny,error)")
	f.StringVar(&e.Webhook.TokenFile, "webhook-token-file", "", "file holding a bearer token for the webhook")
	f.StringVar(&e.Webhook.CAFile, "webhook-ca-file", "", "PEM CA certificates that verify an https webhook (default: the system roots)")
	f.IntVar(&e.QueueSize, "export-queue", export.DefaultQueueSize, "records each export destination may queue; past it they are dropped and counted (portcullis_export_dropped_total)")
	addAuditReplFlags(f, c)
}

// auditDigestKey derives the key of the records' argument and result
// digests from the HSM's MAC key (replicated to every node at join), so the
// same value digests the same on every node and nobody without the HSM can
// test a guess against a digest. The derived key lives in this process's
// memory (one HMAC per tool call cannot afford an HSM round trip). Nil
// without an HSM: records carry no digests.
func (a *Appliance) auditDigestKey() []byte {
	if a.keystore == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := a.keystore.MAC(ctx, []byte("portcullis/audit/digest-key/v1"))
	if err != nil {
		a.log.Warn("audit: no digest key from the HSM: records carry no argument or result digests", "err", err)
		return nil
	}
	return k
}

// recordAdminWrite is the admin API's OnAdminWrite: one admin record per
// write, in the node's trail.
func (a *Appliance) recordAdminWrite(act api.AdminAction) {
	if a.audit == nil {
		return
	}
	ev := audit.AdminEvent{Time: act.Time, ClientIP: act.ClientIP, TraceID: act.TraceID, Latency: act.Latency,
		Admin: audit.Admin{Identity: act.Identity, TokenID: act.TokenID, Role: act.Role, Action: act.Method + " " + act.Route,
			Path: act.Path, Status: act.Status, Result: act.Result}}
	for _, o := range act.Objects {
		ev.Objects = append(ev.Objects, audit.ObjectChange{Kind: o.Kind, Name: o.Name, Before: o.Before, After: o.After})
	}
	if err := a.audit.WriteAdmin(ev); err != nil {
		a.log.Error("audit: admin record not written", "action", ev.Action, "err", err)
	}
}

// optionalBool is a bool flag that remembers whether it was given.
type optionalBool struct{ p **bool }

func (o optionalBool) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.FormatBool(**o.p)
}

func (o optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*o.p = &v
	return nil
}

func (optionalBool) Type() string { return "bool" }

// decisionList is --webhook-on.
type decisionList struct{ p *[]string }

func (d decisionList) String() string {
	if d.p == nil {
		return ""
	}
	return strings.Join(*d.p, ",")
}

func (d decisionList) Set(s string) error {
	v, err := export.ParseDecisions(s)
	if err != nil {
		return err
	}
	*d.p = v
	return nil
}

func (decisionList) Type() string { return "decisions" }

// openAudit opens the audit trail, its checkpoints signed by the HSM's
// audit key (unsigned without an HSM), and makes it the gateway's Sink. The
// gateway's slog decision line stays; the trail is the durable record.
func (a *Appliance) openAudit(gw *gateway.Config) error {
	dir := a.auditDir()
	var signer crypto.Signer
	if a.keystore != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := a.keystore.Signer(ctx, hsm.SignerAudit)
		cancel()
		if err != nil {
			return fmt.Errorf("audit checkpoint key: %w", err)
		}
		signer = s
	} else {
		a.log.Warn("no HSM: audit checkpoints are not signed (the trail is hash-chained, but whoever can write its directory could rewrite it)")
	}
	gw.DigestKey = a.auditDigestKey()
	l, err := audit.New(audit.Config{
		Dir:           dir,
		Node:          a.nodeID,
		Signer:        signer,
		FlushInterval: a.cfg.Audit.FlushInterval,
		RetainAge:     a.cfg.Audit.RetainAge,
		RetainBytes:   a.cfg.Audit.RetainBytes,
		Logger:        a.log.With("component", "audit"),
		Metrics:       a.metrics, // the one registry, served at /metrics
		Strict:        a.cfg.Audit.strict(),
		StrictTimeout: a.cfg.Audit.StrictTimeout,
	})
	if err != nil {
		return err
	}
	a.audit = l
	gw.Sink = l
	if err := a.openAuditReplication(gw); err != nil { // strict mode: a DurableSink
		return err
	}
	a.log.Info("audit trail open", "dir", dir, "signed", signer != nil)

	ec := a.cfg.Audit.Export
	ec.Node, ec.Logger, ec.Metrics = a.nodeID, a.log.With("component", "export"), a.metrics
	if a.export, err = export.New(ec); err != nil {
		return err
	}
	if ec.Enabled() {
		gw.Sink = exportSink(gw.Sink, a.export)
	}
	return nil
}

// exportSink hands every decision to the trail first (it is the record;
// nil in --audit-mode off) and then to export, which only queues. It keeps
// the trail's strict durability: a DurableSink stays one.
func exportSink(trail gateway.Sink, ex *export.Exporter) gateway.Sink {
	if ds, ok := trail.(gateway.DurableSink); ok {
		return durableFanout{ds, ex}
	}
	return gateway.SinkFunc(func(d gateway.Decision) error {
		var err error
		if trail != nil {
			err = trail.Write(d)
		}
		ex.Write(d)
		return err
	})
}

// durableFanout is exportSink over a strict trail.
type durableFanout struct {
	trail gateway.DurableSink
	ex    *export.Exporter
}

func (f durableFanout) Write(d gateway.Decision) error {
	err := f.trail.Write(d)
	f.ex.Write(d)
	return err
}

func (f durableFanout) WriteDurable(ctx context.Context, d gateway.Decision) error {
	err := f.trail.WriteDurable(ctx, d)
	f.ex.Write(d)
	return err
}

// auditRoutes serve the trail of this node on the admin API.
func (a *Appliance) auditRoutes() []api.Route {
	return []api.Route{{Method: http.MethodGet, Path: "/audit/records", Handler: http.HandlerFunc(a.serveAuditRecords)}}
}

// maxAuditRecords bounds one answer of GET /v1/audit/records.
const maxAuditRecords = 10000

// serveAuditRecords is GET /v1/audit/records?agent=&user=&persona=&tool=
// &decision=&kind=request|admin&since=RFC3339&until=RFC3339&limit=N
// [&cursor=C]: this node's matching records, after flushing the records
// buffered so far, read through the segments' indexes. Without cursor: the
// newest limit (default and maximum 10000), newest last. With cursor (start
// with 0): the next limit matches in trail order after the cursor, and
// "next", the cursor of the following page ("" after the last).
func (a *Appliance) serveAuditRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{Agent: q.Get("agent"), User: q.Get("user"), Kind: q.Get("kind"), Persona: q.Get("persona"), Tool: q.Get("tool"), Decision: q.Get("decision"), Limit: maxAuditRecords}
	if f.Kind != "" && f.Kind != audit.KindRequest && f.Kind != audit.KindAdmin {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("kind %q: want request or admin", f.Kind), nil)
		return
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("%s %q: want an RFC 3339 time", p.name, v), nil)
				return
			}
			*p.t = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditRecords {
			api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("limit %q: want 1..%d", v, maxAuditRecords), nil)
			return
		}
		f.Limit = n
	}
	if err := a.audit.Flush(); err != nil {
		a.log.Warn("audit: flush before a search", "err", err)
	}
	if c := q.Get("cursor"); c != "" {
		after, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("cursor %q: pass 0 or the next cursor of the page before", c), nil)
			return
		}
		recs, next, err := audit.Page(a.audit.Dir(), f, after, f.Limit)
		if err != nil {
			a.log.Error("audit search", "err", err)
			api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "the audit trail could not be read; see the server log (portcullis audit verify names the damage)", nil)
			return
		}
		if recs == nil {
			recs = []audit.Record{}
		}
		nextCursor := ""
		if next > 0 {
			nextCursor = strconv.FormatUint(next, 10)
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"records": recs, "next": nextCursor, "node": a.nodeID})
		return
	}
	recs, err := audit.Search(a.audit.Dir(), f)
	if err != nil {
		a.log.Error("audit search", "err", err)
		api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "the audit trail could not be read; see the server log (portcullis audit verify names the damage)", nil)
		return
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"records": recs, "node": a.nodeID})
}
