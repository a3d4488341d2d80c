package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// WebhookConfig POSTs alert decisions, one JSON record each, to a URL.
type WebhookConfig struct {
	// URL receives the POSTs (http or https); empty: the webhook is off.
	URL string
	// On lists the decisions that alert (default deny and error): see
	// ParseDecisions.
	On []string
	// TokenFile holds a bearer token sent as "Authorization: Bearer …"
	// (read once at start; never logged).
	TokenFile string
	// CAFile verifies an https URL (default: the system roots).
	CAFile string
	// Attempts bounds the tries of one record (default 3), each bounded by
	// Timeout (default 5s), with a pause of 0.5s, 1s, … between them.
	Attempts int
	Timeout  time.Duration
}

// ParseDecisions parses a comma-separated list of decisions (allow, deny,
// error) into a set; "" is the default, deny and error.
func ParseDecisions(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return []string{gateway.Deny, gateway.Fail}, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case gateway.Allow, gateway.Deny, gateway.Fail:
		default:
			return nil, fmt.Errorf("decision %q: want allow, deny or error", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (c *WebhookConfig) validate() error {
	if c.URL == "" {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--webhook-url: want an http:// or https:// URL")
	}
	if u.User != nil {
		return fmt.Errorf("--webhook-url: put credentials in --webhook-token-file, not in the URL")
	}
	if len(c.On) == 0 {
		c.On, _ = ParseDecisions("")
	}
	for _, d := range c.On {
		if _, err := ParseDecisions(d); err != nil {
			return fmt.Errorf("--webhook-on: %w", err)
		}
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return nil
}

type webhookSender struct {
	cfg    WebhookConfig
	node   string
	token  string
	client *http.Client
	on     [3]bool // allow, deny, error
}

func newWebhook(cfg Config) (*webhookSender, error) {
	w := &webhookSender{cfg: cfg.Webhook, node: cfg.Node}
	for _, d := range w.cfg.On {
		w.on[decisionIndex(d)] = true
	}
	if w.cfg.TokenFile != "" {
		b, err := os.ReadFile(w.cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("--webhook-token-file: %w", err)
		}
		w.token = strings.TrimSpace(string(b))
		if w.token == "" {
			return nil, fmt.Errorf("--webhook-token-file %s is empty", w.cfg.TokenFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if u, _ := url.Parse(w.cfg.URL); u.Scheme == "https" {
		t, err := tlsConfig(u.Hostname(), w.cfg.CAFile, "--webhook-ca-file")
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = t
	}
	w.client = &http.Client{Transport: tr, Timeout: w.cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w, nil
}

func decisionIndex(d string) int {
	switch d {
	case gateway.Deny:
		return 1
	case gateway.Fail:
		return 2
	}
	return 0
}

// wants is the webhook's filter, run on the gateway's audit goroutine.
func (w *webhookSender) wants(d *gateway.Decision) bool { return w.on[decisionIndex(d.Decision)] }

// send POSTs each record in turn; a record is lost after Attempts failed
// tries (a network error, a 5xx or 429 answer; any other non-2xx answer
// is final at once).
func (w *webhookSender) send(ctx context.Context, batch []*gateway.Decision) (int, error) {
	lost := 0
	var last error
	for i, d := range batch {
		body, _ := json.Marshal(recordOf(d, w.node)) // a record always marshals
		if err := w.post(ctx, body); err != nil {
			lost++
			last = err
			if ctx.Err() != nil { // Close's drain ran out: the rest is lost too
				return lost + len(batch) - i - 1, err
			}
		}
	}
	return lost, last
}

func (w *webhookSender) post(ctx context.Context, body []byte) error {
	pause := 500 * time.Millisecond
	var err error
	for try := 1; ; try++ {
		var retry bool
		retry, err = w.postOnce(ctx, body)
		if err == nil || !retry || try >= w.cfg.Attempts {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
		pause *= 2
	}
}

func (w *webhookSender) postOnce(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "portcullis-export")
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook post: %w", redactURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return false, fmt.Errorf("webhook answered %s (not retried)", resp.Status)
}

// redactURL keeps only the scheme and host of the URL in a client error:
// webhook URLs often carry their secret in the path or the query.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return &url.Error{Op: ue.Op, URL: u.Scheme + "://" + u.Host + "/…", Err: ue.Err}
		}
	}
	return err
}
