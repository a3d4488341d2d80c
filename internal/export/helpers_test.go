package export

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// decision is a governed tools/call as the gateway records it.
func decision(agent, tool, outcome, reason string) gateway.Decision {
	d := gateway.Decision{
		Time: time.Date(2026, 12, 4, 21, 0, 0, 123456000, time.UTC), Agent: agent, Persona: "support-triage",
		KeyID: "k-7", ClientIP: "127.0.0.1", Method: "tools/call", Tool: tool, Upstream: "helpdesk",
		Decision: outcome, Reason: reason, Latency: 1234 * time.Microsecond,
		DLPFindings: map[string]int{"email": 2, "iban": 1},
		Verdicts: []gateway.Verdict{
			{Stage: gateway.StageAuthn, Outcome: gateway.Allow, Reason: "api-key"},
			{Stage: gateway.StagePolicy, Outcome: outcome, Reason: reason},
		},
	}
	return d
}

// cefEvent is one parsed CEF event: the seven header fields and the
// extensions.
type cefEvent struct {
	header [7]string // version, vendor, product, device version, signature id, name, severity
	ext    map[string]string
}

// parseCEF parses "CEF:0|…|…|…|…|…|…|k=v k=v" with CEF's escaping: \| and \\
// in the header, \= \\ \n \r in extension values. It is the test's own
// reader, written from the specification, not from appendCEF.
func parseCEF(s string) (cefEvent, error) {
	var e cefEvent
	if !strings.HasPrefix(s, "CEF:") {
		return e, errors.New("no CEF: prefix")
	}
	s = s[len("CEF:"):]
	for i := range 7 {
		var b strings.Builder
		j := 0
		for ; j < len(s); j++ {
			c := s[j]
			if c == '\\' && j+1 < len(s) && (s[j+1] == '\\' || s[j+1] == '|') {
				b.WriteByte(s[j+1])
				j++
				continue
			}
			if c == '|' {
				break
			}
			b.WriteByte(c)
		}
		if j >= len(s) {
			return e, fmt.Errorf("header field %d not terminated", i)
		}
		e.header[i] = b.String()
		s = s[j+1:]
	}
	e.ext = map[string]string{}
	// Extensions: key=value pairs separated by spaces; a key is
	// alphanumeric; a value runs up to the space before the next key= (an
	// unescaped '=').
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return e, fmt.Errorf("extension without key=: %q", s)
		}
		key := s[:eq]
		for _, c := range key {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return e, fmt.Errorf("bad extension key %q", key)
			}
		}
		s = s[eq+1:]
		var b strings.Builder
		end := len(s)
		for j := 0; j < len(s); j++ {
			c := s[j]
			if c == '\\' && j+1 < len(s) {
				switch s[j+1] {
				case '\\', '=':
					b.WriteByte(s[j+1])
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				default:
					b.WriteByte(c)
					continue
				}
				j++
				continue
			}
			if c == '=' {
				return e, fmt.Errorf("unescaped = in the value of %s", key)
			}
			if c == ' ' && nextIsKey(s[j+1:]) {
				end = j
				break
			}
			b.WriteByte(c)
		}
		if _, dup := e.ext[key]; dup {
			return e, fmt.Errorf("extension %s twice", key)
		}
		e.ext[key] = b.String()
		if end == len(s) {
			break
		}
		s = s[end+1:]
	}
	return e, nil
}

// nextIsKey reports whether s starts with an alphanumeric key and '='.
func nextIsKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			return i > 0
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return false
}

// label finds a csN's value by its csNLabel.
func (e cefEvent) label(name string) string {
	for k, v := range e.ext {
		if strings.HasSuffix(k, "Label") && v == name {
			return e.ext[strings.TrimSuffix(k, "Label")]
		}
	}
	return ""
}

// syslogMessage is one parsed RFC 5424 message.
type syslogMessage struct {
	pri                                 int
	time, host, app, procID, msgID, msg string
}

// readFrame reads one octet-counted frame (RFC 6587 §3.4.1).
func readFrame(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil || size <= 0 || size > 1<<20 {
		return "", fmt.Errorf("bad frame length %q", n)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// parse5424 parses "<PRI>1 TIME HOST APP PROCID MSGID - MSG".
func parse5424(s string) (syslogMessage, error) {
	var m syslogMessage
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return m, fmt.Errorf("bad PRI %q", s[1:end])
	}
	m.pri = pri
	f := strings.SplitN(s[end+1:], " ", 8)
	if len(f) != 8 || f[0] != "1" || f[6] != "-" {
		return m, fmt.Errorf("bad header %q", s)
	}
	if _, err := time.Parse(time.RFC3339Nano, f[1]); err != nil {
		return m, fmt.Errorf("bad TIMESTAMP: %w", err)
	}
	for _, h := range f[2:6] {
		if h == "" || strings.ContainsFunc(h, func(r rune) bool { return r <= 32 || r >= 127 }) {
			return m, fmt.Errorf("bad header field %q", h)
		}
	}
	m.time, m.host, m.app, m.procID, m.msgID, m.msg = f[1], f[2], f[3], f[4], f[5], f[7]
	return m, nil
}

// syslogReceiver is an in-process RFC 6587 receiver: it hands every frame
// it reads to frames.
type syslogReceiver struct {
	ln     net.Listener
	frames chan string
}

func startSyslogReceiver(t *testing.T, tlsCfg *tls.Config) *syslogReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	r := &syslogReceiver{ln: ln, frames: make(chan string, 1<<16)}
	serveFrames(t, r)
	return r
}

func (r *syslogReceiver) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(20 * time.Second):
		t.Fatal("no syslog frame arrived")
		return ""
	}
}

// stalledListener accepts connections and never reads from them.
func stalledListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// testCA writes a CA and a server certificate for 127.0.0.1 to dir and
// returns the CA file and the server's TLS config.
func testCA(t testing.TB, dir string) (caFile string, server *tls.Config) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qa export CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{cert}}
}

func testContext(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func listenOn(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// serveFrames reads frames from r.ln into r.frames.
func serveFrames(t *testing.T, r *syslogReceiver) {
	t.Cleanup(func() { r.ln.Close() })
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					f, err := readFrame(br)
					if err != nil {
						return
					}
					r.frames <- f
				}
			}()
		}
	}()
}
