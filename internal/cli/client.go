package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Environment variables read by the admin commands.
const (
	envAddr  = "PORTCULLIS_ADDR"  // admin API base URL
	envToken = "PORTCULLIS_TOKEN" // the admin token itself
)

// defaultServer is the dev-mode admin address (make run).
const defaultServer = "http://127.0.0.1:9443"

// clientOpts are the flags every admin command shares.
type clientOpts struct {
	server    string
	tokenFile string
	caFile    string
	timeout   time.Duration
}

func (o *clientOpts) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "admin API URL (default $"+envAddr+" or "+defaultServer+")")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the admin token (default: $"+envToken+" holds the token)")
	f.StringVar(&o.caFile, "ca-file", "", "PEM CA bundle to verify the server's TLS certificate")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "request timeout")
}

// client talks to a node's admin REST API.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

func (o *clientOpts) client() (*client, error) {
	server := o.server
	if server == "" {
		server = os.Getenv(envAddr)
	}
	if server == "" {
		server = defaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http(s)://HOST:PORT", server)
	}
	u.Path = strings.TrimRight(u.Path, "/")

	token, err := o.readToken()
	if err != nil {
		return nil, err
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &client{base: u, token: token, http: &http.Client{Transport: tr, Timeout: o.timeout}}, nil
}

func (o *clientOpts) readToken() (string, error) {
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read admin token: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("admin token file %s is empty", o.tokenFile)
		}
		return t, nil
	}
	if t := strings.TrimSpace(os.Getenv(envToken)); t != "" {
		return t, nil
	}
	return "", errors.New("no admin token: pass --token-file PATH (dev mode writes DATA_DIR/admin-token) or set " + envToken)
}

// apiError is the admin API's error envelope.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func (e *apiError) Error() string {
	switch e.Code {
	case "unauthorized":
		return "the server rejected the admin token: " + e.Message + " (check --token-file or $" + envToken + ")"
	}
	msg := e.Message
	if e.Details != nil {
		msg += "\n" + formatDetails(e.Details)
	}
	return msg
}

// formatDetails renders error details (usually a list of problems) one per
// line.
func formatDetails(d any) string {
	switch v := d.(type) {
	case []any:
		var lines []string
		for _, item := range v {
			lines = append(lines, "  "+detailLine(item))
		}
		return strings.Join(lines, "\n")
	default:
		return "  " + detailLine(v)
	}
}

func detailLine(item any) string {
	m, ok := item.(map[string]any)
	if !ok {
		b, _ := json.Marshal(item)
		return string(b)
	}
	if s, ok := m["error"].(string); ok {
		return s
	}
	if s, ok := m["message"].(string); ok {
		return s
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil).
func (c *client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, contentType = bytes.NewReader(b), "application/yaml"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd, contentType = bytes.NewReader(j), "application/json"
	}
	// path arrives escaped (url.PathEscape of names): join it to the base
	// as text, so that it is not escaped a second time.
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read response from %s: %w", c.base.Host, err)
	}
	if resp.StatusCode/100 != 2 {
		var env struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return env.Error
		}
		return fmt.Errorf("server %s answered %s, and not as a Portcullis admin API does (is --server / $%s the admin listener, e.g. %s, rather than the gateway?)",
			c.base.Host, resp.Status, envAddr, defaultServer)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response from %s: %w", c.base.Host, err)
	}
	return nil
}

func (c *client) transportError(err error) error {
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot reach portcullis at %s: %v (is the server running, and is --server / $%s right?)",
			c.base.Redacted(), opErr.Err, envAddr)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Errorf("portcullis at %s did not answer in time", c.base.Redacted())
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("TLS certificate of %s not trusted: %v (pass --ca-file)", c.base.Host, certErr.Err)
	}
	return fmt.Errorf("request to %s failed: %w", c.base.Redacted(), err)
}
