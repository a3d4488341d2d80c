package gateway

import (
	"context"
	"log/slog"
	"time"
)

// Decision outcomes.
const (
	Allow = "allow"
	Deny  = "deny"
	Fail  = "error" // allowed, but the upstream failed or timed out
)

// Decision is the one record written per governed request: who asked for
// what, what the gateway decided and why, and how the upstream answered.
// It never holds arguments, results or credentials.
type Decision struct {
	Time         time.Time
	Agent        string
	Persona      string
	KeyID        string
	ClientIP     string
	Session      string // session nonce ("" for 2026-07-28)
	Revision     string
	Method       string
	Tool         string // exposed name (tool, prompt) or resource URI
	Upstream     string
	UpstreamTool string // the upstream's own name
	Decision     string // Allow, Deny or Fail
	Reason       string
	Skill        string // the skill whose grant allowed a tools/call
	Latency      time.Duration
	// UpstreamStatus is "ok", "error <code>", "timeout", "unavailable" or ""
	// when the upstream was not called.
	UpstreamStatus string
}

// LogValue renders the record as a flat slog group.
func (d Decision) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("agent", d.Agent),
		slog.String("persona", d.Persona),
		slog.String("key_id", d.KeyID),
		slog.String("client_ip", d.ClientIP),
		slog.String("session", d.Session),
		slog.String("revision", d.Revision),
		slog.String("method", d.Method),
		slog.String("tool", d.Tool),
		slog.String("upstream", d.Upstream),
		slog.String("upstream_tool", d.UpstreamTool),
		slog.String("decision", d.Decision),
		slog.String("reason", d.Reason),
		slog.String("skill", d.Skill),
		slog.Duration("latency", d.Latency),
		slog.String("upstream_status", d.UpstreamStatus),
	)
}

func (g *Gateway) record(ctx context.Context, d Decision) {
	level := slog.LevelInfo
	if d.Decision == Deny {
		level = slog.LevelWarn
	}
	if g.log.Enabled(ctx, level) {
		g.log.LogAttrs(ctx, level, "mcp decision", slog.Any("decision", d))
	}
	if g.cfg.OnDecision != nil {
		g.cfg.OnDecision(d)
	}
}
