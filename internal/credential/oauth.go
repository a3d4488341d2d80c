package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// oauthSource gets and caches the upstream's access token with the
// client-credentials grant. One fetch runs at a time; a token is refreshed in
// the background once 80% of its lifetime (at most 60s before expiry) has
// passed, and used until it expires; with no valid token, calls wait for the
// fetch and fail closed if it fails.
type oauthSource struct {
	t    *Transport
	spec *OAuth2

	mu        sync.Mutex
	tok       string
	exp       time.Time
	refreshAt time.Time

	fetch      flight[string]
	refreshing atomic.Bool
}

// defaultTokenLifetime is assumed when the endpoint omits expires_in.
const defaultTokenLifetime = 60 * time.Second

func (o *oauthSource) token(ctx context.Context) (string, error) {
	o.mu.Lock()
	tok, exp, refreshAt := o.tok, o.exp, o.refreshAt
	o.mu.Unlock()
	now := time.Now()
	if tok != "" && now.Before(exp) {
		if now.After(refreshAt) && o.refreshing.CompareAndSwap(false, true) {
			go func() {
				defer o.refreshing.Store(false)
				_, _ = o.fetch.do("token", func() (string, error) { return o.get(context.Background()) })
			}()
		}
		return tok, nil
	}
	return o.fetch.do("token", func() (string, error) { return o.get(context.WithoutCancel(ctx)) })
}

func (o *oauthSource) reset() {
	o.mu.Lock()
	o.tok, o.exp, o.refreshAt = "", time.Time{}, time.Time{}
	o.mu.Unlock()
}

// invalidate forgets the token if it is the one in authorization.
func (o *oauthSource) invalidate(authorization string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tok != "" && authorization == "Bearer "+o.tok {
		o.tok, o.exp = "", time.Time{}
	}
}

type tokenResponse struct {
	AccessToken string      `json:"access_token"`
	TokenType   string      `json:"token_type"`
	ExpiresIn   json.Number `json:"expires_in"`
	Error       string      `json:"error"`
}

// oauthErrorCodes are the error codes a token endpoint's refusal is reported
// with (RFC 6749 §5.2, plus the codes of §4.1.2.1 and RFC 6750 §3.1 that
// endpoints answer in practice). Anything else is reported as "unknown": a
// free-form code may echo what was sent, such as the client secret.
var oauthErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
	"access_denied": true, "server_error": true, "temporarily_unavailable": true,
	"invalid_token": true, "insufficient_scope": true,
}

// get requests a token from the endpoint and caches it.
func (o *oauthSource) get(ctx context.Context) (string, error) {
	up := o.t.cfg.Upstream
	secret, err := o.t.secret(ctx, o.spec.ClientSecret)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(o.spec.Scopes) > 0 {
		form.Set("scope", strings.Join(o.spec.Scopes, " "))
	}
	if o.spec.Audience != "" {
		form.Set("audience", o.spec.Audience)
	}
	if o.spec.AuthStyle == "body" {
		form.Set("client_id", o.spec.ClientID)
		form.Set("client_secret", secret)
	}
	ctx, cancel := context.WithTimeout(ctx, o.t.cfg.TokenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.spec.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: upstream %q: %v", ErrTokenEndpoint, up, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if o.spec.AuthStyle != "body" {
		req.SetBasicAuth(url.QueryEscape(o.spec.ClientID), url.QueryEscape(secret))
	}
	start := time.Now()
	resp, err := o.t.cfg.TokenTransport.RoundTrip(req)
	if err != nil {
		o.t.log.Warn("credential: token endpoint unreachable", "err", err)
		return "", fmt.Errorf("%w: upstream %q: %v", ErrTokenEndpoint, up, err)
	}
	defer resp.Body.Close()
	tok, life, err := parseTokenResponse(resp.StatusCode, resp.Body)
	if err != nil {
		o.t.log.Warn("credential: token endpoint refused", "status", resp.StatusCode, "err", err)
		return "", fmt.Errorf("%w: upstream %q: %w", ErrTokenEndpoint, up, err)
	}
	margin := min(life/5, 60*time.Second)
	o.mu.Lock()
	o.tok, o.exp, o.refreshAt = tok, start.Add(life), start.Add(life-margin)
	o.mu.Unlock()
	o.t.log.Info("credential: upstream access token fetched", "expires_in", life.String())
	return tok, nil
}

// parseTokenResponse reads a token endpoint's answer (RFC 6749 §5.1, §5.2).
// Its errors carry the status and the OAuth error code only: never the body,
// which may echo what was sent.
func parseTokenResponse(status int, body io.Reader) (string, time.Duration, error) {
	var tr tokenResponse
	derr := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&tr)
	if status != http.StatusOK {
		code := "unknown"
		if oauthErrorCodes[tr.Error] {
			code = tr.Error
		}
		return "", 0, fmt.Errorf("status %d, error %s", status, code)
	}
	switch {
	case derr != nil:
		return "", 0, errors.New("token response is not JSON")
	case tr.AccessToken == "" || len(tr.AccessToken) > 16<<10 || !validHeaderValue(tr.AccessToken) || strings.ContainsAny(tr.AccessToken, " \t"):
		return "", 0, errors.New("token response has no usable access_token")
	case !strings.EqualFold(tr.TokenType, "bearer"):
		// The value is not echoed: it comes from the endpoint and may repeat
		// what was sent.
		return "", 0, errors.New("token_type is not Bearer")
	}
	life := defaultTokenLifetime
	if n, err := tr.ExpiresIn.Int64(); err == nil && n > 0 && n < 1<<31 {
		life = time.Duration(n) * time.Second
	}
	return tr.AccessToken, life, nil
}
