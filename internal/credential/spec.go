// Package credential injects backend credentials into the gateway's upstream
// requests. An Upstream names secrets (stored sealed by the HSM) in a Spec;
// Transport, an http.RoundTripper, unseals them at call time, puts them into
// each request as a header, a query parameter, HTTP Basic auth, or an OAuth
// 2.0 access token it fetches from the upstream's token endpoint with the
// client-credentials grant, and strips whatever credential the agent sent.
// SecretsHandler serves the admin API's secret routes (put, list, delete:
// sealed by the HSM, replicated as ciphertext, never shown again).
//
// # Where a plaintext lives, and for how long
//
//   - Unsealed secret bytes: in Transport's cache (a []byte per secret name)
//     for at most Config.CacheTTL (default 30s) after the unseal; a timer
//     zeroes and drops them at expiry, and Close zeroes all of them. With a
//     negative CacheTTL nothing is cached: each request unseals and zeroes.
//   - The rendered header or query value: a Go string in the outgoing
//     request only, from RoundTrip until the request is written; Go strings
//     cannot be zeroed, so it stays in the heap until collected.
//   - OAuth 2.0 client secret: cached like any secret (above); as a string
//     in the token request only while that request is sent.
//   - OAuth 2.0 access tokens (upstream-issued, short-lived): cached until
//     shortly before they expire; they never reach the agent.
//
// No path of this package returns a secret to a caller, logs it, or puts it
// in an error.
package credential

import (
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Spec is the credential of an Upstream. Exactly one of the four forms is set:
//
//	{secret: helpdesk-token, header: Authorization, format: "Bearer {secret}"}
//	{secret: maps-key, query: key}
//	{basic: {username: svc, passwordSecret: crm-password}}
//	{oauth2: {tokenURL: https://idp/token, clientID: portcullis, clientSecret: crm-client-secret, scopes: [read]}}
type Spec struct {
	// Secret names the stored secret for the header and query forms.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// Header is the request header to set, e.g. X-API-Key; default
	// Authorization (when Query is empty).
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	// Query is the query parameter to set instead of a header.
	Query string `json:"query,omitempty" yaml:"query,omitempty"`
	// Format renders the value; "{secret}" is replaced by the secret.
	// Default "Bearer {secret}" for Authorization, "{secret}" otherwise.
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
	// Basic is HTTP Basic authentication.
	Basic *Basic `json:"basic,omitempty" yaml:"basic,omitempty"`
	// OAuth2 is the OAuth 2.0 client-credentials grant toward the upstream.
	OAuth2 *OAuth2 `json:"oauth2,omitempty" yaml:"oauth2,omitempty"`
}

// Basic is HTTP Basic authentication; the username is plain or a secret.
type Basic struct {
	Username       string `json:"username,omitempty" yaml:"username,omitempty"`
	UsernameSecret string `json:"usernameSecret,omitempty" yaml:"usernameSecret,omitempty"`
	PasswordSecret string `json:"passwordSecret" yaml:"passwordSecret"`
}

// OAuth2 is the client-credentials grant (RFC 6749 §4.4). The gateway fetches
// the access token itself and sends it as "Authorization: Bearer <token>".
type OAuth2 struct {
	TokenURL string `json:"tokenURL" yaml:"tokenURL"`
	ClientID string `json:"clientID" yaml:"clientID"`
	// ClientSecret names the stored secret holding the client secret.
	ClientSecret string   `json:"clientSecret" yaml:"clientSecret"`
	Scopes       []string `json:"scopes,omitempty" yaml:"scopes,omitempty"`
	// Audience, if set, is sent as the "audience" parameter (Auth0, Okta and
	// others use it to pick the resource).
	Audience string `json:"audience,omitempty" yaml:"audience,omitempty"`
	// AuthStyle is how the client authenticates to the token endpoint:
	// "header" (default: HTTP Basic, RFC 6749 §2.3.1) or "body" (client_id
	// and client_secret form parameters).
	AuthStyle string `json:"authStyle,omitempty" yaml:"authStyle,omitempty"`
}

// FieldError is a validation error naming the offending field, as the admin
// wrote it (e.g. "credential.oauth2.tokenURL"). Safe to show a user.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

var (
	secretName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	tokenChars = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$") // RFC 9110 token
)

// headers the credential may not be placed in: they frame the message.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Keep-Alive": true, "Content-Type": true,
}

func checkSecretName(field, name string) error {
	if name == "" {
		return &FieldError{field, "required"}
	}
	if !secretName.MatchString(name) {
		return &FieldError{field, fmt.Sprintf("%q is not a secret name (letters, digits, '.', '_', '-'; at most 128)", name)}
	}
	return nil
}

// Validate checks the spec and returns the first problem as a *FieldError.
func (s *Spec) Validate() error {
	forms := 0
	if s.Secret != "" || s.Header != "" || s.Query != "" || s.Format != "" {
		forms++
	}
	if s.Basic != nil {
		forms++
	}
	if s.OAuth2 != nil {
		forms++
	}
	switch {
	case forms == 0:
		return &FieldError{"credential", "set one of secret (with header or query), basic or oauth2"}
	case forms > 1:
		return &FieldError{"credential", "set only one of secret (with header or query), basic or oauth2"}
	}
	switch {
	case s.Basic != nil:
		return s.Basic.validate()
	case s.OAuth2 != nil:
		return s.OAuth2.validate()
	}
	if err := checkSecretName("credential.secret", s.Secret); err != nil {
		return err
	}
	switch {
	case s.Header != "" && s.Query != "":
		return &FieldError{"credential.query", "set header or query, not both"}
	case s.Header != "" && !tokenChars.MatchString(s.Header):
		return &FieldError{"credential.header", fmt.Sprintf("%q is not a valid header name", s.Header)}
	case s.Header != "" && forbiddenHeaders[canonical(s.Header)]:
		return &FieldError{"credential.header", fmt.Sprintf("%s cannot carry a credential", canonical(s.Header))}
	case s.Query != "" && strings.ContainsAny(s.Query, "&=#?\r\n "):
		return &FieldError{"credential.query", fmt.Sprintf("%q is not a valid query parameter name", s.Query)}
	}
	if s.Format != "" {
		if n := strings.Count(s.Format, "{secret}"); n != 1 {
			return &FieldError{"credential.format", fmt.Sprintf("must contain {secret} exactly once, has %d", n)}
		}
		if strings.ContainsAny(s.Format, "\r\n\x00") {
			return &FieldError{"credential.format", "contains a line break or NUL"}
		}
	}
	return nil
}

func (b *Basic) validate() error {
	switch {
	case b.Username == "" && b.UsernameSecret == "":
		return &FieldError{"credential.basic.username", "set username or usernameSecret"}
	case b.Username != "" && b.UsernameSecret != "":
		return &FieldError{"credential.basic.usernameSecret", "set username or usernameSecret, not both"}
	case strings.Contains(b.Username, ":"):
		return &FieldError{"credential.basic.username", "contains ':'"}
	case b.UsernameSecret != "":
		if err := checkSecretName("credential.basic.usernameSecret", b.UsernameSecret); err != nil {
			return err
		}
	}
	return checkSecretName("credential.basic.passwordSecret", b.PasswordSecret)
}

func (o *OAuth2) validate() error {
	u, err := url.Parse(o.TokenURL)
	switch {
	case o.TokenURL == "":
		return &FieldError{"credential.oauth2.tokenURL", "required"}
	case err != nil || u.Host == "":
		return &FieldError{"credential.oauth2.tokenURL", fmt.Sprintf("%q is not an absolute URL", o.TokenURL)}
	case u.User != nil:
		return &FieldError{"credential.oauth2.tokenURL", "must not carry credentials"}
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return &FieldError{"credential.oauth2.tokenURL", "must be https (http only to a loopback address)"}
	case o.ClientID == "":
		return &FieldError{"credential.oauth2.clientID", "required"}
	case o.AuthStyle != "" && o.AuthStyle != "header" && o.AuthStyle != "body":
		return &FieldError{"credential.oauth2.authStyle", fmt.Sprintf("%q: want header or body", o.AuthStyle)}
	}
	for i, sc := range o.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \"\\") {
			return &FieldError{fmt.Sprintf("credential.oauth2.scopes[%d]", i), fmt.Sprintf("%q is not a scope token", sc)}
		}
	}
	return checkSecretName("credential.oauth2.clientSecret", o.ClientSecret)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Secrets lists the secret names the spec references, for checks that they
// exist before an Upstream is accepted.
func (s *Spec) Secrets() []string {
	switch {
	case s.Basic != nil:
		if s.Basic.UsernameSecret != "" {
			return []string{s.Basic.UsernameSecret, s.Basic.PasswordSecret}
		}
		return []string{s.Basic.PasswordSecret}
	case s.OAuth2 != nil:
		return []string{s.OAuth2.ClientSecret}
	case s.Secret != "":
		return []string{s.Secret}
	}
	return nil
}

func canonical(h string) string { return textproto.CanonicalMIMEHeaderKey(h) }

// target returns where the secret goes: a header name or, if query is set,
// a query parameter; and the value format, with the defaults applied.
func (s *Spec) target() (header, query, format string) {
	header, query, format = s.Header, s.Query, s.Format
	if query == "" && header == "" {
		header = "Authorization"
	}
	if format == "" {
		format = "{secret}"
		if query == "" && canonical(header) == "Authorization" {
			format = "Bearer {secret}"
		}
	}
	return header, query, format
}

// FromState converts the replicated model's credential (same JSON shape).
func FromState(c *state.Credential) Spec {
	if c == nil {
		return Spec{}
	}
	s := Spec{Secret: c.Secret, Header: c.Header, Query: c.Query, Format: c.Format}
	if b := c.Basic; b != nil {
		s.Basic = &Basic{Username: b.Username, UsernameSecret: b.UsernameSecret, PasswordSecret: b.PasswordSecret}
	}
	if o := c.OAuth2; o != nil {
		s.OAuth2 = &OAuth2{TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: o.ClientSecretSecret,
			Scopes: append([]string(nil), o.Scopes...), Audience: o.Audience, AuthStyle: o.AuthStyle}
	}
	return s
}
