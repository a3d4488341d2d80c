package appliance

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
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
	// Mode is async (default) or strict, StrictTimeout how long a strict
	// call waits for its record (auditrepl.go).
	Mode          string
	StrictTimeout time.Duration
}

func addAuditFlags(f *pflag.FlagSet, c *AuditConfig) {
	f.StringVar(&c.Dir, "audit-dir", "", "directory of the node's hash-chained audit trail (default DATA_DIR/audit); check it with `portcullis audit verify`")
	f.DurationVar(&c.FlushInterval, "audit-flush-interval", 100*time.Millisecond, "audit group commit: records are fsynced at most this long after a decision (what a crash can lose)")
	addAuditReplFlags(f, c)
}

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
	l, err := audit.New(audit.Config{
		Dir:           dir,
		Node:          a.nodeID,
		Signer:        signer,
		FlushInterval: a.cfg.Audit.FlushInterval,
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
	return nil
}

// auditRoutes serve the trail of this node on the admin API.
func (a *Appliance) auditRoutes() []api.Route {
	return []api.Route{{Method: http.MethodGet, Path: "/audit/records", Handler: http.HandlerFunc(a.serveAuditRecords)}}
}

// maxAuditRecords bounds one answer of GET /v1/audit/records.
const maxAuditRecords = 10000

// serveAuditRecords is GET /v1/audit/records?agent=&persona=&tool=&decision=
// &since=RFC3339&until=RFC3339&limit=N: this node's matching records, newest
// last (at most limit, default and maximum 10000, the newest ones), after
// flushing the records buffered so far. A linear scan of the local trail.
func (a *Appliance) serveAuditRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{Agent: q.Get("agent"), Persona: q.Get("persona"), Tool: q.Get("tool"), Decision: q.Get("decision"), Limit: maxAuditRecords}
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
