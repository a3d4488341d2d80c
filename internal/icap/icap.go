// Package icap is an ICAP client (RFC 3507) so the gateway can hand request
// and response bodies to an existing enterprise DLP or anti-virus system:
// OPTIONS, REQMOD and RESPMOD, with preview ("100 Continue"), "Allow: 204"
// and chunked encapsulated bodies.
package icap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	Addr    string        // host:port of the ICAP server (port 1344 by convention)
	Service string        // service name, e.g. "echo" or "dlp"
	Timeout time.Duration // per exchange; default 10s
	// Preview is how many body bytes to send before waiting for "100
	// Continue"; 0 (or negative) uses the size the server announces in
	// OPTIONS (cached for its Options-TTL, at most 5 minutes).
	Preview int
	// NoPreview sends whole bodies at once, without asking OPTIONS.
	NoPreview bool
	// MaxBody bounds the body the client accepts back (default 16 MiB).
	MaxBody int64
	Logger  *slog.Logger
}

// Errors.
var (
	ErrConfig   = errors.New("icap: bad config")
	ErrProtocol = errors.New("icap: protocol error")
	ErrTooLarge = errors.New("icap: body too large")
)

// Client talks to one ICAP service. It is safe for concurrent use; every
// exchange uses its own connection.
type Client struct {
	cfg  Config
	log  *slog.Logger
	dial net.Dialer

	mu      sync.Mutex
	opts    *Options
	optsExp time.Time
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("%w: addr %q: %v", ErrConfig, cfg.Addr, err)
	}
	if cfg.Service == "" || strings.ContainsAny(cfg.Service, " \r\n?#") {
		return nil, fmt.Errorf("%w: service %q", ErrConfig, cfg.Service)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 16 << 20
	}
	if cfg.Preview == 0 {
		cfg.Preview = -1
	}
	c := &Client{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func (c *Client) uri() string { return "icap://" + c.cfg.Addr + "/" + c.cfg.Service }

// Options is the server's answer to OPTIONS.
type Options struct {
	Methods  []string
	ISTag    string
	Preview  int // -1 when the server announced none
	Allow204 bool
	TTL      time.Duration
	Header   textproto.MIMEHeader
}

// Result is the outcome of REQMOD or RESPMOD.
type Result struct {
	// Status is the ICAP status: 204 means the server left the message
	// unchanged; 200 means it returned a (possibly modified) message.
	Status int
	Header textproto.MIMEHeader // ICAP headers (ISTag, X-Infection-Found, …)
	// Request is set when the server returned an HTTP request (REQMOD).
	Request *http.Request
	// Response is set when the server returned an HTTP response: the
	// modified response (RESPMOD) or a response that replaces the request
	// (REQMOD, e.g. a block page).
	Response *http.Response
	Body     []byte // the returned body (nil for 204)
}

// Unchanged reports whether the server left the message as it was.
func (r *Result) Unchanged() bool { return r.Status == http.StatusNoContent }

// Options asks the server what the service supports.
func (c *Client) Options(ctx context.Context) (*Options, error) {
	conn, br, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var req bytes.Buffer
	fmt.Fprintf(&req, "OPTIONS %s ICAP/1.0\r\nHost: %s\r\nEncapsulated: null-body=0\r\n\r\n", c.uri(), c.cfg.Addr)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, fmt.Errorf("icap: options: %w", err)
	}
	status, hdr, err := readHead(br)
	if err != nil {
		return nil, fmt.Errorf("icap: options: %w", err)
	}
	if status != 200 {
		return nil, fmt.Errorf("%w: options: status %d", ErrProtocol, status)
	}
	o := &Options{ISTag: hdr.Get("ISTag"), Preview: -1, Header: hdr}
	for _, m := range strings.Split(hdr.Get("Methods"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.Methods = append(o.Methods, m)
		}
	}
	if p := hdr.Get("Preview"); p != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil && n >= 0 {
			o.Preview = n
		}
	}
	if t := hdr.Get("Options-TTL"); t != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(t)); err == nil {
			o.TTL = time.Duration(n) * time.Second
		}
	}
	o.Allow204 = strings.Contains(hdr.Get("Allow"), "204")
	return o, nil
}

func (c *Client) cachedOptions(ctx context.Context) (*Options, error) {
	c.mu.Lock()
	if c.opts != nil && time.Now().Before(c.optsExp) {
		o := c.opts
		c.mu.Unlock()
		return o, nil
	}
	c.mu.Unlock()
	o, err := c.Options(ctx)
	if err != nil {
		return nil, err
	}
	ttl := o.TTL
	if ttl <= 0 || ttl > 5*time.Minute {
		ttl = 5 * time.Minute
	}
	c.mu.Lock()
	c.opts, c.optsExp = o, time.Now().Add(ttl)
	c.mu.Unlock()
	return o, nil
}

// ReqMod sends an HTTP request (with body) for modification.
func (c *Client) ReqMod(ctx context.Context, req *http.Request, body []byte) (*Result, error) {
	hdr := requestHead(req)
	return c.exchange(ctx, "REQMOD", [][2]string{{"req-hdr", string(hdr)}}, "req-body", body)
}

// RespMod sends an HTTP response (and the request that produced it) for
// modification.
func (c *Client) RespMod(ctx context.Context, req *http.Request, resp *http.Response, body []byte) (*Result, error) {
	sections := [][2]string{}
	if req != nil {
		sections = append(sections, [2]string{"req-hdr", string(requestHead(req))})
	}
	sections = append(sections, [2]string{"res-hdr", string(responseHead(resp))})
	return c.exchange(ctx, "RESPMOD", sections, "res-body", body)
}

func (c *Client) open(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	conn, err := c.dial.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("icap: dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(c.cfg.Timeout))
	return conn, bufio.NewReader(conn), nil
}

func (c *Client) exchange(ctx context.Context, method string, sections [][2]string, bodyName string, body []byte) (*Result, error) {
	preview := c.cfg.Preview
	switch {
	case c.cfg.NoPreview:
		preview = -1
	case preview < 0:
		o, err := c.cachedOptions(ctx)
		if err != nil {
			return nil, err
		}
		preview = o.Preview
	}
	conn, br, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	var head, enc bytes.Buffer
	var parts []string
	off := 0
	for _, s := range sections {
		parts = append(parts, fmt.Sprintf("%s=%d", s[0], off))
		enc.WriteString(s[1])
		off += len(s[1])
	}
	if body == nil {
		parts = append(parts, fmt.Sprintf("null-body=%d", off))
	} else {
		parts = append(parts, fmt.Sprintf("%s=%d", bodyName, off))
	}
	fmt.Fprintf(&head, "%s %s ICAP/1.0\r\nHost: %s\r\nAllow: 204\r\nEncapsulated: %s\r\n", method, c.uri(), c.cfg.Addr, strings.Join(parts, ", "))
	usePreview := body != nil && preview >= 0
	if usePreview {
		fmt.Fprintf(&head, "Preview: %d\r\n", min(preview, len(body)))
	}
	head.WriteString("\r\n")
	head.Write(enc.Bytes())

	if body != nil {
		first := body
		if usePreview {
			first = body[:min(preview, len(body))]
		}
		writeChunk(&head, first)
		if usePreview && len(first) == len(body) {
			head.WriteString("0; ieof\r\n\r\n")
		} else {
			head.WriteString("0\r\n\r\n")
		}
	}
	if _, err := conn.Write(head.Bytes()); err != nil {
		return nil, fmt.Errorf("icap: %s: write: %w", strings.ToLower(method), err)
	}
	status, hdr, err := readHead(br)
	if err != nil {
		return nil, fmt.Errorf("icap: %s: %w", strings.ToLower(method), err)
	}
	if status == 100 {
		if !usePreview || preview >= len(body) {
			return nil, fmt.Errorf("%w: unexpected 100 Continue", ErrProtocol)
		}
		var rest bytes.Buffer
		writeChunk(&rest, body[preview:])
		rest.WriteString("0\r\n\r\n")
		if _, err := conn.Write(rest.Bytes()); err != nil {
			return nil, fmt.Errorf("icap: %s: write: %w", strings.ToLower(method), err)
		}
		if status, hdr, err = readHead(br); err != nil {
			return nil, fmt.Errorf("icap: %s: %w", strings.ToLower(method), err)
		}
	}
	res := &Result{Status: status, Header: hdr}
	switch status {
	case 204:
		return res, nil
	case 200:
	default:
		return nil, fmt.Errorf("%w: %s: status %d", ErrProtocol, strings.ToLower(method), status)
	}
	if err := c.readEncapsulated(br, hdr.Get("Encapsulated"), res); err != nil {
		return nil, fmt.Errorf("icap: %s: %w", strings.ToLower(method), err)
	}
	c.log.Debug("icap exchange", "method", method, "status", status, "istag", hdr.Get("ISTag"))
	return res, nil
}

func writeChunk(w *bytes.Buffer, p []byte) {
	if len(p) == 0 {
		return
	}
	fmt.Fprintf(w, "%x\r\n", len(p))
	w.Write(p)
	w.WriteString("\r\n")
}

// readHead reads "ICAP/1.0 <status> <reason>" and the ICAP headers.
func readHead(br *bufio.Reader) (int, textproto.MIMEHeader, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, fmt.Errorf("read status: %w", err)
	}
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[0], "ICAP/") {
		return 0, nil, fmt.Errorf("%w: bad status line %q", ErrProtocol, line)
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: bad status %q", ErrProtocol, f[1])
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, fmt.Errorf("read headers: %w", err)
	}
	return status, hdr, nil
}

type encPart struct {
	name string
	off  int
}

func parseEncapsulated(v string) ([]encPart, error) {
	var ps []encPart
	for _, f := range strings.Split(v, ",") {
		name, off, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, fmt.Errorf("%w: bad Encapsulated %q", ErrProtocol, v)
		}
		n, err := strconv.Atoi(off)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: bad Encapsulated offset %q", ErrProtocol, f)
		}
		ps = append(ps, encPart{name, n})
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: empty Encapsulated", ErrProtocol)
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].off < ps[j].off })
	last := ps[len(ps)-1].name
	if last != "req-body" && last != "res-body" && last != "null-body" && last != "opt-body" {
		return nil, fmt.Errorf("%w: Encapsulated must end with a body entity", ErrProtocol)
	}
	return ps, nil
}

func (c *Client) readEncapsulated(br *bufio.Reader, enc string, res *Result) error {
	ps, err := parseEncapsulated(enc)
	if err != nil {
		return err
	}
	total := ps[len(ps)-1].off
	if total > 1<<20 {
		return fmt.Errorf("%w: encapsulated headers of %d bytes", ErrTooLarge, total)
	}
	heads := make([]byte, total)
	if _, err := io.ReadFull(br, heads); err != nil {
		return fmt.Errorf("read encapsulated headers: %w", err)
	}
	for i := 0; i < len(ps)-1; i++ {
		sec := heads[ps[i].off:ps[i+1].off]
		switch ps[i].name {
		case "req-hdr":
			r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(sec)))
			if err != nil {
				return fmt.Errorf("%w: encapsulated request: %v", ErrProtocol, err)
			}
			res.Request = r
		case "res-hdr":
			r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(sec)), nil)
			if err != nil {
				return fmt.Errorf("%w: encapsulated response: %v", ErrProtocol, err)
			}
			res.Response = r
		}
	}
	if ps[len(ps)-1].name == "null-body" {
		return nil
	}
	body, err := readChunked(br, c.cfg.MaxBody)
	if err != nil {
		return err
	}
	res.Body = body
	return nil
}

// readChunked reads an ICAP chunked body (chunk extensions such as
// "; ieof" are ignored).
func readChunked(br *bufio.Reader, maxBody int64) ([]byte, error) {
	tp := textproto.NewReader(br)
	var body bytes.Buffer
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("read chunk size: %w", err)
		}
		size, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: bad chunk size %q", ErrProtocol, line)
		}
		if n == 0 {
			// trailer (usually empty) up to the blank line
			for {
				l, err := tp.ReadLine()
				if err != nil {
					return nil, fmt.Errorf("read chunk trailer: %w", err)
				}
				if l == "" {
					return body.Bytes(), nil
				}
			}
		}
		if n > maxBody-int64(body.Len()) { // not len+n: that overflows for n near 2^63
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBody)
		}
		if _, err := io.CopyN(&body, br, n); err != nil {
			return nil, fmt.Errorf("read chunk: %w", err)
		}
		if crlf, err := tp.ReadLine(); err != nil || crlf != "" {
			return nil, fmt.Errorf("%w: chunk not terminated by CRLF", ErrProtocol)
		}
	}
}

func writeHeader(b *bytes.Buffer, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(b, "%s: %s\r\n", k, strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
		}
	}
}

func requestHead(r *http.Request) []byte {
	var b bytes.Buffer
	uri := r.URL.RequestURI()
	if r.URL.Host != "" {
		uri = r.URL.String()
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", r.Method, uri)
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if host != "" && r.Header.Get("Host") == "" {
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	writeHeader(&b, r.Header)
	b.WriteString("\r\n")
	return b.Bytes()
}

func responseHead(r *http.Response) []byte {
	var b bytes.Buffer
	text := http.StatusText(r.StatusCode)
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.StatusCode, text)
	writeHeader(&b, r.Header)
	b.WriteString("\r\n")
	return b.Bytes()
}
