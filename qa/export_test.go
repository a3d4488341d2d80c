package qa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// exportAgents applies the helpdesk upstream and persona with the given
// agents and returns an initialized client per agent.
func exportAgents(t *testing.T, n *harness.Node, h *helpdesk, agents ...string) map[string]*harness.RawClient {
	t.Helper()
	yaml := strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", h.url)
	for _, a := range agents {
		yaml += fmt.Sprintf("---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: %s}\nspec: {persona: support-triage}\n", a)
	}
	n.Apply(yaml)
	clients := map[string]*harness.RawClient{}
	for _, a := range agents {
		c := harness.NewRawClient(n.GatewayURL()+"/p/support-triage/mcp", n.NewKey(a), 1)
		if err := c.Initialize(); err != nil {
			t.Fatalf("%s: initialize: %v", a, err)
		}
		clients[a] = c
	}
	return clients
}

// allowAndDeny makes one call the policy allows and one it refuses.
func allowAndDeny(t *testing.T, c *harness.RawClient) {
	t.Helper()
	if r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"project": "SUPPORT", "id": 1}); err != nil || r.Error != nil || !strings.Contains(string(r.Result), "printer on fire") {
		t.Fatalf("an allowed call: %v %+v", err, r)
	}
	if r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"project": "SECRET", "id": 1}); err != nil || r.Error != nil || !strings.Contains(string(r.Result), "isError") {
		t.Fatalf("a call the policy refuses: %v %+v", err, r)
	}
}

// otelcolBinary builds qa/otelcol (its own module: the collector's
// otlpreceiver and fileexporter from the module proxy) once, cached under
// the user cache dir by the hash of its sources.
func otelcolBinary(t *testing.T) string {
	t.Helper()
	src := filepath.Join(harness.RepoRoot(t), "qa", "otelcol")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "portcullis-qa", "otelcol-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	t.Logf("building the OpenTelemetry collector (qa/otelcol; cached as %s)", bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build qa/otelcol: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// collector is a running OpenTelemetry collector writing what it receives
// to OTLP JSON files.
type collector struct {
	grpc, http string
	grpcTLS    string // gRPC and HTTP with TLS, the certificate issued by caFile
	httpTLS    string
	caFile     string
	dir        string
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	bin := otelcolBinary(t)
	c := &collector{grpc: harness.FreeAddr(t), http: harness.FreeAddr(t), grpcTLS: harness.FreeAddr(t), httpTLS: harness.FreeAddr(t), dir: t.TempDir()}
	var cert, key string
	c.caFile, cert, key = writeTestPKI(t, c.dir)
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc: {endpoint: "%[1]s"}
      http: {endpoint: "%[2]s"}
  otlp/tls:
    protocols:
      grpc: {endpoint: "%[3]s", tls: {cert_file: "%[5]s", key_file: "%[6]s"}}
      http: {endpoint: "%[4]s", tls: {cert_file: "%[5]s", key_file: "%[6]s"}}
exporters:
  file/logs: {path: %[7]s/logs.json, flush_interval: 100ms}
  file/traces: {path: %[7]s/traces.json, flush_interval: 100ms}
  file/metrics: {path: %[7]s/metrics.json, flush_interval: 100ms}
service:
  telemetry:
    metrics: {level: none}
  pipelines:
    logs: {receivers: [otlp, otlp/tls], exporters: [file/logs]}
    traces: {receivers: [otlp, otlp/tls], exporters: [file/traces]}
    metrics: {receivers: [otlp, otlp/tls], exporters: [file/metrics]}
`, c.grpc, c.http, c.grpcTLS, c.httpTLS, cert, key, c.dir)
	cfgFile := filepath.Join(c.dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	cmd := exec.Command(bin, "--config", cfgFile)
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("collector log:\n%s", logs.String())
			mu.Unlock()
		}
	})
	for _, addr := range []string{c.grpc, c.http, c.grpcTLS, c.httpTLS} {
		waitListening(t, addr, func() string { mu.Lock(); defer mu.Unlock(); return logs.String() })
	}
	return c
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func waitListening(t *testing.T, addr string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v\n%s", addr, err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// OTLP JSON, as the collector's file exporter writes it (one export
// request per line).
type otlpValue struct {
	StringValue *string     `json:"stringValue"`
	IntValue    json.Number `json:"intValue"`
	DoubleValue *float64    `json:"doubleValue"`
}
type otlpAttr struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}
type otlpAttrs []otlpAttr

func (a otlpAttrs) get(k string) string {
	for _, x := range a {
		if x.Key == k && x.Value.StringValue != nil {
			return *x.Value.StringValue
		}
	}
	return ""
}

type otlpResource struct {
	Attributes otlpAttrs `json:"attributes"`
}

type otlpLogs struct {
	ResourceLogs []struct {
		Resource  otlpResource `json:"resource"`
		ScopeLogs []struct {
			LogRecords []struct {
				SeverityText string    `json:"severityText"`
				EventName    string    `json:"eventName"`
				TraceID      string    `json:"traceId"`
				Attributes   otlpAttrs `json:"attributes"`
			} `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

type otlpSpan struct {
	TraceID           string    `json:"traceId"`
	SpanID            string    `json:"spanId"`
	ParentSpanID      string    `json:"parentSpanId"`
	Name              string    `json:"name"`
	StartTimeUnixNano string    `json:"startTimeUnixNano"`
	EndTimeUnixNano   string    `json:"endTimeUnixNano"`
	Attributes        otlpAttrs `json:"attributes"`
}

type otlpTraces struct {
	ResourceSpans []struct {
		Resource   otlpResource `json:"resource"`
		ScopeSpans []struct {
			Spans []otlpSpan `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpPoint struct {
	Attributes otlpAttrs   `json:"attributes"`
	AsInt      json.Number `json:"asInt"`
	Count      json.Number `json:"count"`
}

type otlpMetrics struct {
	ResourceMetrics []struct {
		ScopeMetrics []struct {
			Metrics []struct {
				Name      string                            `json:"name"`
				Sum       *struct{ DataPoints []otlpPoint } `json:"sum"`
				Histogram *struct{ DataPoints []otlpPoint } `json:"histogram"`
			} `json:"metrics"`
		} `json:"scopeMetrics"`
	} `json:"resourceMetrics"`
}

// otlpLines decodes every complete line of one of the collector's files
// (the last one may still be being written).
func otlpLines[T any](t *testing.T, file string) []T {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []T
	ls := strings.Split(string(b), "\n")
	for _, l := range ls[:len(ls)-1] {
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%s: a line that is not OTLP JSON: %v", file, err)
		}
		out = append(out, v)
	}
	return out
}

// eventually retries check until it returns "" or 30s pass.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestExportToOpenTelemetryCollector points real nodes at a real
// OpenTelemetry collector, over gRPC and HTTP, plain and with TLS, makes an allowed and a
// refused call, and reads what the collector received: a log record per
// call with agent, tool and decision; a span per call with a child per
// stage verdict; the decision counter and latency histogram.
func TestExportToOpenTelemetryCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an OpenTelemetry collector and runs nodes")
	}
	col := startCollector(t)
	h := startHelpdesk(t)
	for _, tc := range []struct{ name, proto, addr, ca string }{
		{"grpc", "grpc", col.grpc, ""}, {"http", "http", col.http, ""},
		{"grpc-tls", "grpc", col.grpcTLS, col.caFile}, {"http-tls", "http", col.httpTLS, col.caFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent := "otlp-" + tc.name + "-bot"
			args := []string{"--otlp-endpoint", tc.addr, "--otlp-protocol", tc.proto, "--otlp-metric-interval", "500ms"}
			if tc.ca != "" {
				args = append(args, "--otlp-ca-file", tc.ca)
			}
			n := harness.StartNode(t, args...)
			allowAndDeny(t, exportAgents(t, n, h, agent)[agent])

			eventually(t, "log records", func() string {
				seen := map[string]string{}
				for _, l := range otlpLines[otlpLogs](t, filepath.Join(col.dir, "logs.json")) {
					for _, rl := range l.ResourceLogs {
						if rl.Resource.Attributes.get("service.name") != "portcullis" {
							continue
						}
						for _, sl := range rl.ScopeLogs {
							for _, r := range sl.LogRecords {
								a := r.Attributes
								if a.get("portcullis.agent") == agent && a.get("portcullis.tool") == "helpdesk_get_ticket" &&
									a.get("portcullis.persona") == "support-triage" && r.EventName == "portcullis.decision" && r.TraceID != "" {
									seen[a.get("portcullis.decision")] = r.SeverityText + " " + a.get("portcullis.reason")
								}
							}
						}
					}
				}
				if !strings.HasPrefix(seen["allow"], "INFO") || !strings.HasPrefix(seen["deny"], "WARN ") || seen["deny"] == "WARN " {
					return fmt.Sprintf("want an INFO allow and a WARN deny with its reason for %s, got %v", agent, seen)
				}
				return ""
			})

			eventually(t, "spans", func() string {
				var spans []otlpSpan
				for _, l := range otlpLines[otlpTraces](t, filepath.Join(col.dir, "traces.json")) {
					for _, rs := range l.ResourceSpans {
						for _, ss := range rs.ScopeSpans {
							spans = append(spans, ss.Spans...)
						}
					}
				}
				var found []string
				for _, root := range spans {
					if root.ParentSpanID != "" || root.Attributes.get("portcullis.agent") != agent || root.Name != "tools/call helpdesk_get_ticket" {
						continue
					}
					var stages []string
					var authnEnd, policyStart string
					for _, c := range spans {
						if c.ParentSpanID == root.SpanID && c.TraceID == root.TraceID {
							if c.StartTimeUnixNano < root.StartTimeUnixNano || c.EndTimeUnixNano > root.EndTimeUnixNano {
								return fmt.Sprintf("stage span %s lies outside its request", c.Name)
							}
							stage := c.Attributes.get("portcullis.stage")
							stages = append(stages, stage+":"+c.Attributes.get("portcullis.outcome"))
							switch stage {
							case "authn":
								authnEnd = c.EndTimeUnixNano
							case "policy":
								policyStart = c.StartTimeUnixNano
							}
						}
					}
					// Unix nanoseconds of today have the same number of digits.
					if authnEnd == "" || policyStart == "" || policyStart < authnEnd {
						return fmt.Sprintf("the policy stage span (from %s) does not follow the authn one (to %s)", policyStart, authnEnd)
					}
					found = append(found, root.Attributes.get("portcullis.decision")+" "+strings.Join(stages, ","))
				}
				var allow, deny bool
				for _, f := range found {
					allow = allow || strings.HasPrefix(f, "allow ") && strings.Contains(f, "policy:allow") && strings.Contains(f, "authn:allow")
					deny = deny || strings.HasPrefix(f, "deny ") && strings.Contains(f, "policy:deny")
				}
				if !allow || !deny {
					return fmt.Sprintf("want request spans of %s with stage children (authn, policy), got %q", agent, found)
				}
				return ""
			})
		})
	}

	eventually(t, "metrics", func() string {
		decisions := map[string]int{}
		histograms := 0
		for _, l := range otlpLines[otlpMetrics](t, filepath.Join(col.dir, "metrics.json")) {
			for _, rm := range l.ResourceMetrics {
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						switch {
						case m.Name == "portcullis.decisions" && m.Sum != nil:
							for _, p := range m.Sum.DataPoints {
								if p.Attributes.get("persona") == "support-triage" {
									v, _ := p.AsInt.Int64()
									decisions[p.Attributes.get("decision")] = max(decisions[p.Attributes.get("decision")], int(v))
								}
							}
						case m.Name == "portcullis.request.duration" && m.Histogram != nil:
							for _, p := range m.Histogram.DataPoints {
								if v, _ := p.Count.Int64(); v > 0 {
									histograms++
								}
							}
						}
					}
				}
			}
		}
		if decisions["allow"] < 1 || decisions["deny"] < 1 || histograms == 0 {
			return fmt.Sprintf("want portcullis.decisions for allow and deny and a latency histogram, got %v and %d histogram points", decisions, histograms)
		}
		return ""
	})
}

// syslogd is a real rsyslog on unprivileged ports: imtcp in plain TCP and
// with TLS (gtls driver, a test CA), writing every message it receives to a
// file, one per line.
type syslogd struct {
	tcp, tls, caFile, out string
}

func startRsyslog(t *testing.T) *syslogd {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rsyslogd is not installed (.ci/packages.d/export installs rsyslog and rsyslog-gnutls)")
		}
		t.Skip("rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)")
	}
	dir := t.TempDir()
	s := &syslogd{tcp: harness.FreeAddr(t), tls: harness.FreeAddr(t), out: filepath.Join(dir, "received.log")}
	var certFile, keyFile string
	s.caFile, certFile, keyFile = writeTestPKI(t, dir)
	_, tcpPort, _ := net.SplitHostPort(s.tcp)
	_, tlsPort, _ := net.SplitHostPort(s.tls)
	conf := fmt.Sprintf(`global(workDirectory="%[1]s"
  DefaultNetstreamDriverCAFile="%[2]s" DefaultNetstreamDriverCertFile="%[3]s" DefaultNetstreamDriverKeyFile="%[4]s")
module(load="imtcp" MaxSessions="50")
template(name="qa" type="string" string="%%syslogfacility%% %%syslogseverity%% %%hostname%% %%app-name%% %%procid%% %%msgid%% %%msg%%\n")
input(type="imtcp" port="%[5]s" address="127.0.0.1" ruleset="qa")
input(type="imtcp" port="%[6]s" address="127.0.0.1" ruleset="qa"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
ruleset(name="qa") { action(type="omfile" file="%[7]s" template="qa" flushOnTXEnd="on" asyncWriting="off") }
`, dir, s.caFile, certFile, keyFile, tcpPort, tlsPort, s.out)
	cfg := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-N1", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1 refuses the config: %v\n%s", err, out)
	}
	var logs strings.Builder
	var mu sync.Mutex
	cmd := exec.Command(bin, "-n", "-f", cfg, "-i", filepath.Join(dir, "rsyslogd.pid"))
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("rsyslogd output:\n%s", logs.String())
			mu.Unlock()
		}
	})
	for _, addr := range []string{s.tcp, s.tls} {
		waitListening(t, addr, func() string { mu.Lock(); defer mu.Unlock(); return logs.String() })
	}
	return s
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qa syslog CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: leafDER}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// cefFields splits a CEF event whose values hold no escapes (the qa
// agents' names and reasons here) into its header and extensions.
func cefFields(msg string) ([]string, map[string]string, bool) {
	i := strings.Index(msg, "CEF:")
	if i < 0 {
		return nil, nil, false
	}
	parts := strings.SplitN(msg[i:], "|", 8)
	if len(parts) != 8 {
		return nil, nil, false
	}
	ext := map[string]string{}
	rest := parts[7]
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return nil, nil, false
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		// The value ends at the space before the next key=.
		end := len(rest)
		for j := 0; j < len(rest); j++ {
			if rest[j] == ' ' {
				if k := strings.IndexByte(rest[j+1:], '='); k > 0 && !strings.ContainsAny(rest[j+1:j+1+k], " \\") {
					end = j
					break
				}
			}
		}
		ext[key] = rest[:end]
		if end == len(rest) {
			break
		}
		rest = rest[end+1:]
	}
	return parts[:7], ext, true
}

// TestExportCEFToRsyslog: real nodes send syslog over TCP and over TLS to
// a real rsyslog, which writes what it received; every call the agent made
// is a CEF event there, with agent, tool, persona, decision and node.
func TestExportCEFToRsyslog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rsyslogd and nodes")
	}
	s := startRsyslog(t)
	h := startHelpdesk(t)
	for _, mode := range []string{"tcp", "tls"} {
		t.Run(mode, func(t *testing.T) {
			agent := "cef-" + mode + "-bot"
			args := []string{"--syslog-addr", s.tcp}
			if mode == "tls" {
				args = []string{"--syslog-addr", s.tls, "--syslog-tls", "--syslog-ca-file", s.caFile}
			}
			n := harness.StartNode(t, args...)
			allowAndDeny(t, exportAgents(t, n, h, agent)[agent])
			eventually(t, "CEF events in rsyslog's file", func() string {
				b, _ := os.ReadFile(s.out)
				got := map[string]bool{}
				ls := strings.Split(string(b), "\n")
				for _, line := range ls[:len(ls)-1] { // the last may be mid-write
					// facility severity host app procid msgid msg
					f := strings.SplitN(line, " ", 7)
					if len(f) != 7 || f[3] != "portcullis" || f[5] != "decision" || f[0] != "13" {
						continue
					}
					hdr, ext, ok := cefFields(f[6])
					if !ok {
						return fmt.Sprintf("a message that is not CEF: %q", line)
					}
					if ext["suser"] != agent {
						continue
					}
					if hdr[0] != "CEF:0" || hdr[1] != "Portcullis" || hdr[2] != "Portcullis" || hdr[4] != "mcp-"+ext["act"] {
						return fmt.Sprintf("CEF header %q", hdr)
					}
					if ext["cs2Label"] != "tool" || ext["cs2"] != "helpdesk_get_ticket" || ext["cs1"] != "support-triage" ||
						ext["dvchost"] == "" || ext["rt"] == "" || ext["src"] != "127.0.0.1" {
						return fmt.Sprintf("CEF extensions %q", ext)
					}
					sev := map[string]string{"allow": "6", "deny": "4"}[ext["act"]]
					if f[1] != sev {
						return fmt.Sprintf("syslog severity %s for %s", f[1], ext["act"])
					}
					got[ext["act"]] = true
				}
				if !got["allow"] || !got["deny"] {
					return fmt.Sprintf("want an allow and a deny event of %s, have %v in:\n%s", agent, got, b)
				}
				return ""
			})
		})
	}
}

// TestExportNeverBlocksAgents: an OTLP collector and a syslog receiver
// that accept connections and never read, and a webhook that never
// answers: agents' calls all complete, and the node counts what it
// dropped for each.
func TestExportNeverBlocksAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node")
	}
	stalled := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
		return ln.Addr().String()
	}
	hang := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { close(hang); hs.Close() })

	h := startHelpdesk(t)
	n := harness.StartNode(t, "--export-queue", "4",
		"--otlp-endpoint", stalled(), "--otlp-protocol", "grpc",
		"--syslog-addr", stalled(), "--syslog-tls", // the TLS handshake never completes
		"--webhook-url", "http://"+ln.Addr().String()+"/alert", "--webhook-on", "allow,deny,error")
	c := exportAgents(t, n, h, "busy-bot")["busy-bot"]
	const calls = 60
	for i := range calls {
		r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"project": "SUPPORT", "id": i})
		if err != nil || r.Error != nil || !strings.Contains(string(r.Result), "printer on fire") {
			t.Fatalf("call %d with every export destination stuck: %v %+v", i, err, r)
		}
	}
	eventually(t, "drops counted in /metrics", func() string {
		_, body, err := n.AdminDo(http.MethodGet, "/metrics", "")
		if err != nil {
			return err.Error()
		}
		var missing []string
		for _, x := range []string{"otlp", "syslog", "webhook"} {
			want := fmt.Sprintf(`portcullis_export_dropped_total{exporter="%s",reason="queue_full"} `, x)
			v := -1.0
			for _, line := range strings.Split(string(body), "\n") {
				if s, ok := strings.CutPrefix(line, want); ok {
					v, _ = strconv.ParseFloat(s, 64)
				}
			}
			// 60 records, a queue of 4, a batch in flight and, every 5s
			// timeout and pause, another batch taken: most are dropped.
			if v < calls/2 {
				missing = append(missing, fmt.Sprintf("%s=%v", x, v))
			}
		}
		if len(missing) > 0 {
			return "queue_full drops " + strings.Join(missing, ", ")
		}
		return ""
	})
	// The trail, the record of truth, has every call.
	eventually(t, "the audit trail", func() string {
		out := n.MustCLI("audit", "search", "--agent", "busy-bot", "-o", "json")
		if got := strings.Count(out, "\n"); got != calls {
			return fmt.Sprintf("it holds %d records of busy-bot, want %d", got, calls)
		}
		return ""
	})
	if !strings.Contains(n.Logs(), "export queue full: dropping records") {
		t.Error("no log line says that export drops records")
	}
}
