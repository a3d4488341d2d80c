package appliance

import (
	"fmt"
	"net/http"
	"strings"

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

// networkRoutes are the admin API's network routes. GET /v1/metrics is the
// one Prometheus endpoint, behind the API's admin-token check like every
// admin route; adminHandler serves it at /metrics too.
func (a *Appliance) networkRoutes() []api.Route {
	return []api.Route{
		{Method: http.MethodGet, Path: "/xdp/stats", Handler: xdp.StatsHandler(a.datapath)},
		{Method: http.MethodPost, Path: "/geoip", Handler: netpolicy.ImportHandler(api.TrackApplies(a.node), nil)},
		{Method: http.MethodGet, Path: metricsRoute, Handler: promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{})},
	}
}

// metricsRoute is where the admin API serves the metrics (under /v1).
const metricsRoute = "/metrics"

// adminHandler is the admin listener's handler: the admin API, behind the
// userspace network check. GET /metrics, where Prometheus scrapes by
// default, is the API's /v1/metrics under another path, so the metrics have
// one handler and one admin-token check.
func (a *Appliance) adminHandler(adminAPI http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+metricsRoute, func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/v1"+metricsRoute, ""
		adminAPI.ServeHTTP(w, r2)
	})
	mux.Handle("/", adminAPI)
	return a.netpolicy.Guard(netpolicy.Admin, mux)
}

// PersonaAddrs returns the addresses of the open dedicated persona
// listeners, by persona.
func (a *Appliance) PersonaAddrs() map[string]string { return a.personas.Addrs() }
