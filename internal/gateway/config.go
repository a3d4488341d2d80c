package gateway

import (
	"errors"
	"github.com/portcullis-gw/portcullis/internal/guard"
	"reflect"

	"fmt"
	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/policy"
	"github.com/portcullis-gw/portcullis/internal/state"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UpstreamSpec describes one upstream MCP server as the gateway needs it.
type UpstreamSpec struct {
	Name            string
	URL             string
	Transport       string        // TransportStreamable (default) or TransportSSE
	ToolPrefix      *string       // nil: the upstream's name; "": the upstream's own names
	Timeout         time.Duration // per call; 0: Config.UpstreamTimeout
	ProtocolVersion string        // pin; "": negotiate
	// Credential is what the gateway authenticates to the upstream with
	// (nil: none); UpstreamTransport applies it. A change reconnects.
	Credential *state.Credential
	// Environment (prod, staging, dev) and Egress (internal, external)
	// drive DLP data-flow control; "" is unknown (never refused by
	// environment) and internal.
	Environment, Egress string
}

// Upstream transports.
const (
	TransportStreamable = "streamable-http"
	TransportSSE        = "sse"
)

// prefix returns the exposed-name prefix.
func (u *UpstreamSpec) prefix() string {
	if u.ToolPrefix != nil {
		return *u.ToolPrefix
	}
	return u.Name
}

func (u *UpstreamSpec) same(o *UpstreamSpec) bool {
	samePrefix := (u.ToolPrefix == nil) == (o.ToolPrefix == nil) &&
		(u.ToolPrefix == nil || *u.ToolPrefix == *o.ToolPrefix)
	return u.Name == o.Name && u.URL == o.URL && u.Transport == o.Transport &&
		u.ProtocolVersion == o.ProtocolVersion && u.Timeout == o.Timeout && samePrefix &&
		reflect.DeepEqual(u.Credential, o.Credential)
}

// Role is a persona's compiled, default-deny policy; *policy.Role is the
// implementation. It must be immutable and safe for concurrent use.
type Role interface {
	// Upstreams lists the upstreams any grant of the role references.
	Upstreams() []string
	// ToolVisible reports whether upstream/tool is granted at all (listed).
	ToolVisible(upstream, tool string) bool
	// ToolExact reports whether a grant names upstream/tool exactly (not
	// by a "*" pattern): with a Guard, high-risk tools need one.
	ToolExact(upstream, tool string) bool
	// Allow decides a call with its decoded arguments.
	Allow(upstream, tool string, args map[string]any) policy.Decision
	// Resource reports whether the role may read/subscribe uri on upstream.
	Resource(upstream, uri string) bool
	// Prompt reports whether the role may use prompt name on upstream.
	Prompt(upstream, name string) bool
}

var _ Role = (*policy.Role)(nil)

// View is one immutable control-state snapshot, as the gateway sees it.
type View struct {
	Index     uint64
	Upstreams map[string]*UpstreamSpec
	// Role returns the persona's role, or nil for an unknown persona.
	Role func(persona string) Role
	// Describe returns the persona's description ("" if none); it becomes
	// the instructions agents receive. May be nil.
	Describe func(persona string) string
	// DLP holds the DLP rules of the personas that have any.
	DLP map[string][]state.DLPRule
	// Limits are the rate limits and breaker tuning of this view (nil:
	// none; see Config.Guard).
	Limits *guard.Plan
}

// Source provides views. View must be cheap (an atomic load): it is called
// on every request.
type Source interface {
	View() *View
	// Subscribe ticks after every change; cancel releases it.
	Subscribe() (ch <-chan struct{}, cancel func())
}

// Config configures a Gateway.
type Config struct {
	Logger *slog.Logger
	// Source supplies control-state views (see StateSource).
	Source Source
	// Authenticator maps a request's credential to a principal; its errors
	// become 401 with a WWW-Authenticate challenge: the Authenticator's
	// own if it is a Challenger, else authn.Challenge.
	Authenticator authn.Authenticator
	// Routes are extra endpoints served beside the persona endpoints
	// without the gateway's authentication (/.well-known/*, authorize,
	// token; see Route).
	Routes []Route
	// SessionKey seals session handles (32 bytes). Every node of a cluster
	// must use the same key; PreviousSessionKeys still open handles sealed
	// before a rotation.
	SessionKey          []byte
	PreviousSessionKeys [][]byte
	// SessionTTL bounds a session's life (default 24h).
	SessionTTL time.Duration
	// MaxBodyBytes bounds a request body (default 4 MiB); larger gets 413.
	MaxBodyBytes int64
	// MaxJSONDepth bounds how deep arrays and objects nest in a request
	// body, the envelope included (default 64); deeper is refused (400)
	// before anything decodes it.
	MaxJSONDepth int
	// MaxBatch bounds the messages of one JSON-RPC batch (2025-03-26
	// sessions; default 32): a larger batch is refused whole (400), none of
	// it processed.
	MaxBatch int
	// AllowedOrigins lists the browser origins allowed to call (exact
	// "scheme://host[:port]" or "*"). Empty: only same-origin requests.
	// Requests without an Origin header (non-browser agents) pass.
	AllowedOrigins []string
	// AllowedHosts, when set, lists the Host header values accepted (with or
	// without port); others get 403 (DNS rebinding defence).
	AllowedHosts []string
	// UpstreamTimeout is the default per-call upstream timeout (30s).
	UpstreamTimeout time.Duration
	// ListWait bounds how long a request waits for an upstream's tool,
	// resource or prompt list to load (3s); the persona's catalog is served
	// without that upstream meanwhile.
	ListWait time.Duration
	// HTTPClient calls upstreams; nil builds a pooled keep-alive client
	// whose requests without a deadline of their own are bounded (see
	// boundedTransport). Its Timeout must be zero: streams are long-lived,
	// and every call has its own deadline.
	HTTPClient *http.Client
	// Dialers connect the upstreams whose UpstreamSpec.Transport they are
	// keyed by (see Dialer); streamable-http and sse default to the
	// built-in HTTP dialer.
	Dialers map[string]Dialer
	// UpstreamTransport, when set, wraps the transport used for one upstream
	// (called once per upstream connection, again after its spec changes):
	// the hook for credential injection, e.g. a credential.Transport built
	// from spec.Credential. If the result implements io.Closer it is closed
	// with the connection. An error fails the calls to that upstream. The
	// agent's own credential is never forwarded whatever this does.
	UpstreamTransport func(spec *UpstreamSpec, base http.RoundTripper) (http.RoundTripper, error)
	// ServerName and ServerVersion identify the gateway to agents.
	ServerName, ServerVersion string
	// Sink, when set, receives every Decision record from a bounded queue
	// of AuditQueue records (default 4096), on a goroutine of its own: a
	// slow sink never delays a request; when the queue is full records are
	// dropped and counted (see Sink). Close waits up to AuditDrain (5s)
	// for the queue to drain.
	Sink       Sink
	AuditQueue int
	AuditDrain time.Duration
	// Guard, when set, is the guard stage's rate limits, concurrency caps
	// and circuit breakers (internal/guard), judged under View.Limits.
	Guard *guard.Guard
	// OnDecision, when set, is called with every Decision record
	// synchronously on the request's goroutine, before the agent's answer
	// is written. It must not block (tests and in-memory counters); the
	// audit trail uses Sink.
	OnDecision func(Decision)
	// DigestKey keys the argument and result digests of the records
	// (Decision.ArgsDigest, ResultDigest): HMAC-SHA256. Nil: no digests.
	// The appliance derives it from the HSM's MAC key, so every node of a
	// cluster computes the same digest for the same value.
	DigestKey []byte
	// ShareSessions, when set, receives what this gateway learns about
	// sessions that every node must honour (a session the agent ended, DLP
	// taint fingerprints), for replication to the other nodes, which hand
	// them to their gateway's ImportSessions. Called on the request's
	// goroutine: it must not block (batch and send elsewhere).
	ShareSessions func(*state.SessionEvents)
	// Metrics, when set, is where the gateway registers its Prometheus
	// collectors (the node's registry).
	Metrics prometheus.Registerer
	// KeepAlive is the interval of SSE comment keep-alives (15s).
	KeepAlive time.Duration
	// DLPKey keys DLP tokens and taint fingerprints. Every node of a
	// cluster must use the same key (the appliance derives it from the
	// HSM's MAC key); nil uses a random per-process key and warns.
	DLPKey dlp.MAC
	// ICAP, when set, also hands arguments and results to an ICAP service.
	ICAP *ICAPConfig
	// Behaviour, when set, is stage 6 (sequence rules, default runaway
	// protections, quarantine; see Behaviour): it judges every governed
	// request and observes every finished one.
	Behaviour Behaviour
}

func (c *Config) validate() error {
	if c.Source == nil {
		return errors.New("gateway config: Source is required")
	}
	if c.Authenticator == nil {
		return errors.New("gateway config: Authenticator is required")
	}
	if len(c.SessionKey) != 32 {
		return fmt.Errorf("gateway config: SessionKey must be 32 bytes, got %d", len(c.SessionKey))
	}
	if c.MaxBodyBytes < 0 || c.UpstreamTimeout < 0 || c.SessionTTL < 0 || c.ListWait < 0 || c.MaxJSONDepth < 0 || c.MaxBatch < 0 {
		return errors.New("gateway config: negative limit")
	}
	if c.ICAP != nil && (c.ICAP.Client == nil || (!c.ICAP.ReqMod && !c.ICAP.RespMod)) {
		return errors.New("gateway config: ICAP needs a Client and at least one of ReqMod, RespMod")
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout != 0 {
		return errors.New("gateway config: HTTPClient.Timeout must be zero (it would cut upstream streams; every call has its own deadline)")
	}
	if c.AuditQueue < 0 || c.AuditDrain < 0 {
		return errors.New("gateway config: negative audit queue or drain")
	}
	for name, d := range c.Dialers {
		if name == "" || d == nil {
			return fmt.Errorf("gateway config: dialer %q: needs a transport name and a Dialer", name)
		}
	}
	for _, r := range c.Routes {
		if err := r.validate(); err != nil {
			return fmt.Errorf("gateway config: %w", err)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.MaxJSONDepth == 0 {
		c.MaxJSONDepth = defaultMaxJSONDepth
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = defaultMaxBatch
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = 30 * time.Second
	}
	if c.ListWait == 0 {
		c.ListWait = 3 * time.Second
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 24 * time.Hour
	}
	if c.ServerName == "" {
		c.ServerName = "portcullis"
	}
	if c.ServerVersion == "" {
		c.ServerVersion = "dev"
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient(c.UpstreamTimeout)
	}
	if c.AuditQueue == 0 {
		c.AuditQueue = 4096
	}
	if c.AuditDrain == 0 {
		c.AuditDrain = 5 * time.Second
	}
}
