// Package authn turns an agent's credential into a Principal: who is calling
// (agent, persona, credential id) and from where. API keys are the first
// method; OAuth 2.1, OIDC federation and mTLS plug in behind the same
// Authenticator interface.
//
// An agent's credential is good only at the gateway: the gateway strips it
// before anything is forwarded upstream.
package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Principal is an authenticated caller.
type Principal struct {
	Agent    string
	Persona  string
	KeyID    string // the credential's id, safe to log
	Method   string // "apikey"
	ClientIP netip.Addr
}

// Authenticator authenticates one HTTP request. Implementations must be safe
// for concurrent use and must not block on the raft leader.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// ErrUnauthenticated is wrapped by every authentication failure; the
// gateway answers 401 with a WWW-Authenticate challenge.
var ErrUnauthenticated = errors.New("unauthenticated")

// Error is an authentication failure whose Reason is safe to show the
// caller. It never contains the credential.
type Error struct {
	Reason string // e.g. "missing bearer token"
	// Code is the RFC 6750 error code for WWW-Authenticate ("invalid_request",
	// "invalid_token"); empty when no credential was sent.
	Code string
}

func (e *Error) Error() string       { return "unauthenticated: " + e.Reason }
func (e *Error) Unwrap() error       { return ErrUnauthenticated }
func fail(code, reason string) error { return &Error{Code: code, Reason: reason} }

// KeyPrefix starts every Portcullis API key, so that DLP and secret
// scanners can recognise a leaked one.
const KeyPrefix = "pck_"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewAPIKey makes a new key for agent. The token is shown to the admin once;
// only key (which holds the SHA-256 of the secret) is stored. The secret has
// 256 bits of entropy, so a fast hash is as good as a slow one here.
func NewAPIKey(agent string, rnd io.Reader) (token string, key *state.APIKey, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var idb [10]byte
	var secret [32]byte
	if _, err := io.ReadFull(rnd, idb[:]); err != nil {
		return "", nil, fmt.Errorf("new api key: %w", err)
	}
	if _, err := io.ReadFull(rnd, secret[:]); err != nil {
		return "", nil, fmt.Errorf("new api key: %w", err)
	}
	id := idEncoding.EncodeToString(idb[:])
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(sec))
	return KeyPrefix + id + "_" + sec, &state.APIKey{ID: id, Agent: agent, Hash: sum[:]}, nil
}

// parseKey splits a token into id and secret.
func parseKey(tok string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(tok, KeyPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 43 {
		return "", "", false
	}
	return id, secret, true
}

// StateSource is what authenticators read: the latest control state.
type StateSource interface{ Current() *state.Snapshot }

// APIKeys authenticates "Authorization: Bearer pck_…" against the key
// hashes in the replicated state.
type APIKeys struct {
	State StateSource
	Now   func() time.Time // nil means time.Now
}

var _ Authenticator = (*APIKeys)(nil)

// Authenticate implements Authenticator.
func (a *APIKeys) Authenticate(r *http.Request) (Principal, error) {
	tok, err := BearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	id, secret, ok := parseKey(tok)
	if !ok {
		return Principal{}, fail("invalid_token", "malformed API key")
	}
	snap := a.State.Current()
	key := snap.Keys[id]
	sum := sha256.Sum256([]byte(secret))
	if key == nil || subtle.ConstantTimeCompare(sum[:], key.Hash) != 1 {
		return Principal{}, fail("invalid_token", "unknown or revoked API key")
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if !key.Expires.IsZero() && !now().Before(key.Expires) {
		return Principal{}, fail("invalid_token", "API key expired")
	}
	agent := snap.Agents[key.Agent]
	if agent == nil {
		return Principal{}, fail("invalid_token", "the key's agent no longer exists")
	}
	ip := ClientIP(r)
	if key.PinIP != "" {
		pin, err := netip.ParseAddr(key.PinIP)
		if err != nil || pin.Unmap() != ip.Unmap() {
			return Principal{}, fail("invalid_token", "API key is pinned to another client address")
		}
	} else if per := snap.Personas[agent.Persona]; per != nil && per.Network != nil && per.Network.PinTokensToIP {
		// A key made before the persona turned pinning on has no address:
		// it is good from nowhere.
		return Principal{}, fail("invalid_token", "the persona pins credentials to client addresses and this API key has none; create one with --pin-ip")
	}
	return Principal{Agent: agent.Name, Persona: agent.Persona, KeyID: key.ID, Method: "apikey", ClientIP: ip}, nil
}

// BearerToken extracts the token of an RFC 6750 Authorization header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", fail("", "missing bearer token")
	}
	if len(h) > 1 {
		return "", fail("invalid_request", "more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fail("invalid_request", "Authorization must be \"Bearer <token>\"")
	}
	return strings.TrimSpace(tok), nil
}

// ClientIP is the peer address of the connection. Forwarded headers are not
// trusted: the appliance is the first hop.
func ClientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// Challenge returns the WWW-Authenticate value for a failed request.
func Challenge(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return fmt.Sprintf(`Bearer realm="portcullis", error=%q, error_description=%q`, e.Code, e.Reason)
	}
	return `Bearer realm="portcullis"`
}
