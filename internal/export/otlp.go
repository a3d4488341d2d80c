package export

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// OTLPConfig exports logs, traces and metrics to an OpenTelemetry
// collector with the OTel Go SDK.
type OTLPConfig struct {
	// Endpoint is the collector's HOST:PORT; empty: OTLP is off.
	Endpoint string
	// Protocol is "grpc" (default; port 4317 by convention) or "http"
	// (OTLP/HTTP protobuf, /v1/logs, /v1/traces, /v1/metrics; port 4318).
	Protocol string
	// Insecure sends in plaintext. Default: plaintext to a loopback
	// endpoint without CAFile, TLS to any other.
	Insecure *bool
	// CAFile verifies the collector's certificate (default: system roots).
	CAFile string
	// MetricInterval is the period of metric exports (default 10s).
	MetricInterval time.Duration
}

// OTLP protocols.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

func (c *OTLPConfig) validate() error {
	if c.Endpoint == "" {
		if c.CAFile != "" {
			return errors.New("--otlp-ca-file needs --otlp-endpoint")
		}
		return nil
	}
	if err := checkHostPort("--otlp-endpoint", c.Endpoint); err != nil {
		return err
	}
	switch c.Protocol {
	case "":
		c.Protocol = ProtocolGRPC
	case ProtocolGRPC, ProtocolHTTP:
	default:
		return fmt.Errorf("--otlp-protocol %q: want grpc or http", c.Protocol)
	}
	if c.Insecure != nil && *c.Insecure && c.CAFile != "" {
		return errors.New("--otlp-insecure and --otlp-ca-file exclude each other")
	}
	if c.MetricInterval < 0 {
		return fmt.Errorf("--otlp-metric-interval %v: want a positive duration", c.MetricInterval)
	}
	if c.MetricInterval == 0 {
		c.MetricInterval = 10 * time.Second
	}
	return nil
}

func (c *OTLPConfig) insecure() bool {
	if c.Insecure != nil {
		return *c.Insecure
	}
	return c.CAFile == "" && isLoopback(c.Endpoint)
}

// otlpExporter turns decisions into OTel log records, spans and metric
// points. Logs and spans are batched by the worker and exported
// synchronously on its goroutine (so a slow collector fills the worker's
// bounded queue, where drops are counted, rather than an SDK queue that
// drops silently); metrics are aggregated in memory and exported by the
// SDK's periodic reader.
type otlpExporter struct {
	logs    sdklog.Exporter
	spans   sdktrace.SpanExporter
	lp      *sdklog.LoggerProvider
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	logger  otellog.Logger
	tracer  trace.Tracer
	pending *pending
	node    string

	decisions metric.Int64Counter
	latency   metric.Float64Histogram
}

const scope = "github.com/portcullis-gw/portcullis/internal/export"

const otlpTimeout = 5 * time.Second

func newOTLP(cfg Config, m *metrics) (_ *otlpExporter, err error) {
	c := cfg.OTLP
	o := &otlpExporter{pending: &pending{}, node: cfg.Node}
	res := resource.NewSchemaless(
		attribute.String("service.name", "portcullis"),
		attribute.String("service.instance.id", cfg.Node),
		attribute.String("service.version", cfg.Version),
	)
	var mexp sdkmetric.Exporter
	insecure := c.insecure()
	host, _, _ := net.SplitHostPort(c.Endpoint)
	if c.Protocol == ProtocolHTTP {
		var lo []otlploghttp.Option
		var to []otlptracehttp.Option
		var mo []otlpmetrichttp.Option
		lo = append(lo, otlploghttp.WithEndpoint(c.Endpoint), otlploghttp.WithTimeout(otlpTimeout), otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
		to = append(to, otlptracehttp.WithEndpoint(c.Endpoint), otlptracehttp.WithTimeout(otlpTimeout), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		mo = append(mo, otlpmetrichttp.WithEndpoint(c.Endpoint), otlpmetrichttp.WithTimeout(otlpTimeout))
		if insecure {
			lo, to, mo = append(lo, otlploghttp.WithInsecure()), append(to, otlptracehttp.WithInsecure()), append(mo, otlpmetrichttp.WithInsecure())
		} else {
			t, err := tlsConfig(host, c.CAFile, "--otlp-ca-file")
			if err != nil {
				return nil, err
			}
			lo, to, mo = append(lo, otlploghttp.WithTLSClientConfig(t)), append(to, otlptracehttp.WithTLSClientConfig(t)), append(mo, otlpmetrichttp.WithTLSClientConfig(t))
		}
		if o.logs, err = otlploghttp.New(context.Background(), lo...); err != nil {
			return nil, err
		}
		if o.spans, err = otlptracehttp.New(context.Background(), to...); err != nil {
			return nil, err
		}
		if mexp, err = otlpmetrichttp.New(context.Background(), mo...); err != nil {
			return nil, err
		}
	} else {
		var lo []otlploggrpc.Option
		var to []otlptracegrpc.Option
		var mo []otlpmetricgrpc.Option
		lo = append(lo, otlploggrpc.WithEndpoint(c.Endpoint), otlploggrpc.WithTimeout(otlpTimeout), otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}))
		to = append(to, otlptracegrpc.WithEndpoint(c.Endpoint), otlptracegrpc.WithTimeout(otlpTimeout), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		mo = append(mo, otlpmetricgrpc.WithEndpoint(c.Endpoint), otlpmetricgrpc.WithTimeout(otlpTimeout))
		if insecure {
			lo, to, mo = append(lo, otlploggrpc.WithInsecure()), append(to, otlptracegrpc.WithInsecure()), append(mo, otlpmetricgrpc.WithInsecure())
		} else {
			t, err := tlsConfig(host, c.CAFile, "--otlp-ca-file")
			if err != nil {
				return nil, err
			}
			cr := credentials.NewTLS(t)
			lo, to, mo = append(lo, otlploggrpc.WithTLSCredentials(cr)), append(to, otlptracegrpc.WithTLSCredentials(cr)), append(mo, otlpmetricgrpc.WithTLSCredentials(cr))
		}
		if o.logs, err = otlploggrpc.New(context.Background(), lo...); err != nil {
			return nil, err
		}
		if o.spans, err = otlptracegrpc.New(context.Background(), to...); err != nil {
			return nil, err
		}
		if mexp, err = otlpmetricgrpc.New(context.Background(), mo...); err != nil {
			return nil, err
		}
	}
	o.lp = sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(o.pending),
		sdklog.WithAllowKeyDuplication()) // record builds unique keys; skips the SDK's dedup map
	o.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(o.pending))
	o.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(&countedMetrics{Exporter: mexp, m: m, log: cfg.Logger}, sdkmetric.WithInterval(c.MetricInterval))))
	o.logger = o.lp.Logger(scope)
	o.tracer = o.tp.Tracer(scope)
	meter := o.mp.Meter(scope)
	if o.decisions, err = meter.Int64Counter("portcullis.decisions", metric.WithUnit("{request}"),
		metric.WithDescription("Governed requests by persona and decision (allow, deny, error).")); err != nil {
		return nil, err
	}
	if o.latency, err = meter.Float64Histogram("portcullis.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of governed requests, as the gateway measured them."),
		metric.WithExplicitBucketBoundaries(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)); err != nil {
		return nil, err
	}
	return o, nil
}

// send records the batch as log records, spans and metric points, then
// exports the logs and spans. Both exports are tried; a batch is lost when
// either failed (what reached the collector stays there).
func (o *otlpExporter) send(ctx context.Context, batch []*gateway.Decision) (int, error) {
	for _, d := range batch {
		o.record(d)
	}
	logs, spans := o.pending.take()
	ctx, cancel := context.WithTimeout(ctx, otlpTimeout)
	defer cancel()
	var errs []error
	if err := o.logs.Export(ctx, logs); err != nil {
		errs = append(errs, fmt.Errorf("export logs: %w", err))
	}
	if err := o.spans.ExportSpans(ctx, spans); err != nil {
		errs = append(errs, fmt.Errorf("export spans: %w", err))
	}
	if len(errs) > 0 {
		return len(batch), errors.Join(errs...)
	}
	return 0, nil
}

// record emits one decision: a server span for the request with a child
// per stage verdict, a log record in that span's context, and the metric
// points. A stage span runs from the previous verdict (or the request's
// arrival) to its own verdict's time (gateway.Verdict.At): the time since
// the stage before judged the call, which includes stages that had
// nothing to say.
func (o *otlpExporter) record(d *gateway.Decision) {
	end := d.Time.Add(d.Latency)
	attrs := o.attributes(d)
	name := d.Method
	if d.Tool != "" {
		name += " " + d.Tool
	}
	ctx, span := o.tracer.Start(context.Background(), name, trace.WithTimestamp(d.Time),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	var from time.Duration // each stage span runs from the verdict before it to its own
	for _, v := range d.Verdicts {
		at := min(max(v.At, from), d.Latency)
		if v.At == 0 { // a verdict without a time: the whole request
			from, at = 0, d.Latency
		}
		_, s := o.tracer.Start(ctx, "stage "+v.Stage, trace.WithTimestamp(d.Time.Add(from)), trace.WithAttributes(
			attribute.String("portcullis.stage", v.Stage), attribute.String("portcullis.outcome", v.Outcome),
			attribute.String("portcullis.reason", v.Reason)))
		if v.Outcome == gateway.Deny || v.Outcome == gateway.Fail {
			s.SetStatus(codes.Error, v.Reason)
		}
		s.End(trace.WithTimestamp(d.Time.Add(at)))
		from = at
	}
	if d.Decision == gateway.Fail {
		span.SetStatus(codes.Error, d.Reason)
	}

	var r otellog.Record
	r.SetTimestamp(d.Time)
	r.SetObservedTimestamp(time.Now())
	r.SetEventName("portcullis.decision")
	switch d.Decision {
	case gateway.Deny:
		r.SetSeverity(otellog.SeverityWarn)
		r.SetSeverityText("WARN")
	case gateway.Fail:
		r.SetSeverity(otellog.SeverityError)
		r.SetSeverityText("ERROR")
	default:
		r.SetSeverity(otellog.SeverityInfo)
		r.SetSeverityText("INFO")
	}
	r.SetBody(attribute.StringValue("mcp decision"))
	if len(d.Verdicts) > 0 {
		vs := make([]attribute.Value, len(d.Verdicts))
		for i, v := range d.Verdicts {
			vs[i] = attribute.MapValue(attribute.String("stage", v.Stage), attribute.String("outcome", v.Outcome), attribute.String("reason", v.Reason))
		}
		attrs = append(attrs, attribute.KeyValue{Key: "portcullis.verdicts", Value: attribute.SliceValue(vs...)})
	}
	r.AddAttributes(attrs...)
	o.logger.Emit(ctx, r)
	span.End(trace.WithTimestamp(end))

	set := metric.WithAttributeSet(attribute.NewSet(attribute.String("persona", d.Persona), attribute.String("decision", d.Decision)))
	o.decisions.Add(context.Background(), 1, set)
	o.latency.Record(context.Background(), d.Latency.Seconds(), set)
}

// attributes are a decision's fields as OTel attributes (empty ones left
// out); DLP findings as one count per detector.
func (o *otlpExporter) attributes(d *gateway.Decision) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 24)
	str := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	str("portcullis.node", o.node)
	str("portcullis.agent", d.Agent)
	str("portcullis.persona", d.Persona)
	str("portcullis.key_id", d.KeyID)
	str("client.address", d.ClientIP)
	str("mcp.session.id", d.Session)
	str("mcp.protocol.version", d.Revision)
	str("mcp.method.name", d.Method)
	str("portcullis.tool", d.Tool)
	str("portcullis.upstream", d.Upstream)
	str("portcullis.upstream_tool", d.UpstreamTool)
	str("portcullis.skill", d.Skill)
	str("portcullis.decision", d.Decision)
	str("portcullis.reason", d.Reason)
	str("portcullis.stage", d.Stage())
	str("portcullis.upstream_status", d.UpstreamStatus)
	str("portcullis.dlp.request", d.DLPRequest)
	str("portcullis.dlp.response", d.DLPResponse)
	str("portcullis.icap", d.ICAP)
	a = append(a, attribute.Float64("portcullis.latency_ms", float64(d.Latency.Microseconds())/1e3))
	for id, n := range d.DLPFindings {
		a = append(a, attribute.Int("portcullis.dlp.findings."+id, n))
	}
	return a
}

func (o *otlpExporter) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range []interface{ Shutdown(context.Context) error }{o.lp, o.tp, o.mp, o.logs, o.spans} {
		if s != nil {
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("otlp shutdown: %w", err)
	}
	return nil
}

// pending is the log and span processor of the providers: it keeps what
// the worker emitted until the worker exports it (sdk's batch processors
// would drop silently when the collector is slow).
type pending struct {
	mu    sync.Mutex
	logs  []sdklog.Record
	spans []sdktrace.ReadOnlySpan
}

var (
	_ sdklog.Processor       = (*pending)(nil)
	_ sdktrace.SpanProcessor = (*pending)(nil)
)

func (p *pending) take() ([]sdklog.Record, []sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, s := p.logs, p.spans
	p.logs, p.spans = nil, nil
	return l, s
}

func (p *pending) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.mu.Lock()
	p.logs = append(p.logs, r.Clone())
	p.mu.Unlock()
	return nil
}

func (p *pending) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

func (p *pending) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (p *pending) OnEnd(s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	p.spans = append(p.spans, s)
	p.mu.Unlock()
}

func (p *pending) Shutdown(context.Context) error   { return nil }
func (p *pending) ForceFlush(context.Context) error { return nil }

// countedMetrics counts and logs failed metric exports itself, so the
// SDK's global error handler is not needed.
type countedMetrics struct {
	sdkmetric.Exporter
	m    *metrics
	log  interface{ Warn(string, ...any) }
	last atomic.Int64 // unix nanos of the last line
}

func (c *countedMetrics) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := c.Exporter.Export(ctx, rm)
	if err != nil {
		c.m.errors.WithLabelValues("otlp-metrics").Inc()
		now := time.Now().UnixNano()
		if last := c.last.Load(); now-last >= int64(dropLogEvery) && c.last.CompareAndSwap(last, now) {
			c.log.Warn("otlp metrics export failed", "err", err)
		}
	}
	return nil
}
