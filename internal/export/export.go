package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// Config configures every export destination. A destination whose address
// is empty is off; with all of them off the Exporter takes nothing.
type Config struct {
	// Node names this node in every exported record.
	Node string
	// Version is the product version in CEF headers and the OTel resource
	// (default: the binary's module version, or "dev").
	Version string
	OTLP    OTLPConfig
	Syslog  SyslogConfig
	Webhook WebhookConfig
	// QueueSize bounds each destination's queue of records (default 4096):
	// past it, new records are dropped and counted.
	QueueSize int
	// Drain bounds how long Close keeps sending what is queued (default 5s).
	Drain time.Duration
	// Logger receives the exporters' own lines (default: discarded).
	Logger *slog.Logger
	// Metrics, when set, registers the portcullis_export_* collectors.
	Metrics prometheus.Registerer
}

// Defaults.
const (
	DefaultQueueSize = 4096
	defaultDrain     = 5 * time.Second
	maxBatch         = 512
	sendTimeout      = 10 * time.Second
	backoffMin       = 500 * time.Millisecond
	backoffMax       = 30 * time.Second
	dropLogEvery     = 10 * time.Second
)

// Drop reasons, the "reason" label of portcullis_export_dropped_total.
const (
	dropQueueFull  = "queue_full"  // the destination's queue was full
	dropSendFailed = "send_failed" // sent and refused, or the destination unreachable
	dropShutdown   = "shutdown"    // still queued when Close's drain time ran out
)

func (c *Config) setDefaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Drain <= 0 {
		c.Drain = defaultDrain
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
}

// Validate reports the first setting that cannot work, naming its flag.
func (c *Config) Validate() error {
	if err := c.OTLP.validate(); err != nil {
		return err
	}
	if err := c.Syslog.validate(); err != nil {
		return err
	}
	return c.Webhook.validate()
}

// Enabled reports whether any destination is configured.
func (c *Config) Enabled() bool {
	return c.OTLP.Endpoint != "" || c.Syslog.Addr != "" || c.Webhook.URL != ""
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// checkHostPort validates a HOST:PORT flag value.
func checkHostPort(flag, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%s %q: want HOST:PORT", flag, v)
	}
	return nil
}

// isLoopback reports whether HOST:PORT names this machine.
func isLoopback(hostport string) bool {
	host, _, _ := net.SplitHostPort(hostport)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Exporter is the export gateway.Sink: it hands every decision to each
// configured destination's bounded queue and never waits.
type Exporter struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	workers []*worker
	otlp    *otlpExporter // nil: OTLP off

	mu     sync.RWMutex // guards closed against Write
	closed bool
	run    sync.Once
	wg     sync.WaitGroup
	stop   chan struct{} // closed by Close: workers drain and exit
	cancel context.CancelFunc
	ctx    context.Context // the workers' sends; canceled when Drain runs out
}

var _ gateway.Sink = (*Exporter)(nil)

// New validates cfg and opens each configured destination (nothing is
// dialled yet: connections are made by Run's workers, and retried).
func New(cfg Config) (_ *Exporter, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	e := &Exporter{cfg: cfg, log: cfg.Logger, stop: make(chan struct{})}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.m, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	if cfg.OTLP.Endpoint != "" {
		o, err := newOTLP(cfg, e.m)
		if err != nil {
			return nil, fmt.Errorf("export: otlp: %w", err)
		}
		e.otlp = o
		e.add("otlp", nil, o.send)
	}
	if cfg.Syslog.Addr != "" {
		s, err := newSyslog(cfg)
		if err != nil {
			return nil, fmt.Errorf("export: syslog: %w", err)
		}
		e.add("syslog", nil, s.send)
	}
	if cfg.Webhook.URL != "" {
		w, err := newWebhook(cfg)
		if err != nil {
			return nil, fmt.Errorf("export: webhook: %w", err)
		}
		e.add("webhook", w.wants, w.send)
	}
	return e, nil
}

func (e *Exporter) add(name string, filter func(*gateway.Decision) bool, send sendFunc) {
	w := &worker{name: name, ch: make(chan *gateway.Decision, e.cfg.QueueSize), filter: filter, send: send, log: e.log.With("exporter", name), m: e.m,
		full: e.m.dropped.WithLabelValues(name, dropQueueFull)}
	e.m.queue(name, w.ch)
	e.workers = append(e.workers, w)
}

// Write queues d for every destination that takes it, without blocking: a
// full queue drops the record for that destination and counts it. Called
// by the gateway's one audit goroutine (gateway.Sink); d is shared by the
// destinations and nobody changes it. Safe after Close (it drops nothing
// and sends nothing).
func (e *Exporter) Write(d gateway.Decision) error {
	if len(e.workers) == 0 {
		return nil
	}
	e.fan(d)
	return nil
}

// fan is Write's body, apart so that Write with nothing configured does
// not move d to the heap.
func (e *Exporter) fan(d gateway.Decision) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	for _, w := range e.workers {
		w.put(&d)
	}
}

// Run starts one sender goroutine per destination and returns when ctx is
// done (cancellation is not an error). The senders outlive Run: the
// gateway drains its last records into Write after ctx is canceled, and
// Close sends those (within Config.Drain) before it stops them.
func (e *Exporter) Run(ctx context.Context) error {
	e.run.Do(func() {
		e.mu.RLock()
		defer e.mu.RUnlock()
		if e.closed {
			return
		}
		for _, w := range e.workers {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				w.loop(e.ctx, e.stop)
			}()
		}
		if len(e.workers) > 0 {
			e.log.Info("exporting decisions", "to", e.names())
		}
	})
	<-ctx.Done()
	return nil
}

func (e *Exporter) names() string {
	var s []string
	for _, w := range e.workers {
		s = append(s, w.name)
	}
	return strings.Join(s, ",")
}

// Close stops taking records, sends what is queued, and shuts the OTLP
// providers down (a final metrics export), all within Config.Drain (plus
// at most a second for the final export): what is not sent by then is
// dropped and counted. Safe after a partial New, before Run, and more than
// once.
func (e *Exporter) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.run.Do(func() {}) // a later Run starts nothing
	close(e.stop)
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	deadline := time.Now().Add(e.cfg.Drain) // one bound for the whole of Close
	t := time.NewTimer(e.cfg.Drain)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		e.cancel() // sends in flight give up; workers drop the rest
		<-done
	}
	e.cancel()
	for _, w := range e.workers {
		if n := len(w.ch); n > 0 { // never started (Close before Run)
			e.m.dropped.WithLabelValues(w.name, dropShutdown).Add(float64(n))
		}
	}
	var errs []error
	if e.otlp != nil {
		if min := time.Now().Add(time.Second); deadline.Before(min) {
			deadline = min
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		errs = append(errs, e.otlp.shutdown(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// sendFunc sends one batch of records (in arrival order) to a destination
// and returns how many of them were lost; err says why. It runs on the
// destination's own goroutine and may block up to its own timeouts; ctx is
// canceled when Close's drain time runs out.
type sendFunc func(ctx context.Context, batch []*gateway.Decision) (lost int, err error)

// worker feeds one destination from its bounded queue.
type worker struct {
	name   string
	ch     chan *gateway.Decision
	filter func(*gateway.Decision) bool // nil: every record
	send   sendFunc
	log    *slog.Logger
	m      *metrics
	full   prometheus.Counter // dropped{reason="queue_full"}, resolved once for put

	drops    atomic.Int64 // queue-full drops since the last log line
	lastDrop atomic.Int64 // unix nanos of that line
}

// put queues d, or drops and counts it when the queue is full. The first
// drop after a quiet spell is logged, then at most one line per
// dropLogEvery with the count since.
func (w *worker) put(d *gateway.Decision) {
	if w.filter != nil && !w.filter(d) {
		return
	}
	select {
	case w.ch <- d:
	default:
		w.full.Inc()
		n := w.drops.Add(1)
		now := time.Now().UnixNano()
		if last := w.lastDrop.Load(); now-last >= int64(dropLogEvery) && w.lastDrop.CompareAndSwap(last, now) {
			w.drops.Add(-n)
			w.log.Warn("export queue full: dropping records (the destination is slow or down; the audit trail keeps them)",
				"dropped", n, "queue", cap(w.ch))
		}
	}
}

// loop sends batches until stop is closed and the queue is empty (or ctx
// is canceled). After a failed send it waits, doubling from backoffMin to
// backoffMax, before the next try; records that arrive meanwhile queue up
// to the bound.
func (w *worker) loop(ctx context.Context, stop <-chan struct{}) {
	batch := make([]*gateway.Decision, 0, maxBatch)
	var backoff time.Duration
	stopping := false
	for {
		batch = batch[:0]
		if stopping {
			select {
			case d := <-w.ch:
				batch = append(batch, d)
			default:
				return // drained
			}
		} else {
			select {
			case d := <-w.ch:
				batch = append(batch, d)
			case <-stop:
				stopping = true
				continue
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case d := <-w.ch:
				batch = append(batch, d)
			default:
				break fill
			}
		}
		if ctx.Err() != nil {
			w.m.dropped.WithLabelValues(w.name, dropShutdown).Add(float64(len(batch) + len(w.ch)))
			for len(w.ch) > 0 {
				<-w.ch
			}
			return
		}
		lost, err := w.send(ctx, batch)
		if sent := len(batch) - lost; sent > 0 {
			w.m.sent.WithLabelValues(w.name).Add(float64(sent))
		}
		if lost > 0 {
			reason := dropSendFailed
			if ctx.Err() != nil {
				reason = dropShutdown // Close's drain ran out mid-send
			}
			w.m.dropped.WithLabelValues(w.name, reason).Add(float64(lost))
		}
		if err == nil {
			backoff = 0
			continue
		}
		w.m.errors.WithLabelValues(w.name).Inc()
		backoff = min(max(2*backoff, backoffMin), backoffMax)
		w.log.Warn("export failed; pausing before the next send", "err", err, "lost", lost, "pause", backoff)
		if stopping {
			continue // draining: no pause, ctx bounds it
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-stop:
			stopping = true
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// metrics are the exporters' Prometheus collectors.
type metrics struct {
	reg     prometheus.Registerer
	sent    *prometheus.CounterVec // exporter
	dropped *prometheus.CounterVec // exporter, reason
	errors  *prometheus.CounterVec // exporter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_export_records_total",
			Help: "Decision records delivered to an export destination (otlp, syslog, webhook)."}, []string{"exporter"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_export_dropped_total",
			Help: "Decision records an export destination lost: queue_full (it was slow or down), send_failed, shutdown. The audit trail keeps them."},
			[]string{"exporter", "reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_export_errors_total",
			Help: "Failed sends to an export destination (each is retried after a pause)."}, []string{"exporter"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sent, m.dropped, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("export: register metrics: %w", err)
		}
	}
	return m, nil
}

// queue registers the length of one destination's queue as a gauge.
func (m *metrics) queue(name string, ch chan *gateway.Decision) {
	if m.reg == nil {
		return
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_export_queue_length",
		Help: "Decision records waiting in an export destination's queue.", ConstLabels: prometheus.Labels{"exporter": name}},
		func() float64 { return float64(len(ch)) })
	_ = m.reg.Register(g) // a duplicate only loses the gauge
}
