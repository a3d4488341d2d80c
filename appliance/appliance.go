// Package appliance is the one place where a Portcullis node is wired
// together: configuration → state store → raft node → data-plane gateway
// (agents' listener) and admin API (management listener), run under one
// errgroup and shut down gracefully.
//
// The data dir holds raft/ (log, stable store, zstd snapshots), admin-token
// (the admin's bearer token), node-id, audit/ (the audit trail; --audit-dir
// moves it), and in dev mode hsm/ (the node's own SoftHSM2 token and its
// 0600 PIN files). With an HSM the gateway's session
// key (it seals session handles) is derived from the HSM's MAC key, so every
// node holding the replicated MAC key derives the same one and no key file
// exists (see sessionKeys in hsm.go); a node without an HSM keeps a
// session-key file.
//
// Leaf packages never import appliance; it imports them. Anything that needs
// two components to know about each other is connected here, by passing
// interfaces in their Configs.
package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/behavior"
	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/export"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/guard"
	"github.com/portcullis-gw/portcullis/internal/netpolicy"
	"github.com/portcullis-gw/portcullis/internal/persona"
	"github.com/portcullis-gw/portcullis/internal/persona/personallm"
	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

// Config configures one node.
type Config struct {
	// Dev runs a development node: listeners must be loopback, plain HTTP
	// is allowed, and an admin token is generated in the data dir.
	Dev bool
	// DataDir holds everything the node keeps (raft log and snapshots, the
	// admin token, the node id). Required; created 0700.
	DataDir string
	// GatewayAddr is the agents' (data plane) listener, HOST:PORT.
	GatewayAddr string
	// AdminAddr is the management listener (admin API, later the UI).
	AdminAddr string
	// RaftAddr is the node-to-node raft listener.
	RaftAddr string
	// SnapshotThreshold and SnapshotInterval tune raft snapshots (log
	// entries since the last one; how often to check). Zero: the cluster
	// package's defaults.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// NodeID is the stable raft id; empty uses the one stored in the data
	// dir, or makes one on first start.
	NodeID string
	// AdminTokenFile holds the admin bearer token; default
	// DataDir/admin-token. If it does not exist it is created (0600) with a
	// new random token.
	AdminTokenFile string
	// TLSCertFile and TLSKeyFile serve both listeners over TLS. Required
	// unless Dev.
	TLSCertFile, TLSKeyFile string
	// HSM selects the PKCS#11 token that seals backend secrets (set
	// TokenLabel and PINFile; ModulePath defaults to SoftHSM2). Zero value: a
	// dev node makes its own SoftHSM2 token under DataDir/hsm; a production
	// node runs without an HSM, so secrets cannot be stored, and says so.
	HSM hsm.Config
	// SecretCacheTTL bounds how long the gateway keeps an unsealed backend
	// secret in memory: 0 means 30s, negative unseals on every call.
	SecretCacheTTL time.Duration
	// ICAPURL (icap://HOST[:PORT]/SERVICE), when set, hands tool arguments
	// and results to an ICAP service (an existing enterprise DLP) after the
	// gateway's own DLP. ICAPModes lists "reqmod" and/or "respmod" (default
	// both); ICAPFailOpen passes messages uninspected when the service is
	// down (default: refuse them); ICAPTimeout bounds one exchange (10s).
	ICAPURL      string
	ICAPModes    []string
	ICAPFailOpen bool
	ICAPTimeout  time.Duration
	// Logger receives the node's logs. Nil discards them.
	Logger *slog.Logger
	// ShutdownTimeout bounds graceful shutdown of the listeners (default 10s).
	ShutdownTimeout time.Duration
	// Network configures enforcement at the NIC (XDP); see NetworkConfig.
	Network NetworkConfig
	// Join, on a node's first start, is the admin URL of a cluster member
	// to join with the token in JoinTokenFile (later starts ignore both:
	// the node is a member).
	Join          string
	JoinTokenFile string
	// JoinCAFile verifies an https Join URL's certificate (default: the
	// system roots).
	JoinCAFile string
	// MaxStale is how long a node that does not hear from the leader keeps
	// serving agents from its last state (default 30s); then it answers 503.
	MaxStale time.Duration
	// TrustJoinKey, in dev mode, trusts a joining node's HSM wrapping key as
	// the Security Officer; nil runs this binary's `secret trust-join-key`.
	TrustJoinKey func(ctx context.Context, pubDER []byte) error
	// PersonaModel, when its URL is set, lets `persona draft` ask an
	// on-premises OpenAI-compatible model which skills fit (the drafter's
	// ability rules still decide every tool). Empty URL: the offline
	// deterministic drafter only.
	PersonaModel personallm.Config
	// Audit configures the node's audit trail (see AuditConfig).
	Audit AuditConfig
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AdminTokenFile == "" && c.DataDir != "" {
		c.AdminTokenFile = filepath.Join(c.DataDir, "admin-token")
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("a data directory is required (--data-dir)")
	}
	for _, l := range []struct{ flag, addr string }{
		{"--gateway-addr", c.GatewayAddr}, {"--admin-addr", c.AdminAddr}, {"--raft-addr", c.RaftAddr},
	} {
		if l.addr == "" {
			return fmt.Errorf("%s is required", l.flag)
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("%s %q: want HOST:PORT", l.flag, l.addr)
		}
		if c.Dev && !isLoopback(l.addr) {
			return fmt.Errorf("%s %q: dev mode listens on loopback only (127.0.0.1, ::1, localhost)", l.flag, l.addr)
		}
	}
	if c.GatewayAddr == c.AdminAddr && !strings.HasSuffix(c.AdminAddr, ":0") {
		return errors.New("--gateway-addr and --admin-addr must differ: agents and admins use separate listeners")
	}
	if !c.Dev && (c.TLSCertFile == "" || c.TLSKeyFile == "") {
		return errors.New("serving without TLS needs --dev; otherwise pass --tls-cert and --tls-key")
	}
	return c.Network.validate()
}

func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Appliance is one running node.
type Appliance struct {
	cfg   Config
	log   *slog.Logger
	ready atomic.Bool

	store     *state.Store
	node      *cluster.Node
	gw        *gateway.Gateway
	gwSource  gateway.Source
	guard     *guard.Guard
	behaviour *behavior.Engine
	reportMu  sync.Mutex           // guards reported
	reported  map[string]time.Time // agent → its last automatic incident report
	reports   sync.WaitGroup       // automatic incident reports being written
	keystore  *hsm.Keystore        // nil: no HSM
	admin     *http.Server
	gateway   *http.Server
	adminLn   net.Listener
	gwLn      net.Listener

	tlsCfg    *tls.Config
	datapath  *xdp.Datapath
	netpolicy *netpolicy.Enforcer
	metrics   *prometheus.Registry
	personas  *gateway.Listeners
	advisor   persona.Advisor // nil: offline drafting only
	audit     *audit.Log
	export    *export.Exporter
	arepl     auditRepl // auditrepl.go

	nodeID     string
	adminToken string
	ident      *identity // nil: no HSM, no cluster
	share      sessionShare

	keyMu sync.Mutex // one key ceremony at a time on this HSM
}

// New prepares a node: it opens the data dir, the raft node and both
// listeners, so configuration and port problems surface before Run. Close
// releases everything, also after a failed New.
func New(cfg Config) (*Appliance, error) { return newAppliance(context.Background(), cfg) }

// newAppliance is New; ctx bounds only a first start's join of a cluster.
func newAppliance(ctx context.Context, cfg Config) (_ *Appliance, err error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	a := &Appliance{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("appliance: create data dir: %w", err)
	}
	token, created, err := loadOrCreateToken(cfg.AdminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("appliance: admin token: %w", err)
	}
	if created {
		a.log.Info("wrote a new admin token", "file", cfg.AdminTokenFile)
	}
	nodeID := cfg.NodeID
	if nodeID == "" {
		if nodeID, err = loadOrCreateNodeID(filepath.Join(cfg.DataDir, "node-id")); err != nil {
			return nil, fmt.Errorf("appliance: node id: %w", err)
		}
	}

	var tlsCfg *tls.Config
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("appliance: load TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	a.tlsCfg = tlsCfg

	a.nodeID, a.adminToken = nodeID, token
	// A node joining a cluster gets the cluster's secret keys through the
	// HSM ceremony; it must not make keys of its own first.
	identDir := filepath.Join(cfg.DataDir, "cluster")
	_, statErr := os.Stat(filepath.Join(identDir, "node.crt"))
	joining := cfg.Join != "" && errors.Is(statErr, os.ErrNotExist)
	if joining && cfg.JoinTokenFile == "" {
		return nil, errors.New("appliance: --join needs --join-token-file (the token `portcullis cluster join-token create` printed)")
	}
	if a.keystore, err = openKeystore(cfg, a.log.With("component", "hsm"), !joining); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if joining && a.keystore == nil {
		return nil, errors.New("appliance: joining a cluster needs an HSM (--hsm-token; dev mode: SoftHSM2, apt install softhsm2)")
	}

	a.store = state.NewStore(a.log.With("component", "state"))
	ccfg := cluster.Config{
		NodeID:    nodeID,
		DataDir:   filepath.Join(cfg.DataDir, "raft"),
		BindAddr:  cfg.RaftAddr,
		FSM:       a.store,
		Logger:    a.log.With("component", "cluster"),
		Bootstrap: cfg.Join == "",

		SnapshotThreshold: cfg.SnapshotThreshold,
		SnapshotInterval:  cfg.SnapshotInterval,
	}
	if a.keystore != nil {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		a.ident, err = openIdentity(ictx, identDir, nodeID, a.keystore, a.store)
		if err == nil && !joining {
			err = a.ident.issueOwn()
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("appliance: %w", err)
		}
		ccfg.TLS, ccfg.Codec, ccfg.Peer = a.ident.tlsConfig(), state.OutcomeCodec{}, a.peerHandler()
	}
	if err := a.openReplicas(); err != nil { // before raft replays its log
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if a.node, err = cluster.New(ccfg); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if joining {
		if err := a.join(ctx); err != nil {
			return nil, fmt.Errorf("appliance: %w", err)
		}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.keystore.EnsureKeys(ectx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("appliance: HSM keys: %w", err)
		}
	}

	if err := a.openNetwork(); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	a.registerClusterMetrics()

	sessionKey, prevKeys, err := a.sessionKeys()
	if err != nil {
		return nil, fmt.Errorf("appliance: session key: %w", err)
	}
	dlpKey, err := a.dlpKey()
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if cfg.PersonaModel.URL != "" {
		mc := cfg.PersonaModel
		mc.Logger = cfg.Logger.With("component", "persona-model")
		llm, err := personallm.New(mc)
		if err != nil {
			return nil, fmt.Errorf("appliance: %w", err)
		}
		a.advisor = llm
		a.log.Info("persona drafting asks a language model", "source", llm.Source())
	}
	icapCfg, err := icapConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	a.gwSource = gateway.StateSource(a.store)
	gwCfg := gateway.Config{
		DLPKey:              dlpKey,
		ICAP:                icapCfg,
		Logger:              a.log.With("component", "gateway"),
		Source:              a.gwSource,
		Authenticator:       &authn.APIKeys{State: a.store},
		SessionKey:          sessionKey,
		PreviousSessionKeys: prevKeys,
		UpstreamTransport:   a.upstreamTransport,
		ServerName:          "portcullis",
		Metrics:             a.metrics, // the one registry, served at /metrics
		ShareSessions:       a.share.add,
	}
	if cfg.Dev {
		// A loopback server is what DNS rebinding attacks reach; accept
		// only Host headers that name the loopback listener.
		host, _, _ := net.SplitHostPort(cfg.GatewayAddr)
		gwCfg.AllowedHosts = []string{host, "localhost", "127.0.0.1", "::1"}
	}
	if err := a.openGuard(&gwCfg); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if a.behaviour, err = a.openBehaviour(nodeID); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	gwCfg.Behaviour = a.behaviour
	if err := a.openAudit(&gwCfg); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	if a.gw, err = gateway.New(gwCfg); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	a.store.OnSessionEvents(a.gw.ImportSessions)

	adminAPI, err := api.New(api.Config{
		Store:      a.store,
		Cluster:    a.node,
		AdminToken: token,
		Ready:      a.ready.Load,
		Status:     a.objectStatus,
		Drafter:    a.draftPersona,
		Routes:     slices.Concat(a.secretRoutes(), a.networkRoutes(), a.clusterRoutes(), a.auditRoutes(), a.auditReplRoutes(), a.toolsRoutes(), a.incidentRoutes(), a.behaviourRoutes()),
		// GeoIP databases (POST /v1/geoip) are the largest uploads: the
		// IP2Location IPv6 CSV is ~40 MB.
		MaxBodyBytes: 64 << 20,
		Validate:     validateObject,
		Node: state.Node{LoopbackOnly: cfg.Dev, Listeners: []state.Listener{
			{Name: "gateway", Addr: cfg.GatewayAddr}, {Name: "admin", Addr: cfg.AdminAddr}, {Name: "raft", Addr: cfg.RaftAddr}}},
		Logger:       a.log.With("component", "api"),
		OnAdminWrite: a.recordAdminWrite, // audit.go
	})
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	gw := a.gatewayHandler()

	if a.adminLn, err = listen(cfg.AdminAddr, tlsCfg); err != nil {
		return nil, fmt.Errorf("appliance: admin listener: %w", err)
	}
	if a.gwLn, err = listen(cfg.GatewayAddr, tlsCfg); err != nil {
		return nil, fmt.Errorf("appliance: gateway listener: %w", err)
	}
	a.personas, err = gateway.NewListeners(gateway.ListenersConfig{
		Gateway:      a.gw,
		State:        a.store,
		TLS:          tlsCfg,
		LoopbackOnly: cfg.Dev,
		Guard: func(_ string, h http.Handler) http.Handler {
			return a.netpolicy.Guard(netpolicy.Persona, a.auditGuard(h))
		},
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          a.log.With("component", "listeners"),
	})
	if err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	errLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	a.admin = &http.Server{Handler: a.adminHandler(adminAPI), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	a.gateway = &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	return a, nil
}

// objectStatus is the admin API's runtime status of an object: for an
// Upstream, what this node's gateway last saw of it.
func (a *Appliance) objectStatus(k state.Kind, name string) any {
	if k != state.KindUpstream {
		return nil
	}
	if st, ok := a.gw.UpstreamStatus(name); ok {
		return st
	}
	return nil
}

func listen(addr string, tlsCfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg.Clone())
	}
	return ln, nil
}

// gatewayHandler is the data-plane listener's handler: /healthz, and the
// gateway's persona endpoints (/p/<persona>/mcp) for everything else.
func (a *Appliance) gatewayHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("/", a.netpolicy.Guard(netpolicy.Gateway, a.staleGuard(a.auditGuard(a.gw.Handler()))))
	return mux
}

func (a *Appliance) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !a.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"starting"}`)
		return
	}
	if !a.serving() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"stale","staleSeconds":%.1f}`, a.node.Staleness().Seconds())
		return
	}
	if a.auditDown() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"audit-down"}`)
		return
	}
	fmt.Fprint(w, `{"status":"ok"}`)
}

// AdminAddr is the admin listener's address (useful with port 0).
func (a *Appliance) AdminAddr() string { return a.adminLn.Addr().String() }

// GatewayAddr is the gateway listener's address.
func (a *Appliance) GatewayAddr() string { return a.gwLn.Addr().String() }

// Ready reports whether the node serves (its state is complete).
func (a *Appliance) Ready() bool { return a.ready.Load() }

// Run serves until ctx is done, then shuts the listeners down gracefully.
// Cancellation is not an error. /healthz answers 200 on both listeners once
// raft has a leader and the state is fully replayed.
func (a *Appliance) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.node.Run(ctx) })
	g.Go(func() error { return a.leaderDuties(ctx) })
	g.Go(func() error { return a.shareSessions(ctx) })
	g.Go(func() error { return a.shareGuard(ctx) })
	g.Go(func() error { return a.guard.Run(ctx) })
	g.Go(func() error { return a.gw.Run(ctx) })
	g.Go(func() error { return a.behaviour.Run(ctx) })
	g.Go(func() error { return a.audit.Run(ctx) })
	g.Go(func() error { return a.export.Run(ctx) })
	g.Go(func() error { return a.runAuditReplication(ctx) })
	g.Go(func() error { return a.netpolicy.Run(ctx) })
	g.Go(func() error { return a.personas.Run(ctx) })
	g.Go(func() error { return serve(a.admin, a.adminLn) })
	g.Go(func() error { return serve(a.gateway, a.gwLn) })
	g.Go(func() error {
		if err := a.node.WaitReady(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		a.ready.Store(true)
		snap := a.store.Current()
		a.log.Info("node serving", "admin", a.AdminAddr(), "gateway", a.GatewayAddr(), "raft", a.node.Addr(),
			"upstreams", len(snap.Upstreams), "personas", len(snap.Personas), "agents", len(snap.Agents))
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		a.shutdown()
		return nil
	})
	err := g.Wait()
	a.log.Info("node stopped")
	return err
}

// shutdown stops serving: health checks fail first (so a load balancer
// drains the node), the gateway ends agents' open streams (which would
// otherwise hold Shutdown until its timeout), then both servers finish the
// requests in flight. Connections still busy after ShutdownTimeout are cut.
func (a *Appliance) shutdown() {
	a.ready.Store(false)
	a.log.Info("shutting down; requests in flight may finish (a second signal exits at once)")
	if err := a.gw.Close(); err != nil {
		a.log.Warn("close gateway", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for name, s := range map[string]*http.Server{"admin": a.admin, "gateway": a.gateway} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				a.log.Warn("listener did not drain in time; closing its connections", "listener", name, "err", err)
				s.Close()
			}
		}()
	}
	wg.Wait()
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Close releases everything New opened. Safe after a partial New and more
// than once.
func (a *Appliance) Close() error {
	var errs []error
	for _, s := range []*http.Server{a.admin, a.gateway} {
		if s != nil {
			s.Close()
		}
	}
	for _, ln := range []net.Listener{a.adminLn, a.gwLn} {
		if ln != nil {
			ln.Close()
		}
	}
	a.reports.Wait() // before the trail closes
	if a.gw != nil {
		errs = append(errs, a.gw.Close())
	}
	if a.audit != nil { // after the gateway has drained its records into it
		errs = append(errs, a.audit.Close())
	}
	if a.export != nil {
		errs = append(errs, a.export.Close())
	}
	errs = append(errs, a.closeAuditReplication()) // before raft stops
	if a.node != nil {
		errs = append(errs, a.node.Close())
	}
	if a.keystore != nil {
		errs = append(errs, a.keystore.Close())
	}
	if a.personas != nil {
		errs = append(errs, a.personas.Close())
	}
	if a.datapath != nil {
		errs = append(errs, a.datapath.Close())
	}
	return errors.Join(errs...)
}

// Run starts a node with cfg and serves until SIGINT or SIGTERM (or ctx).
// The first signal shuts down gracefully; a second one, while requests
// still drain, ends the process at once.
func Run(ctx context.Context, cfg Config) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // restores the default action: terminate
	a, err := newAppliance(ctx, cfg)
	if err != nil {
		return err
	}
	runErr := a.Run(ctx)
	return errors.Join(runErr, a.Close())
}
