package credential

import (
	"context"
	"errors"
	"fmt"

	"github.com/portcullis-gw/portcullis/hsm"
)

// Errors a Transport returns (wrapped; test with errors.Is). Their text names
// the upstream and the secret, never a value. The gateway answers the agent
// with 502 (ErrSecretNotFound, ErrTokenEndpoint) or 503 (ErrUnavailable) and
// keeps serving other upstreams.
var (
	// ErrSecretNotFound: the spec names a secret that is not stored.
	ErrSecretNotFound = errors.New("credential: secret not found")
	// ErrUnavailable: the HSM does not answer; the call fails closed.
	ErrUnavailable = errors.New("credential: secret store unavailable")
	// ErrTokenEndpoint: the upstream's OAuth 2.0 token endpoint failed.
	ErrTokenEndpoint = errors.New("credential: token endpoint failed")
	// ErrBadSecret: the stored value cannot be placed in a request (a line
	// break or control character in a header value).
	ErrBadSecret = errors.New("credential: secret value not usable")
)

// Unsealer returns the plaintext of a stored secret's current version. The
// caller owns the returned slice and clears it when done. Implementations are
// safe for concurrent use and must not log the value.
type Unsealer interface {
	Unseal(ctx context.Context, name string) ([]byte, error)
}

// Lookup finds a secret's current version and its ciphertext in the
// replicated state; ok is false when there is no such secret.
type Lookup func(name string) (version uint64, sealed []byte, ok bool)

// KeystoreUnsealer unseals the ciphertexts Lookup finds with an HSM keystore.
type KeystoreUnsealer struct {
	Keystore *hsm.Keystore
	Lookup   Lookup
}

var _ Unsealer = KeystoreUnsealer{}

// Unseal implements Unsealer.
func (u KeystoreUnsealer) Unseal(ctx context.Context, name string) ([]byte, error) {
	v, sealed, ok := u.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrSecretNotFound, name)
	}
	pt, err := u.Keystore.Unseal(ctx, name, v, sealed)
	switch {
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed):
		return nil, fmt.Errorf("%w: unseal %q: %w", ErrUnavailable, name, err)
	case err != nil:
		return nil, fmt.Errorf("credential: unseal %q: %w", name, err)
	}
	return pt, nil
}
