package gateway

import (
	"net/http"
	"net/netip"
)

// Principal is the authenticated caller.
type Principal struct {
	Agent, Persona, KeyID string
	ClientIP              netip.Addr
}

// Authenticator maps a request's credential to a principal. An error means
// 401 (the text is not shown to the caller).
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}
