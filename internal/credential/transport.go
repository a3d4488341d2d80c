package credential

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultCacheTTL is how long an unsealed secret stays in a Transport's memory.
const DefaultCacheTTL = 30 * time.Second

// Config configures a Transport for one upstream.
type Config struct {
	// Upstream names the upstream, for errors and logs.
	Upstream string
	// URL is the upstream's URL. When set, the credential goes only to
	// requests for its origin (scheme, host and port): a request for
	// another origin, such as a redirect the upstream answered with, fails
	// with ErrOtherOrigin and is not sent.
	URL string
	// Spec is the upstream's credential; it must Validate.
	Spec Spec
	// Unsealer opens the stored secrets.
	Unsealer Unsealer
	// Base sends the requests; default http.DefaultTransport.
	Base http.RoundTripper
	// TokenTransport sends OAuth 2.0 token requests; default Base.
	TokenTransport http.RoundTripper
	// TokenTimeout bounds one token request; default 10s.
	TokenTimeout time.Duration
	// CacheTTL is how long unsealed secret bytes stay in memory; 0 means
	// DefaultCacheTTL, negative disables caching (unseal on every request).
	CacheTTL time.Duration
	// Logger gets events (token fetched, unseal failed); never values.
	Logger *slog.Logger
}

// Transport is an http.RoundTripper that injects one upstream's credential.
// It is safe for concurrent use.
type Transport struct {
	cfg  Config
	base http.RoundTripper
	log  *slog.Logger

	mu     sync.Mutex
	cache  map[string]*entry
	closed bool
	unseal flight[struct{}]

	oauth  *oauthSource // nil unless Spec.OAuth2
	origin string       // "" unless Config.URL
}

// origin is scheme://host:port with the default port filled in and the
// host lowercased.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

var _ http.RoundTripper = (*Transport)(nil)

// entry is one cached plaintext; a timer zeroes it at expiry.
type entry struct {
	val     []byte
	version uint64
	exp     time.Time
	timer   *time.Timer
}

// New returns a Transport for cfg.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.Unsealer == nil {
		return nil, errors.New("credential: config: Unsealer is nil")
	}
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	if cfg.TokenTransport == nil {
		cfg.TokenTransport = cfg.Base
	}
	if cfg.TokenTimeout <= 0 {
		cfg.TokenTimeout = 10 * time.Second
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Transport{cfg: cfg, base: cfg.Base, log: cfg.Logger.With("upstream", cfg.Upstream), cache: map[string]*entry{}}
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("credential: config: upstream URL %q is not an absolute URL", cfg.URL)
		}
		t.origin = origin(u)
	}
	if cfg.Spec.OAuth2 != nil {
		t.oauth = &oauthSource{t: t, spec: cfg.Spec.OAuth2}
	}
	return t, nil
}

// Close zeroes and drops every cached plaintext and access token. Requests
// after Close fail.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for name, e := range t.cache {
		e.timer.Stop()
		clear(e.val)
		delete(t.cache, name)
	}
	if t.oauth != nil {
		t.oauth.reset()
	}
	return nil
}

// RoundTrip sends a copy of req with the agent's credentials
// (Authorization, Proxy-Authorization, Cookie) removed and the upstream's
// credential added. If the credential cannot be had, or req is for another
// origin than Config.URL's, nothing is sent and the error wraps
// ErrUnavailable, ErrSecretNotFound, ErrBadSecret, ErrTokenEndpoint or
// ErrOtherOrigin.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, err := t.authorize(req)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil || t.oauth == nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// The upstream rejected our access token (revoked, or its clock differs):
	// forget it and retry once with a fresh one if the body can be replayed.
	t.oauth.invalidate(out.Header.Get("Authorization"))
	if req.Body != nil && req.GetBody == nil {
		return resp, nil
	}
	retry, err := t.authorize(req)
	if err != nil {
		return resp, nil
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return t.base.RoundTrip(retry)
}

// authorize returns the outgoing request: a clone of req without any
// credential the agent sent, with the upstream's credential set.
func (t *Transport) authorize(req *http.Request) (*http.Request, error) {
	if t.origin != "" && origin(req.URL) != t.origin {
		return nil, fmt.Errorf("upstream %q: %w: %s (the credential is only for %s)", t.cfg.Upstream, ErrOtherOrigin, origin(req.URL), t.origin)
	}
	ctx := req.Context()
	out := req.Clone(ctx)
	// Defence in depth: the gateway strips agent credentials already; an
	// agent's token must never reach an upstream, nor override ours.
	out.Header.Del("Authorization")
	out.Header.Del("Proxy-Authorization")
	out.Header.Del("Cookie") // a session cookie is a credential too
	s := t.cfg.Spec
	switch {
	case s.OAuth2 != nil:
		tok, err := t.oauth.token(ctx)
		if err != nil {
			return nil, err
		}
		out.Header.Set("Authorization", "Bearer "+tok)
	case s.Basic != nil:
		user := s.Basic.Username
		if s.Basic.UsernameSecret != "" {
			u, err := t.secret(ctx, s.Basic.UsernameSecret)
			if err != nil {
				return nil, err
			}
			if strings.Contains(u, ":") {
				return nil, fmt.Errorf("%w: %q holds a ':' and cannot be a Basic username", ErrBadSecret, s.Basic.UsernameSecret)
			}
			user = u
		}
		pass, err := t.secret(ctx, s.Basic.PasswordSecret)
		if err != nil {
			return nil, err
		}
		out.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	default:
		header, query, format := s.target()
		v, err := t.secret(ctx, s.Secret)
		if err != nil {
			return nil, err
		}
		v = strings.Replace(format, "{secret}", v, 1)
		if query == "" {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("%w: %q holds a control character", ErrBadSecret, s.Secret)
			}
			out.Header.Del(header)
			out.Header.Set(header, v)
			break
		}
		// req.Clone shares the URL's fields by value; copy before editing.
		u := *out.URL
		q := u.Query()
		q.Set(query, v)
		u.RawQuery = q.Encode()
		out.URL = &u
	}
	return out, nil
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// secret returns the plaintext of name's current version as a string, from
// the cache or a fresh unseal (one unseal per name at a time, shared by
// concurrent callers).
func (t *Transport) secret(ctx context.Context, name string) (string, error) {
	if t.cfg.CacheTTL < 0 {
		pt, _, err := t.cfg.Unsealer.Unseal(ctx, name)
		if err != nil {
			return "", t.unsealErr(name, err)
		}
		defer clear(pt)
		return string(pt), nil
	}
	for range 2 {
		want, ok := t.cfg.Unsealer.Version(name)
		if !ok {
			return "", fmt.Errorf("upstream %q: %w: %q", t.cfg.Upstream, ErrSecretNotFound, name)
		}
		if v, ok, err := t.cached(name, want); err != nil || ok {
			return v, err
		}
		_, err := t.unseal.do(name, func() (struct{}, error) {
			if _, ok, _ := t.cached(name, want); ok {
				return struct{}{}, nil // stored by a flight that just ended
			}
			pt, v, err := t.cfg.Unsealer.Unseal(context.WithoutCancel(ctx), name)
			if err != nil {
				return struct{}{}, t.unsealErr(name, err)
			}
			t.store(name, v, pt)
			return struct{}{}, nil
		})
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("upstream %q: %w: %q changed while being read", t.cfg.Upstream, ErrUnavailable, name)
}

func (t *Transport) unsealErr(name string, err error) error {
	t.log.Warn("credential: unseal failed; calls needing it fail closed", "secret", name, "err", err)
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSecretNotFound) {
		return fmt.Errorf("upstream %q: %w", t.cfg.Upstream, err)
	}
	return fmt.Errorf("upstream %q: %w: %w", t.cfg.Upstream, ErrUnavailable, err)
}

// cached returns the cached plaintext of name if it is of version want and
// has not expired.
func (t *Transport) cached(name string, want uint64) (string, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return "", false, fmt.Errorf("credential: upstream %q: transport closed", t.cfg.Upstream)
	}
	e, ok := t.cache[name]
	if !ok || e.version != want || time.Now().After(e.exp) {
		return "", false, nil
	}
	return string(e.val), true, nil
}

// store caches pt (taking ownership) until the TTL; then it is zeroed.
func (t *Transport) store(name string, version uint64, pt []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		clear(pt)
		return
	}
	if old, ok := t.cache[name]; ok {
		old.timer.Stop()
		clear(old.val)
	}
	e := &entry{val: pt, version: version, exp: time.Now().Add(t.cfg.CacheTTL)}
	e.timer = time.AfterFunc(t.cfg.CacheTTL, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.cache[name] == e {
			delete(t.cache, name)
		}
		clear(e.val)
	})
	t.cache[name] = e
}
