package xdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

// Config configures a Datapath.
type Config struct {
	// Ifaces to attach the XDP program to (portcullis server --xdp-iface).
	// Empty: the program is loaded but not attached, and the userspace
	// check still runs.
	Ifaces []string
	// Mode is how to attach; ModeAuto tries native and then generic.
	Mode AttachMode
	// FailClosed makes New fail when the program cannot be loaded or
	// attached. Otherwise (fail-open) the node keeps running with the rules
	// enforced in userspace only, and says so loudly.
	FailClosed bool
	// Logger receives the attach report and the fallback warning.
	Logger *slog.Logger
}

// Datapath is the node's network enforcement: the XDP program when it could
// be attached, and always the same decision in userspace for the gateway.
// Feed it rules with SetRules whenever the replicated state changes; it
// republishes by itself when a pinned credential expires.
type Datapath struct {
	log    *slog.Logger
	cfg    Config
	loader *Loader // nil when falling back to userspace
	downBy error   // why the kernel path is unavailable

	policy atomic.Pointer[Policy]
	user   [numReasons]atomic.Uint64

	mu      sync.Mutex // serializes SetRules/republish
	rules   Rules
	geo     *geoip.Table
	wake    chan struct{}
	updates atomic.Uint64
	stale   atomic.Bool // the kernel holds older rules than Allow
	failed  atomic.Uint64
	lastErr atomic.Pointer[string]

	closeOnce sync.Once
}

// ErrUnavailable wraps the reason the XDP program is not in use.
var ErrUnavailable = errors.New("xdp datapath unavailable")

// New loads and attaches the program. With FailClosed it returns an error
// when that fails; otherwise it logs a loud warning, exports
// portcullis_xdp_fallback 1, and returns a userspace-only Datapath.
func New(cfg Config) (*Datapath, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Datapath{log: log, cfg: cfg, wake: make(chan struct{}, 1)}
	empty, _ := NewPolicy(Rules{}, nil)
	d.policy.Store(empty)

	l, err := NewLoader(log)
	if err == nil && len(cfg.Ifaces) > 0 {
		if _, err = l.Attach(cfg.Ifaces, cfg.Mode); err != nil {
			l.Close()
		}
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		if cfg.FailClosed {
			return nil, fmt.Errorf("xdp: fail-closed: %w", err)
		}
		d.downBy = err
		log.Error("XDP NOT ACTIVE: network rules are enforced in userspace only; denied packets will reach the kernel's sockets",
			"err", err, "ifaces", cfg.Ifaces, "fail_mode", "open")
		return d, nil
	}
	d.loader = l
	return d, nil
}

// Kernel reports whether the XDP program is loaded (and attached, when
// interfaces were configured).
func (d *Datapath) Kernel() bool { return d.loader != nil }

// Unavailable returns why the kernel path is not in use, or nil.
func (d *Datapath) Unavailable() error { return d.downBy }

// Loader returns the kernel loader, or nil in userspace-only mode.
func (d *Datapath) Loader() *Loader { return d.loader }

// SetRules compiles rules with the GeoIP table and publishes them to the
// kernel and to Allow. Invalid rules change nothing. When the kernel refuses
// valid rules (ErrKernelStale), Allow enforces them all the same, the kernel
// keeps its previous rules, and Run retries the kernel every second.
func (d *Datapath) SetRules(r Rules, geo *geoip.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := NewPolicy(r, geo)
	if err != nil {
		return err
	}
	d.rules, d.geo = r, geo
	err = d.publish(p)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return err
}

// ErrKernelStale: the kernel refused a policy update. The userspace check
// (Allow) enforces the new rules; the kernel keeps the previous ones until
// a retry succeeds.
var ErrKernelStale = errors.New("xdp: kernel still enforces the previous rules")

// publish installs a compiled policy. Callers hold d.mu. Userspace takes
// the policy even when the kernel refuses it: a revocation or a new deny
// rule must not wait for the kernel to be enforced at all.
func (d *Datapath) publish(p *Policy) error {
	d.policy.Store(p)
	if d.loader != nil {
		if err := d.loader.Update(p); err != nil {
			d.failed.Add(1)
			d.stale.Store(true)
			msg := err.Error()
			d.lastErr.Store(&msg)
			return fmt.Errorf("%w (userspace enforces the new ones): %w", ErrKernelStale, err)
		}
	}
	d.stale.Store(false)
	d.updates.Add(1)
	return nil
}

// Policy returns the policy in force.
func (d *Datapath) Policy() *Policy { return d.policy.Load() }

// Allow is the userspace decision for a connection from src to dst, made
// with the policy in force; it counts into the userspace metrics.
func (d *Datapath) Allow(src netip.Addr, dst netip.AddrPort) (bool, Reason) {
	ok, r := d.policy.Load().Allow(src, dst)
	d.user[r].Add(1)
	return ok, r
}

// Run republishes the rules when pinned credentials expire, so an expired
// credential's IP leaves the datapath within a second, and retries every
// second while the kernel holds older rules than userspace (ErrKernelStale).
// It returns when ctx is done.
func (d *Datapath) Run(ctx context.Context) error {
	for {
		next := d.policy.Load().NextExpiry()
		var timer <-chan time.Time
		if !next.IsZero() {
			// Stopped by the next iteration's GC at the latest; a defer here
			// would pile up one closure per wake-up for the node's lifetime.
			t := time.NewTimer(max(time.Until(next), 0))
			timer = t.C
		}
		var retry <-chan time.Time
		if d.stale.Load() {
			retry = time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
			continue
		case <-timer:
		case <-retry:
		}
		d.mu.Lock()
		p, err := NewPolicy(d.rules, d.geo)
		if err == nil {
			err = d.publish(p)
		}
		d.mu.Unlock()
		if err != nil {
			d.log.Error("xdp: republishing the rules (pin expiry or kernel retry) failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

// Stats is what `portcullis xdp stats` shows.
type Stats struct {
	Kernel      bool              `json:"kernel"`
	Unavailable string            `json:"unavailable,omitempty"`
	Attachments []Attachment      `json:"attachments"`
	Packets     map[string]uint64 `json:"packets"`   // kernel verdicts per reason
	Userspace   map[string]uint64 `json:"userspace"` // userspace decisions per reason
	Updates     uint64            `json:"policyUpdates"`
	Failed      uint64            `json:"policyUpdateFailures"`
	LastError   string            `json:"lastError,omitempty"`
	Listeners   int               `json:"listeners"`
	GeoRanges   int               `json:"geoRanges"`
}

// Stats collects the counters.
func (d *Datapath) Stats() (Stats, error) {
	s := Stats{
		Kernel:    d.loader != nil,
		Userspace: map[string]uint64{},
		Updates:   d.updates.Load(),
		Failed:    d.failed.Load(),
	}
	p := d.policy.Load()
	s.Listeners = len(p.ordered)
	s.GeoRanges = p.geo.Len()
	if e := d.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	for i := range d.user {
		s.Userspace[Reason(i).String()] = d.user[i].Load()
	}
	if d.downBy != nil {
		s.Unavailable = d.downBy.Error()
	}
	if d.loader == nil {
		return s, nil
	}
	s.Attachments = d.loader.Attachments()
	c, err := d.loader.Stats()
	if err != nil {
		return s, err
	}
	s.Packets = c.ByName()
	return s, nil
}

// Close detaches and unloads the program. Safe to call more than once.
func (d *Datapath) Close() error {
	var err error
	d.closeOnce.Do(func() {
		if d.loader != nil {
			err = d.loader.Close()
		}
	})
	return err
}
