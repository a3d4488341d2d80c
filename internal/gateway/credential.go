package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/portcullis-gw/portcullis/internal/credential"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// Backend credentials: an upstream whose spec carries a Credential is called
// through a credential.Transport built for it (once per upstream object, so
// while its spec is unchanged; closed, which zeroes its cached plaintexts,
// when the upstream changes or goes). The plaintext lives only inside that
// Transport: unsealed bytes for at most Config.CredentialCacheTTL (30s),
// the rendered header or query value only in the outgoing request (see the
// credential package's doc). The agent's own Authorization, cookies and
// API-key headers are stripped by the Transport; the gateway never forwards
// them in the first place.

// sameCredential reports whether two upstream credentials are equal.
func sameCredential(a, b *credential.Spec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a, b)
}

// httpClient returns the client for u's calls: the shared pooled client,
// wrapped by Config.UpstreamTransport if set, and, when the upstream has a
// Credential, by the upstream's credential transport (outermost, so nothing
// after it can add the agent's credential back).
func (u *upstream) httpClient() (*http.Client, error) {
	hc := u.g.cfg.HTTPClient
	if u.g.cfg.UpstreamTransport == nil && u.spec.Credential == nil {
		return hc, nil
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if wrap := u.g.cfg.UpstreamTransport; wrap != nil {
		base = wrap(u.spec.Name, base)
	}
	if u.spec.Credential == nil {
		return &http.Client{Transport: base}, nil
	}
	u.credMu.Lock()
	defer u.credMu.Unlock()
	if u.closed.Load() {
		return nil, errors.New("upstream removed")
	}
	if u.cred == nil {
		if u.g.cfg.Secrets == nil {
			return nil, fmt.Errorf("%w: upstream %q has a credential but this node has no secret store", credential.ErrUnavailable, u.spec.Name)
		}
		tr, err := credential.New(credential.Config{
			Upstream: u.spec.Name,
			Spec:     *u.spec.Credential,
			Unsealer: u.g.cfg.Secrets,
			Base:     base,
			CacheTTL: u.g.cfg.CredentialCacheTTL,
			Logger:   u.g.log.With("upstream", u.spec.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("upstream %q: credential: %w", u.spec.Name, err)
		}
		u.cred = tr
	}
	return &http.Client{Transport: u.cred}, nil
}

// closeCredential zeroes and drops the upstream's cached plaintexts and
// access tokens. Call it after closed is set.
func (u *upstream) closeCredential() {
	u.credMu.Lock()
	defer u.credMu.Unlock()
	if u.cred != nil {
		_ = u.cred.Close()
		u.cred = nil
	}
}

// credentialFailure maps a credential error to the agent's error. The text
// names the upstream only: never a secret's name or value. ok is false when
// err is not about the backend credential.
func credentialFailure(upstream string, err error) (e *mcp.Error, status string, ok bool) {
	switch {
	case errors.Is(err, credential.ErrUnavailable):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unavailable: HSM unreachable; other tools keep working, retry later", upstream), "credential unavailable", true
	case errors.Is(err, credential.ErrSecretNotFound):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unavailable: a secret it needs is not stored", upstream), "credential missing", true
	case errors.Is(err, credential.ErrTokenEndpoint):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unavailable: its OAuth token endpoint failed", upstream), "token endpoint failed", true
	case errors.Is(err, credential.ErrBadSecret):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unusable: the stored value cannot be sent", upstream), "credential unusable", true
	}
	return nil, "", false
}
