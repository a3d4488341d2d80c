package export

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// BenchmarkWrite is the cost export adds to the gateway's audit goroutine
// per decision (Exporter.Write, beside the trail's own Write): off, one
// destination that keeps up, and three destinations that are all stuck
// (every record takes the drop path). ns/op is the added cost; drops/op
// says how often the queue was full.
func BenchmarkWrite(b *testing.B) {
	d := decision("triage-bot", "helpdesk_get_ticket", gateway.Allow, "")
	run := func(b *testing.B, cfg Config) {
		cfg.Logger = slog.New(slog.DiscardHandler)
		e, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := testContext(b)
		go e.Run(ctx)
		defer func() { cancel(); e.Close() }()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			e.Write(d)
		}
		b.StopTimer()
		var drops float64
		for _, w := range e.workers {
			drops += dropped(e, w.name, dropQueueFull)
		}
		b.ReportMetric(drops/float64(b.N), "drops/op")
	}
	b.Run("off", func(b *testing.B) { run(b, Config{}) })
	b.Run("syslog-live-receiver", func(b *testing.B) {
		run(b, Config{Syslog: SyslogConfig{Addr: discardListener(b)}})
	})
	b.Run("three-stuck", func(b *testing.B) {
		run(b, Config{QueueSize: 64, Drain: 1,
			OTLP:    OTLPConfig{Endpoint: stalled(b)},
			Syslog:  SyslogConfig{Addr: stalled(b), TLS: true},
			Webhook: WebhookConfig{URL: "http://" + stalled(b), On: []string{gateway.Allow}}})
	})
}

// BenchmarkSyslogFrame is the syslog goroutine's cost per record (CEF).
func BenchmarkSyslogFrame(b *testing.B) {
	d := decision("triage-bot", "helpdesk_get_ticket", gateway.Deny, "no grant for helpdesk/close_ticket")
	s := &syslogSender{cfg: SyslogConfig{Facility: defaultFacility, Format: FormatCEF}, node: "node-a", version: "dev", host: "host", procID: "1"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = s.frame(buf[:0], &d)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkOTLPRecord is the OTLP goroutine's cost per record before the
// export itself: a span with two stage children, a log record and two
// metric points through the OTel SDK.
func BenchmarkOTLPRecord(b *testing.B) {
	d := decision("triage-bot", "helpdesk_get_ticket", gateway.Allow, "")
	cfg := Config{Node: "node-a", Version: "dev", Logger: slog.New(slog.DiscardHandler), OTLP: OTLPConfig{Endpoint: "127.0.0.1:1"}}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	m, _ := newMetrics(nil)
	o, err := newOTLP(cfg, m)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o.record(&d)
		if i++; i%maxBatch == 0 {
			o.pending.take()
		}
	}
}

func discardListener(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, bufio.NewReader(c))
		}
	}()
	return ln.Addr().String()
}

func stalled(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var conns []net.Conn
	b.Cleanup(func() {
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}
