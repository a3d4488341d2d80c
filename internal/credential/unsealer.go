package credential

import (
	"context"
	"errors"
	"fmt"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/state"
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
	// ErrOtherOrigin: a request (typically a redirect the upstream answered
	// with) is for another origin than the upstream's; the credential is
	// withheld and nothing is sent.
	ErrOtherOrigin = errors.New("credential: request for another origin than the upstream's")
)

// Unsealer opens stored secrets. Implementations are safe for concurrent use
// and never log a value.
type Unsealer interface {
	// Version returns the current version of the named secret; ok is false
	// when there is no such secret. It must be cheap (a snapshot lookup):
	// Transport calls it on every request so a new version is used at once.
	Version(name string) (version uint64, ok bool)
	// Unseal returns the plaintext of the secret's current version and that
	// version. The caller owns the slice and clears it when done.
	Unseal(ctx context.Context, name string) (plaintext []byte, version uint64, err error)
}

// Lookup finds a secret's current version and its ciphertext in the
// replicated state; ok is false when there is no such secret.
type Lookup func(name string) (version uint64, sealed []byte, ok bool)

// StateLookup reads secrets from the current replicated snapshot.
func StateLookup(current func() *state.Snapshot) Lookup {
	return func(name string) (uint64, []byte, bool) {
		snap := current()
		if snap == nil {
			return 0, nil, false
		}
		sec, ok := snap.Secrets[name]
		if !ok || sec == nil {
			return 0, nil, false
		}
		return sec.Version, sec.Sealed, true
	}
}

// KeystoreUnsealer unseals the ciphertexts Lookup finds with an HSM keystore.
type KeystoreUnsealer struct {
	Keystore *hsm.Keystore
	Lookup   Lookup
}

var _ Unsealer = KeystoreUnsealer{}

// Version implements Unsealer.
func (u KeystoreUnsealer) Version(name string) (uint64, bool) {
	v, _, ok := u.Lookup(name)
	return v, ok
}

// Unseal implements Unsealer.
func (u KeystoreUnsealer) Unseal(ctx context.Context, name string) ([]byte, uint64, error) {
	v, sealed, ok := u.Lookup(name)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q", ErrSecretNotFound, name)
	}
	pt, err := u.Keystore.Unseal(ctx, name, v, sealed)
	switch {
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed):
		return nil, 0, fmt.Errorf("%w: unseal %q: %w", ErrUnavailable, name, err)
	case err != nil:
		return nil, 0, fmt.Errorf("credential: unseal %q: %w", name, err)
	}
	return pt, v, nil
}
