package gateway

import (
	"errors"

	"github.com/portcullis-gw/portcullis/internal/credential"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// credentialFailure maps a backend-credential error (from the transport the
// UpstreamTransport hook built, see credential.Transport) to the agent's
// error. The text names the upstream only: never a secret's name or value.
// ok is false when err is not about the backend credential. Other upstreams
// are unaffected: each has its own transport.
func credentialFailure(upstream string, err error) (e *mcp.Error, status string, ok bool) {
	switch {
	case err == nil:
		return nil, "", false
	case errors.Is(err, credential.ErrUnavailable):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unavailable: HSM unreachable; other tools keep working, retry later", upstream), "credential unavailable", true
	case errors.Is(err, credential.ErrSecretNotFound):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unavailable: a secret it needs is not stored", upstream), "credential missing", true
	case errors.Is(err, credential.ErrTokenEndpoint):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unavailable: its OAuth token endpoint failed", upstream), "token endpoint failed", true
	case errors.Is(err, credential.ErrOtherOrigin):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: refused to send its backend credential to another origin (the upstream redirected the call)", upstream), "credential redirect refused", true
	case errors.Is(err, credential.ErrBadSecret):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q: backend credential unusable: the stored value cannot be sent", upstream), "credential unusable", true
	}
	return nil, "", false
}
