package appliance

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/netpolicy"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

// NetworkConfig configures the node's network enforcement at the NIC.
type NetworkConfig struct {
	// Ifaces get the XDP program (portcullis server --xdp-iface). Empty:
	// the program is loaded but attached nowhere, and the rules are
	// enforced in userspace only.
	Ifaces []string
	// Mode is auto (native where the driver supports it, else generic),
	// native or generic.
	Mode string
	// Fail is "open" (default: when XDP cannot load or attach, run with the
	// rules enforced in userspace only, warn loudly and export
	// portcullis_xdp_fallback 1) or "closed" (refuse to start).
	Fail string
}

func (n NetworkConfig) validate() error {
	if _, err := xdp.ParseAttachMode(n.Mode); err != nil {
		return fmt.Errorf("--xdp-mode: %w", err)
	}
	switch n.Fail {
	case "", "open", "closed":
	default:
		return fmt.Errorf("--xdp-fail %q: want open or closed", n.Fail)
	}
	for _, i := range n.Ifaces {
		if i == "" || len(i) > 15 || strings.ContainsAny(i, "/ ") {
			return fmt.Errorf("--xdp-iface %q: not an interface name", i)
		}
	}
	return nil
}

// openNetwork loads the XDP datapath and the enforcer that feeds it from
// the state, and builds the metrics registry of the admin listener.
func (a *Appliance) openNetwork() error {
	n := a.cfg.Network
	mode, _ := xdp.ParseAttachMode(n.Mode)
	log := a.log.With("component", "xdp")
	if len(n.Ifaces) == 0 {
		log.Info("no --xdp-iface given: network rules are enforced in userspace only")
	}
	dp, err := xdp.New(xdp.Config{Ifaces: n.Ifaces, Mode: mode, FailClosed: n.Fail == "closed", Logger: log})
	if err != nil {
		return err
	}
	a.datapath = dp
	a.netpolicy, err = netpolicy.New(netpolicy.Config{State: a.store, Datapath: dp, Logger: a.log.With("component", "netpolicy"),
		Ready: a.ready.Load})
	if err != nil {
		return err
	}
	a.metrics = prometheus.NewRegistry()
	a.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		dp.Collector(),
		a.netpolicy.Collector(),
	)
	return nil
}

// Metrics is the registry served at GET /metrics on the admin listener;
// components may register their collectors with it.
func (a *Appliance) Metrics() *prometheus.Registry { return a.metrics }

// networkRoutes are the admin API's network routes.
func (a *Appliance) networkRoutes() []api.Route {
	metrics := promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{})
	return []api.Route{
		{Method: http.MethodGet, Path: "/xdp/stats", Handler: xdp.StatsHandler(a.datapath)},
		{Method: http.MethodPost, Path: "/geoip", Handler: netpolicy.ImportHandler(a.node, nil)},
		{Method: http.MethodGet, Path: "/metrics", Handler: metrics},
	}
}

// adminHandler serves GET /metrics (Prometheus; the admin token as bearer
// token, as for every admin route) beside the admin API, all behind the
// userspace network check.
func (a *Appliance) adminHandler(adminAPI http.Handler, token string) http.Handler {
	metrics := promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"GET /metrics needs the admin token as bearer token"}}`)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	mux.Handle("/", adminAPI)
	return a.netpolicy.Guard(netpolicy.Admin, mux)
}

// personaListeners opens, moves and closes the personas' dedicated
// listeners (spec.endpoint.listen) as the state changes. Each serves its
// persona's MCP endpoint at /mcp, behind the userspace network check.
type personaListeners struct {
	a       *Appliance
	tls     *tls.Config
	log     *slog.Logger
	mu      sync.Mutex
	running map[string]*personaServer // by persona
	failed  map[string]string         // persona → last error logged
}

type personaServer struct {
	listen string
	srv    *http.Server
	ln     net.Listener
}

// run reconciles after every state change, and retries listeners that
// could not be opened (the address may appear later) every few seconds.
func (p *personaListeners) run(ctx context.Context) error {
	ch, cancel := p.a.store.Subscribe()
	defer cancel()
	retry := time.NewTicker(3 * time.Second)
	defer retry.Stop()
	for {
		p.reconcile()
		select {
		case <-ctx.Done():
			p.closeAll(p.a.cfg.ShutdownTimeout)
			return nil
		case <-ch:
		case <-retry.C:
		}
	}
}

func (p *personaListeners) reconcile() {
	want := map[string]string{}
	for name, per := range p.a.store.Current().Personas {
		if per.Endpoint != nil && per.Endpoint.Listen != "" {
			want[name] = per.Endpoint.Listen
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, s := range p.running {
		if want[name] != s.listen {
			delete(p.running, name)
			p.log.Info("closing persona listener", "persona", name, "listen", s.listen)
			go stopServer(s.srv, 5*time.Second)
		}
	}
	for name, addr := range want {
		if p.running[name] != nil {
			continue
		}
		var (
			ln  net.Listener
			err error
		)
		if p.a.cfg.Dev && !isLoopback(addr) {
			err = errors.New("dev mode serves plain HTTP on loopback only (use 127.0.0.1:PORT)")
		} else {
			ln, err = listen(addr, p.tls)
		}
		if err != nil {
			if msg := addr + ": " + err.Error(); p.failed[name] != msg {
				p.failed[name] = msg
				p.log.Error("cannot open persona listener; retrying", "persona", name, "listen", addr, "err", err)
			}
			continue
		}
		delete(p.failed, name)
		h := p.a.netpolicy.Guard(netpolicy.Persona, p.a.gw.PersonaHandler(name))
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)}
		p.running[name] = &personaServer{listen: addr, srv: srv, ln: ln}
		p.log.Info("persona listener open", "persona", name, "listen", ln.Addr().String(), "path", "/mcp")
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("persona listener failed", "persona", name, "err", err)
			}
		}()
	}
	for name := range p.failed {
		if _, ok := want[name]; !ok {
			delete(p.failed, name)
		}
	}
}

// Addrs returns the open persona listeners' addresses.
func (p *personaListeners) addrs() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.running))
	for name, s := range p.running {
		out[name] = s.ln.Addr().String()
	}
	return out
}

func (p *personaListeners) closeAll(timeout time.Duration) {
	p.mu.Lock()
	servers := p.running
	p.running = map[string]*personaServer{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopServer(s.srv, timeout)
		}()
	}
	wg.Wait()
}

func stopServer(s *http.Server, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.Close()
	}
}

// PersonaAddrs returns the addresses of the open dedicated persona
// listeners, by persona.
func (a *Appliance) PersonaAddrs() map[string]string { return a.personas.addrs() }
