package netpolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/geoip"
	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

// State is what the enforcer reads: the local replicated state.
type State interface {
	Current() *state.Snapshot
	Subscribe() (<-chan struct{}, func())
}

var _ State = (*state.Store)(nil)

// Config configures an Enforcer.
type Config struct {
	// State is the node's replicated state. Required.
	State State
	// Datapath receives the rules. Required.
	Datapath *xdp.Datapath
	// Logger receives sync problems and refusals. Nil discards them.
	Logger *slog.Logger
	// Ready reports whether the node's state is complete (raft has replayed
	// its log). Until it is, Guard refuses requests on the data-plane
	// surfaces with 503: after a restart the state is the last snapshot
	// for a while, without the deny rules, revocations and expiries that
	// came after it. Nil: always ready. The admin surface is not gated.
	Ready func() bool
}

// Enforcer follows the state and publishes its network rules to the
// datapath, and checks HTTP requests against them in userspace.
type Enforcer struct {
	cfg Config
	log *slog.Logger
	dp  *xdp.Datapath

	mu       sync.Mutex // serializes sync
	geoBlob  []byte
	geoTable *geoip.Table
	// last is what was published: a change elsewhere in the state (an
	// upstream, a secret, a key of an unpinned persona) republishes
	// nothing, since every kernel map swap waits for an RCU grace period.
	last      *xdp.Rules
	lastGeo   *geoip.Table
	published atomic.Uint64 // rules actually pushed to the datapath

	listens atomic.Pointer[map[string]netip.AddrPort] // persona → dedicated listener
	shared  atomic.Pointer[sharedPolicy]              // personas without one
	index   atomic.Uint64                             // state index in force
	syncs   atomic.Uint64
	failed  atomic.Uint64
	refused [4]atomic.Uint64 // by Surface
}

// sharedPolicy judges requests on the shared gateway listener for personas
// with network rules but no dedicated listener (userspace only).
type sharedPolicy struct {
	policy *xdp.Policy
	listen map[string]netip.AddrPort // persona → synthetic listener
}

// New checks cfg and publishes the current state's rules once, so a node
// starts with its policy in force.
func New(cfg Config) (*Enforcer, error) {
	switch {
	case cfg.State == nil:
		return nil, errors.New("netpolicy: state is required")
	case cfg.Datapath == nil:
		return nil, errors.New("netpolicy: datapath is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Enforcer{cfg: cfg, log: cfg.Logger, dp: cfg.Datapath}
	empty := map[string]netip.AddrPort{}
	e.listens.Store(&empty)
	e.shared.Store(&sharedPolicy{policy: mustEmptyPolicy(), listen: map[string]netip.AddrPort{}})
	e.Sync()
	return e, nil
}

// Run republishes the rules after every state change, and when a pinned
// credential expires, until ctx ends. Cancellation is not an error.
func (e *Enforcer) Run(ctx context.Context) error {
	ch, cancel := e.cfg.State.Subscribe()
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.dp.Run(ctx) }()
	e.Sync()
	for {
		// Pins of personas without a dedicated listener expire in the
		// shared policy; the datapath handles its own (xdp.Datapath.Run).
		var (
			expiry <-chan time.Time
			timer  *time.Timer
		)
		if next := e.shared.Load().policy.NextExpiry(); !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), 0))
			expiry = timer.C
		}
		select {
		case <-ctx.Done():
			return <-done
		case <-ch:
		case <-expiry:
		}
		if timer != nil {
			timer.Stop()
		}
		e.Sync()
	}
}

func mustEmptyPolicy() *xdp.Policy {
	p, err := xdp.NewPolicy(xdp.Rules{}, nil)
	if err != nil {
		panic(err) // the empty policy always compiles
	}
	return p
}

// Sync publishes the current state's rules now. It returns the error that
// kept them from being published (the previous rules then stay in force).
func (e *Enforcer) Sync() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	snap := e.cfg.State.Current()
	start := time.Now()
	rules, problems := Compile(snap)
	for _, p := range problems {
		e.log.Error("network policy: entry left out", "err", p)
	}
	geo, err := e.geo(snap)
	if err != nil {
		e.failed.Add(1)
		e.log.Error("network policy: the replicated GeoIP table is unreadable; keeping the previous rules", "err", err)
		return err
	}
	var published error
	if e.last == nil || geo != e.lastGeo || !reflect.DeepEqual(rules, *e.last) {
		err := e.dp.SetRules(rules, geo)
		switch {
		case errors.Is(err, xdp.ErrKernelStale):
			// Userspace enforces the new rules; the datapath retries the
			// kernel by itself. Carry on so the gateway's view is current.
			e.failed.Add(1)
			e.log.Error("network policy: the kernel refused the new rules and keeps the previous ones; userspace enforces the new ones, retrying", "index", snap.Index, "err", err)
			published = fmt.Errorf("netpolicy: publish rules of state %d: %w", snap.Index, err)
		case err != nil:
			e.failed.Add(1)
			e.log.Error("network policy: rules not published; the previous rules stay in force", "index", snap.Index, "err", err)
			return fmt.Errorf("netpolicy: publish rules of state %d: %w", snap.Index, err)
		}
		e.last, e.lastGeo = &rules, geo
		e.published.Add(1)
		lvl, took := slog.LevelDebug, time.Since(start)
		if took > time.Second {
			lvl = slog.LevelWarn // the goal is ≤ 1s from commit to kernel
		}
		e.log.Log(context.Background(), lvl, "network policy published", "index", snap.Index, "listeners", len(rules.Listeners),
			"global_deny", len(rules.GlobalDeny), "global_allow", len(rules.GlobalAllow), "geo_ranges", geo.Len(), "took", took)
	}
	sr, sharedListen := CompileShared(snap)
	sp, err := xdp.NewPolicy(sr, geo)
	if err != nil {
		e.failed.Add(1)
		e.log.Error("network policy: rules of personas without a dedicated listener not published", "index", snap.Index, "err", err)
	} else {
		e.shared.Store(&sharedPolicy{policy: sp, listen: sharedListen})
	}
	listens := make(map[string]netip.AddrPort, len(rules.Listeners))
	for _, l := range rules.Listeners {
		listens[l.Name] = l.Listen
	}
	e.listens.Store(&listens)
	e.index.Store(snap.Index)
	e.syncs.Add(1)
	return published
}

// geo decodes the snapshot's GeoIP table, reusing the last one while the
// blob is unchanged. Callers hold e.mu.
func (e *Enforcer) geo(s *state.Snapshot) (*geoip.Table, error) {
	if len(s.GeoIP) == 0 {
		e.geoBlob, e.geoTable = nil, nil
		return nil, nil
	}
	if len(e.geoBlob) == len(s.GeoIP) && &e.geoBlob[0] == &s.GeoIP[0] {
		return e.geoTable, nil
	}
	t, err := geoip.Decode(s.GeoIP)
	if err != nil {
		return nil, err
	}
	e.geoBlob, e.geoTable = s.GeoIP, t
	return t, nil
}

// Index is the raft index of the state whose rules are in force.
func (e *Enforcer) Index() uint64 { return e.index.Load() }

// Listen returns a persona's dedicated listener address as published.
func (e *Enforcer) Listen(persona string) (netip.AddrPort, bool) {
	a, ok := (*e.listens.Load())[persona]
	return a, ok
}

// Surface names the listener a Guard protects; it decides the shape of the
// refusal (the admin API's error envelope or a JSON-RPC error).
type Surface int

// Surfaces.
const (
	Admin   Surface = iota // the admin API
	Gateway                // the shared agents' listener, /p/<persona>/mcp
	Persona                // a persona's dedicated listener
)

func (s Surface) String() string {
	switch s {
	case Admin:
		return "admin"
	case Gateway:
		return "gateway"
	case Persona:
		return "persona"
	}
	return "unknown"
}

// Explain says in words why a reason refuses a source.
func Explain(r xdp.Reason) string {
	switch r {
	case xdp.ReasonGlobalDeny:
		return "the source address is on the global deny list or outside the global allow list"
	case xdp.ReasonCIDR:
		return "the source address is not in the persona's allowed networks"
	case xdp.ReasonCountry:
		return "the source address is located in a country the persona does not admit"
	case xdp.ReasonPin:
		return "the source address is not the pinned address of a valid credential of this persona"
	case xdp.ReasonMalformed:
		return "malformed packet"
	}
	return "admitted"
}

// Guard checks every request against the network policy in force before
// next sees it: the userspace twin of the XDP verdict. On the admin surface
// loopback sources are exempt, as they are at the NIC (loopback traffic
// never passes an XDP-attached interface): a global allow list cannot lock
// the appliance's own console out.
func (e *Enforcer) Guard(s Surface, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s != Admin && e.cfg.Ready != nil && !e.cfg.Ready() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32603,
				"message": "the node is starting: its replicated state is not complete yet, so no request is judged; retry shortly"}})
			return
		}
		src := authn.ClientIP(r)
		if s == Admin && src.IsLoopback() {
			next.ServeHTTP(w, r)
			return
		}
		dst := localAddr(r)
		var (
			ok     bool
			reason xdp.Reason
			done   bool
		)
		if s == Gateway {
			if name, found := personaOfPath(r.URL.Path); found {
				if l, has := e.Listen(name); has {
					dst = l
				} else if sh := e.shared.Load(); sh.listen[name].IsValid() {
					ok, reason = sh.policy.Allow(src, sh.listen[name])
					done = true
				}
			}
		}
		if !done {
			ok, reason = e.dp.Allow(src, dst)
		}
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		e.refused[s].Add(1)
		lvl := slog.LevelInfo
		if e.dp.Kernel() && s == Persona {
			// The NIC should have dropped it already.
			lvl = slog.LevelWarn
		}
		e.log.Log(r.Context(), lvl, "network policy refused a request", "surface", s.String(), "src", src, "dst", dst, "reason", reason.String())
		msg := "forbidden by network policy (" + reason.String() + "): " + Explain(reason)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Portcullis-Network-Reason", reason.String())
		w.WriteHeader(http.StatusForbidden)
		if s == Admin {
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": "forbidden", "message": msg, "details": map[string]string{"reason": reason.String()}}})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32600, "message": msg, "data": map[string]string{"reason": reason.String()}}})
	})
}

func localAddr(r *http.Request) netip.AddrPort {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if a == nil {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// personaOfPath extracts <persona> from /p/<persona>/...
func personaOfPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/p/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, name != ""
}

var (
	descSyncs = prometheus.NewDesc("portcullis_netpolicy_syncs_total",
		"State changes the network policy followed.", nil, nil)
	descPublished = prometheus.NewDesc("portcullis_netpolicy_publishes_total",
		"Changed network rules pushed to the datapath.", nil, nil)
	descSyncFailures = prometheus.NewDesc("portcullis_netpolicy_sync_failures_total",
		"State changes whose network rules could not be published (the previous rules stayed in force).", nil, nil)
	descIndex = prometheus.NewDesc("portcullis_netpolicy_state_index",
		"Raft index of the state whose network rules are in force (kernel and userspace).", nil, nil)
	descAtNIC = prometheus.NewDesc("portcullis_netpolicy_nic_enforced",
		"1 when the XDP program is attached to at least one interface, so rules are enforced at the NIC; 0 when only the userspace check enforces them.", nil, nil)
	descRefused = prometheus.NewDesc("portcullis_netpolicy_refused_requests_total",
		"HTTP requests refused by the userspace network check, by listener.", []string{"surface"}, nil)
)

// Collector exports the enforcer's counters.
func (e *Enforcer) Collector() prometheus.Collector { return collector{e} }

type collector struct{ e *Enforcer }

var _ prometheus.Collector = collector{}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSyncs, descPublished, descSyncFailures, descIndex, descAtNIC, descRefused} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	ch <- prometheus.MustNewConstMetric(descSyncs, prometheus.CounterValue, float64(e.syncs.Load()))
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(e.published.Load()))
	ch <- prometheus.MustNewConstMetric(descSyncFailures, prometheus.CounterValue, float64(e.failed.Load()))
	ch <- prometheus.MustNewConstMetric(descIndex, prometheus.GaugeValue, float64(e.index.Load()))
	atNIC := 0.0
	if l := e.dp.Loader(); l != nil && len(l.Attachments()) > 0 {
		atNIC = 1
	}
	ch <- prometheus.MustNewConstMetric(descAtNIC, prometheus.GaugeValue, atNIC)
	for _, s := range []Surface{Admin, Gateway, Persona} {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(e.refused[s].Load()), s.String())
	}
}
