package export

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

func start(t *testing.T, cfg Config) (*Exporter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Metrics, cfg.Logger, cfg.Node = reg, testLogger(t), "node-a"
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := testContext(t)
	go e.Run(ctx)
	t.Cleanup(func() { cancel(); e.Close() })
	return e, reg
}

func dropped(e *Exporter, exporter, reason string) float64 {
	return testutil.ToFloat64(e.m.dropped.WithLabelValues(exporter, reason))
}

func TestSyslogCEFOverTCPAndTLS(t *testing.T) {
	caFile, serverTLS := testCA(t, t.TempDir())
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var r *syslogReceiver
			cfg := Config{Version: "1.2|3"}
			if tc.tls {
				r = startSyslogReceiver(t, serverTLS)
				cfg.Syslog = SyslogConfig{Addr: r.ln.Addr().String(), TLS: true, CAFile: caFile}
			} else {
				r = startSyslogReceiver(t, nil)
				cfg.Syslog = SyslogConfig{Addr: r.ln.Addr().String()}
			}
			e, _ := start(t, cfg)
			e.Write(decision("triage-bot", "helpdesk_get_ticket", gateway.Allow, ""))
			e.Write(decision("rogue=bot", "helpdesk_close_ticket", gateway.Deny, "no grant for helpdesk/close_ticket\nsecond line \\ done"))

			for i, want := range []struct {
				agent, tool, act, reason string
				pri, sev                 int
			}{
				{"triage-bot", "helpdesk_get_ticket", "allow", "", 13*8 + 6, 3},
				{"rogue=bot", "helpdesk_close_ticket", "deny", "no grant for helpdesk/close_ticket\nsecond line \\ done", 13*8 + 4, 7},
			} {
				m, err := parse5424(r.next(t))
				if err != nil {
					t.Fatalf("message %d is not RFC 5424: %v", i, err)
				}
				if m.pri != want.pri || m.app != "portcullis" || m.msgID != "decision" || m.procID != strconv.Itoa(os.Getpid()) {
					t.Errorf("message %d header: %+v", i, m)
				}
				ev, err := parseCEF(m.msg)
				if err != nil {
					t.Fatalf("message %d: %v in %q", i, err, m.msg)
				}
				h := ev.header
				if h[0] != "0" || h[1] != "Portcullis" || h[2] != "Portcullis" || h[3] != "1.2|3" || h[4] != "mcp-"+want.act ||
					h[5] != "tools/call "+want.act || h[6] != strconv.Itoa(want.sev) {
					t.Errorf("message %d CEF header: %q", i, h)
				}
				x := ev.ext
				if x["suser"] != want.agent || x["act"] != want.act || x["reason"] != want.reason || x["dvchost"] != "node-a" ||
					x["src"] != "127.0.0.1" || x["suid"] != "k-7" || x["rt"] != "1796418000123" || x["cn1"] != "1234" {
					t.Errorf("message %d CEF extensions: %q", i, x)
				}
				if ev.label("tool") != want.tool || ev.label("persona") != "support-triage" || ev.label("stage") != "policy" ||
					ev.label("dlpFindings") != "email:2,iban:1" || ev.label("method") != "tools/call" {
					t.Errorf("message %d CEF labelled fields: %q", i, x)
				}
			}
		})
	}
}

func TestSyslogJSON(t *testing.T) {
	r := startSyslogReceiver(t, nil)
	e, _ := start(t, Config{Syslog: SyslogConfig{Addr: r.ln.Addr().String(), Format: FormatJSON}})
	e.Write(decision("triage-bot", "helpdesk_get_ticket", gateway.Deny, "argument project: SECRET not allowed"))
	m, err := parse5424(r.next(t))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(m.msg), &rec); err != nil {
		t.Fatalf("json body: %v: %q", err, m.msg)
	}
	if rec["agent"] != "triage-bot" || rec["tool"] != "helpdesk_get_ticket" || rec["decision"] != "deny" || rec["node"] != "node-a" ||
		rec["time"] != "2026-12-04T21:00:00.123456Z" || rec["latencyMs"] != 1.234 {
		t.Errorf("json record: %v", rec)
	}
	if _, ok := rec["seq"]; ok {
		t.Error("an exported record carries the trail's seq")
	}
}

// TestSyslogReconnects: a receiver that restarts (on the same port) gets
// the records sent after it is back.
func TestSyslogReconnects(t *testing.T) {
	r := startSyslogReceiver(t, nil)
	addr := r.ln.Addr().String()
	e, _ := start(t, Config{Syslog: SyslogConfig{Addr: addr}})
	e.Write(decision("before", "t", gateway.Allow, ""))
	r.next(t)
	r.ln.Close()
	// Dropping is allowed while it is down; once it is back, later records
	// arrive.
	r2 := &syslogReceiver{frames: r.frames}
	var err error
	for try := 0; try < 50; try++ {
		if r2.ln, err = listenOn(addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Skipf("port %s not free again: %v", addr, err)
	}
	serveFrames(t, r2)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		e.Write(decision("after-"+strconv.Itoa(i), "t", gateway.Allow, ""))
		select {
		case f := <-r.frames:
			if strings.Contains(f, "suser=after-") {
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("no record arrived after the receiver came back")
}

func TestWebhookAlertsWithRetries(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var auth []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // retried
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got = append(got, m)
		auth = append(auth, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("s3cret-token\n"), 0o600)
	e, reg := start(t, Config{Webhook: WebhookConfig{URL: srv.URL + "/alerts", TokenFile: tok}})
	e.Write(decision("ok-bot", "helpdesk_get_ticket", gateway.Allow, ""))
	e.Write(decision("rogue-bot", "helpdesk_close_ticket", gateway.Deny, "no grant"))
	e.Write(decision("flaky-bot", "helpdesk_get_ticket", gateway.Fail, "upstream timeout"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		// The worker counts a batch once its last POST returned.
		if n >= 2 && testutil.ToFloat64(e.m.sent.WithLabelValues("webhook")) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0]["agent"] != "rogue-bot" || got[0]["decision"] != "deny" || got[1]["agent"] != "flaky-bot" || got[1]["decision"] != "error" {
		t.Fatalf("webhook got %v, want the deny then the error (allow is not an alert)", got)
	}
	if auth[0] != "Bearer s3cret-token" {
		t.Errorf("Authorization %q", auth[0])
	}
	if n := testutil.ToFloat64(e.m.sent.WithLabelValues("webhook")); n != 2 {
		t.Errorf("portcullis_export_records_total{exporter=webhook} = %v, want 2", n)
	}
	for _, r := range []string{dropQueueFull, dropSendFailed, dropShutdown} {
		if n := dropped(e, "webhook", r); n != 0 {
			t.Errorf("%v drops (%s) counted though every alert arrived", n, r)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "portcullis_export_records_total"); err != nil || n != 1 {
		t.Errorf("portcullis_export_records_total not served by the registry: %d series, %v", n, err)
	}
}

// TestWebhookRefusalIsNotRetried: a 4xx answer loses the record at once,
// counted as send_failed, and the next alert is still sent.
func TestWebhookRefusalIsNotRetried(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		agents = append(agents, m["agent"].(string))
		mu.Unlock()
		if m["agent"] == "refused" {
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	e, _ := start(t, Config{Webhook: WebhookConfig{URL: srv.URL, On: []string{gateway.Deny}}})
	e.Write(decision("refused", "t", gateway.Deny, "x"))
	deadline := time.Now().Add(20 * time.Second)
	for dropped(e, "webhook", dropSendFailed) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	e.Write(decision("accepted", "t", gateway.Deny, "x"))
	for testutil.ToFloat64(e.m.sent.WithLabelValues("webhook")) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(agents, ",") != "refused,accepted" || dropped(e, "webhook", dropSendFailed) != 1 {
		t.Fatalf("posts %v, send_failed %v: want one try of the refused record, then the next one", agents, dropped(e, "webhook", dropSendFailed))
	}
}

// TestDeadAndStalledDestinationsNeverBlockWrite: an OTLP collector that
// accepts and never answers, a syslog receiver that never reads, and a
// webhook that never answers: Write keeps returning, every destination
// counts drops, and Close ends within its drain time.
func TestDeadAndStalledDestinationsNeverBlockWrite(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	reg := prometheus.NewRegistry()
	e, err := New(Config{
		Node: "node-a", Logger: testLogger(t), Metrics: reg, QueueSize: 8, Drain: time.Second,
		OTLP:    OTLPConfig{Endpoint: stalledListener(t)},
		Syslog:  SyslogConfig{Addr: stalledListener(t), TLS: true}, // the handshake never completes
		Webhook: WebhookConfig{URL: srv.URL, On: []string{gateway.Allow, gateway.Deny, gateway.Fail}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := testContext(t)
	defer cancel()
	go e.Run(ctx)
	const n = 5000
	for i := range n {
		e.Write(decision("bot", "helpdesk_get_ticket", gateway.Allow, strconv.Itoa(i)))
	}
	for _, x := range []string{"otlp", "syslog", "webhook"} {
		if d := dropped(e, x, dropQueueFull); d < n-3*8-maxBatch { // at most a queue and a batch in flight
			t.Errorf("%s: %v of %d records counted as dropped (queue_full)", x, d, n)
		}
	}
	cancel()
	if err := e.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	e.Write(decision("after-close", "t", gateway.Allow, "")) // must not panic or block
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{OTLP: OTLPConfig{Endpoint: "collector"}}, "--otlp-endpoint"},
		{Config{OTLP: OTLPConfig{Endpoint: "c:4317", Protocol: "udp"}}, "--otlp-protocol"},
		{Config{OTLP: OTLPConfig{CAFile: "/ca.pem"}}, "--otlp-ca-file needs --otlp-endpoint"},
		{Config{Syslog: SyslogConfig{Addr: "siem:6514", Format: "leef"}}, "--syslog-format"},
		{Config{Syslog: SyslogConfig{Addr: "siem"}}, "--syslog-addr"},
		{Config{Syslog: SyslogConfig{Addr: "siem:514", CAFile: "/ca.pem"}}, "--syslog-ca-file needs --syslog-tls"},
		{Config{Syslog: SyslogConfig{Addr: "siem:514", Facility: 24}}, "--syslog-facility"},
		{Config{Webhook: WebhookConfig{URL: "ftp://x/y"}}, "--webhook-url"},
		{Config{Webhook: WebhookConfig{URL: "https://user:pw@x/y"}}, "--webhook-token-file"},
		{Config{Webhook: WebhookConfig{URL: "https://x/y", On: []string{"maybe"}}}, "--webhook-on"},
		{Config{Webhook: WebhookConfig{URL: "https://x/y", TokenFile: "/nonexistent/token"}}, "--webhook-token-file"},
		{Config{Syslog: SyslogConfig{Addr: "siem:6514", TLS: true, CAFile: "/nonexistent/ca.pem"}}, "--syslog-ca-file"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one naming %s", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error repeats the URL's password: %v", err)
		}
	}
}

func TestParseDecisions(t *testing.T) {
	for in, want := range map[string]string{"": "deny,error", "deny": "deny", " allow , deny,allow": "allow,deny", "error": "error"} {
		got, err := ParseDecisions(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseDecisions(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseDecisions("deny,blocked"); err == nil || !strings.Contains(err.Error(), `"blocked"`) {
		t.Errorf("a bad decision: %v", err)
	}
}

func TestOffWritesNothing(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.Enabled() || len(e.workers) != 0 {
		t.Fatal("an empty config enabled a destination")
	}
	e.Write(decision("a", "t", gateway.Allow, ""))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookHTTPS: an https webhook is verified against --webhook-ca-file;
// without it (system roots) the test server's certificate is refused.
func TestWebhookHTTPS(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		got <- fmt.Sprint(m["agent"])
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	untrusted, _ := start(t, Config{Webhook: WebhookConfig{URL: srv.URL, Attempts: 1}})
	untrusted.Write(decision("not-trusted", "t", gateway.Deny, "x"))
	deadline := time.Now().Add(20 * time.Second)
	for dropped(untrusted, "webhook", dropSendFailed) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if dropped(untrusted, "webhook", dropSendFailed) != 1 {
		t.Fatal("a webhook with an unknown certificate was not refused")
	}

	e, _ := start(t, Config{Webhook: WebhookConfig{URL: srv.URL, CAFile: ca}})
	e.Write(decision("trusted", "t", gateway.Deny, "x"))
	select {
	case a := <-got:
		if a != "trusted" {
			t.Fatalf("the webhook got %q", a)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("nothing reached the https webhook verified by --webhook-ca-file")
	}
}

// TestWebhookErrorsHideTheURLSecret: a webhook URL's path and query often
// hold its secret; a failed POST's logged error names only the host.
func TestWebhookErrorsHideTheURLSecret(t *testing.T) {
	addr := stalledListener(t)
	w, err := newWebhook(Config{Webhook: WebhookConfig{URL: "http://" + addr + "/services/T0/B0/s3cretpath?token=s3cretquery", Attempts: 1, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := testContext(t)
	cancel() // the POST fails at once, with a *url.Error
	_, err = w.send(ctx, []*gateway.Decision{{Decision: gateway.Deny}})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %v: want the host and no secret", err)
	}
}

// TestCloseBeforeRunCountsWhatWasQueued: records queued on a node that
// never started serving are counted as dropped at shutdown, not lost
// silently.
func TestCloseBeforeRunCountsWhatWasQueued(t *testing.T) {
	e, err := New(Config{Syslog: SyslogConfig{Addr: "127.0.0.1:1"}, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.Write(decision("a", "t", gateway.Allow, ""))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	go e.Run(context.Background()) // after Close: starts nothing
	if d := dropped(e, "syslog", dropShutdown); d != 3 {
		t.Fatalf("dropped{reason=shutdown} = %v, want 3", d)
	}
}
