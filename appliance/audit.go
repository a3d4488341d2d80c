package appliance

import (
	"context"
	"crypto"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/portcullis-gw/portcullis/hsm"
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
}

func addAuditFlags(f *pflag.FlagSet, c *AuditConfig) {
	f.StringVar(&c.Dir, "audit-dir", "", "directory of the node's hash-chained audit trail (default DATA_DIR/audit); check it with `portcullis audit verify`")
	f.DurationVar(&c.FlushInterval, "audit-flush-interval", 100*time.Millisecond, "audit group commit: records are fsynced at most this long after a decision (what a crash can lose)")
}

// openAudit opens the audit trail, its checkpoints signed by the HSM's
// audit key (unsigned without an HSM), and makes it the gateway's Sink. The
// gateway's slog decision line stays; the trail is the durable record.
func (a *Appliance) openAudit(gw *gateway.Config) error {
	dir := a.cfg.Audit.Dir
	if dir == "" {
		dir = filepath.Join(a.cfg.DataDir, "audit")
	}
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
	})
	if err != nil {
		return err
	}
	a.audit = l
	gw.Sink = l
	a.log.Info("audit trail open", "dir", dir, "signed", signer != nil)
	return nil
}
