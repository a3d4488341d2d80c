package export

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// SyslogConfig sends every decision as an RFC 5424 message over TCP
// (octet-counting framing, RFC 6587) or TLS (RFC 5425).
type SyslogConfig struct {
	// Addr is the receiver's HOST:PORT; empty: syslog is off.
	Addr string
	// TLS speaks RFC 5425 (TLS), verifying the receiver against CAFile
	// (default: the system roots) and the host name of Addr.
	TLS    bool
	CAFile string
	// Format of the message body: "cef" (default; ArcSight Common Event
	// Format) or "json" (the record as in `portcullis audit search -o json`,
	// without seq).
	Format string
	// Facility is the syslog facility number, 1..23 (default 13, "log
	// audit"; 0, kern, is taken as the default: it is the kernel's).
	Facility int
}

// Syslog formats.
const (
	FormatCEF  = "cef"
	FormatJSON = "json"
)

const defaultFacility = 13 // log audit (RFC 5424 table 1)

func (c *SyslogConfig) validate() error {
	if c.Addr == "" {
		if c.TLS || c.CAFile != "" {
			return fmt.Errorf("--syslog-tls and --syslog-ca-file need --syslog-addr")
		}
		return nil
	}
	if err := checkHostPort("--syslog-addr", c.Addr); err != nil {
		return err
	}
	switch c.Format {
	case "":
		c.Format = FormatCEF
	case FormatCEF, FormatJSON:
	default:
		return fmt.Errorf("--syslog-format %q: want cef or json", c.Format)
	}
	if c.Facility < 0 || c.Facility > 23 {
		return fmt.Errorf("--syslog-facility %d: want 0..23", c.Facility)
	}
	if c.CAFile != "" && !c.TLS {
		return fmt.Errorf("--syslog-ca-file needs --syslog-tls")
	}
	return nil
}

// syslogSender holds one connection to the receiver, made on first use
// and again after any error.
type syslogSender struct {
	cfg     SyslogConfig
	node    string
	version string
	host    string // HOSTNAME field
	procID  string
	tls     *tls.Config // nil: plain TCP
	conn    net.Conn
	w       *bufio.Writer
	buf     []byte // one frame
	msg     []byte // its message
}

func newSyslog(cfg Config) (*syslogSender, error) {
	s := &syslogSender{cfg: cfg.Syslog, node: cfg.Node, version: cfg.Version, procID: strconv.Itoa(os.Getpid())}
	if s.cfg.Facility == 0 {
		s.cfg.Facility = defaultFacility
	}
	s.host, _ = os.Hostname()
	if s.host == "" {
		s.host = cfg.Node
	}
	if s.cfg.TLS {
		host, _, _ := net.SplitHostPort(s.cfg.Addr)
		t, err := tlsConfig(host, s.cfg.CAFile, "--syslog-ca-file")
		if err != nil {
			return nil, err
		}
		s.tls = t
	}
	return s, nil
}

// tlsConfig verifies the server named host against caFile's certificates
// (the system roots when empty).
func tlsConfig(host, caFile, flag string) (*tls.Config, error) {
	t := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, caFile)
	}
	t.RootCAs = pool
	return t, nil
}

const syslogDialTimeout = 5 * time.Second

func (s *syslogSender) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: syslogDialTimeout, KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.cfg.Addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", s.cfg.Addr, err)
	}
	s.conn, s.w = c, bufio.NewWriterSize(c, 64<<10)
	return nil
}

func (s *syslogSender) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.w = nil, nil
	}
}

// send writes the batch as octet-counted frames and flushes. A connection
// that fails after being reused is replaced and the batch written once
// more (the receiver may have closed an idle one; what the failed write
// got through arrives twice); TCP syslog has no
// acknowledgment, so records the kernel accepted before a peer vanished
// are lost unnoticed (RFC 6587 §3.4.3 says as much).
func (s *syslogSender) send(ctx context.Context, batch []*gateway.Decision) (int, error) {
	for attempt := 0; ; attempt++ {
		reused := s.conn != nil
		if !reused {
			if err := s.dial(ctx); err != nil {
				return len(batch), err
			}
		}
		err := s.write(batch)
		if err == nil {
			return 0, nil
		}
		s.drop()
		if !reused || attempt > 0 || ctx.Err() != nil {
			return len(batch), fmt.Errorf("write to %s: %w", s.cfg.Addr, err)
		}
	}
}

func (s *syslogSender) write(batch []*gateway.Decision) error {
	s.conn.SetWriteDeadline(time.Now().Add(sendTimeout))
	for _, d := range batch {
		s.buf = s.frame(s.buf[:0], d)
		if _, err := s.w.Write(s.buf); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

// frame appends one octet-counted RFC 5424 message: "LEN SP <PRI>1 TIME
// HOST APP PROCID MSGID - MSG".
func (s *syslogSender) frame(b []byte, d *gateway.Decision) []byte {
	s.msg = s.message(s.msg[:0], d)
	b = strconv.AppendInt(b, int64(len(s.msg)), 10)
	b = append(b, ' ')
	return append(b, s.msg...)
}

func (s *syslogSender) message(b []byte, d *gateway.Decision) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(s.cfg.Facility*8+syslogSeverity(d.Decision)), 10)
	b = append(b, ">1 "...)
	b = d.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, headerField(s.host, 255)...)
	b = append(b, " portcullis "...)
	b = append(b, s.procID...)
	b = append(b, " decision - "...)
	if s.cfg.Format == FormatJSON {
		j, _ := json.Marshal(recordOf(d, s.node)) // a record always marshals
		return append(b, j...)
	}
	return appendCEF(b, d, s.node, s.version)
}

// headerField makes v a valid RFC 5424 header field: printable US-ASCII
// without spaces, at most n octets, "-" when empty.
func headerField(v string, n int) string {
	ok := v != "" && len(v) <= n
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] > 32 && v[i] < 127
	}
	if ok {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v) && b.Len() < n; i++ {
		if v[i] > 32 && v[i] < 127 {
			b.WriteByte(v[i])
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// syslogSeverity: deny is a warning, a failed upstream an error, an
// allowed call informational.
func syslogSeverity(decision string) int {
	switch decision {
	case gateway.Deny:
		return 4
	case gateway.Fail:
		return 3
	}
	return 6
}

// cefSeverity on CEF's 0..10 scale.
func cefSeverity(decision string) int {
	switch decision {
	case gateway.Deny:
		return 7
	case gateway.Fail:
		return 5
	}
	return 3
}

// appendCEF appends the decision as one CEF:0 event:
//
//	CEF:0|Portcullis|Portcullis|VERSION|mcp-DECISION|METHOD DECISION|SEV|EXT
//
// with extension keys rt (ms since the epoch), dvchost (node), suser
// (agent), suid (key id), src (client IP), act (decision), reason, cs1
// persona, cs2 tool, cs3 upstream, cs4 deciding stage, cs5 DLP finding
// counts ("detector:n,..."), cs6 MCP method, cn1 latency in microseconds,
// each csN/cnN with its csNLabel. Header fields escape \ and |, extension
// values \ and = and line breaks (\n, \r), as the CEF specification says.
func appendCEF(b []byte, d *gateway.Decision, node, version string) []byte {
	b = append(b, "CEF:0|Portcullis|Portcullis|"...)
	b = cefHeader(b, version)
	b = append(b, "|mcp-"...)
	b = cefHeader(b, d.Decision)
	b = append(b, '|')
	method := d.Method
	if method == "" {
		method = "request"
	}
	b = cefHeader(b, method)
	b = append(b, ' ')
	b = cefHeader(b, d.Decision)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(cefSeverity(d.Decision)), 10)
	b = append(b, "|rt="...)
	b = strconv.AppendInt(b, d.Time.UnixMilli(), 10)
	ext := func(k, v string) {
		if v == "" {
			return
		}
		b = append(b, ' ')
		b = append(b, k...)
		b = append(b, '=')
		b = cefValue(b, v)
	}
	ext("dvchost", node)
	ext("suser", d.Agent)
	ext("suid", d.KeyID)
	if ip, err := netip.ParseAddr(d.ClientIP); err == nil {
		ext("src", ip.String())
	}
	ext("act", d.Decision)
	ext("reason", d.Reason)
	for i, v := range [...]string{d.Persona, d.Tool, d.Upstream, d.Stage(), findingsText(d.DLPFindings), d.Method} {
		if v != "" {
			b = append(b, cefLabels[i]...)
			ext(cefKeys[i], v)
		}
	}
	b = append(b, " cn1Label=latencyMicros cn1="...)
	b = strconv.AppendInt(b, d.Latency.Microseconds(), 10)
	return b
}

// The custom string extensions, in order: cs1 persona … cs6 method.
var (
	cefKeys   = [...]string{"cs1", "cs2", "cs3", "cs4", "cs5", "cs6"}
	cefLabels = [...]string{" cs1Label=persona", " cs2Label=tool", " cs3Label=upstream", " cs4Label=stage", " cs5Label=dlpFindings", " cs6Label=method"}
)

// findingsText renders DLP counts as "detector:n,..." sorted by detector.
func findingsText(f map[string]int) string {
	if len(f) == 0 {
		return ""
	}
	ids := make([]string, 0, len(f))
	for id := range f {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f[id]))
	}
	return b.String()
}

// cefHeader appends a header field: \ and | escaped, line breaks (not
// allowed in a header) as spaces.
func cefHeader(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '|':
			b = append(b, '\\', c)
		case '\r', '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// cefValue appends an extension value: \ and = escaped, line breaks as
// \n and \r.
func cefValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '=':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}
