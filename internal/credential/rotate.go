package credential

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// RotateResult is what a sealing-key rotation did.
type RotateResult struct {
	// KeyVersion is the sealing key version new seals now use.
	KeyVersion uint32 `json:"keyVersion"`
	// Resealed lists the secrets re-encrypted under it (same versions).
	Resealed []string `json:"resealed"`
	// Skipped lists secrets a concurrent put replaced meanwhile (already
	// sealed under the new key).
	Skipped []string `json:"skipped,omitempty"`
}

// RotateHandler serves POST /v1/seal-keys/rotate: the HSM generates the next
// sealing key (inside the token), every stored secret is re-encrypted under
// it (its plaintext exists only between the HSM's unseal and seal calls, and
// is cleared) and stored at the same version with state.OpSecretReseal. Old
// key versions stay in the token, so a ciphertext still under one keeps
// opening; retire them with hsm.Keystore.DestroyKeyVersion once every node
// has the new key.
//
// In a cluster, dist hands the keys to the other nodes (through the HSM
// wrap/unwrap ceremony): it is checked first (every member reachable, its
// wrapping key trusted), so a rotation that could not reach every node is
// refused before a key is made; after the rotation the new key goes to
// every node, and only then are secrets resealed, so that no node is left
// unable to open them. nil: a single node.
func RotateHandler(cfg SecretsConfig, dist Distributor) http.Handler {
	h := &secretsHandler{cfg.withDefaults()}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeAPIError(w, http.StatusMethodNotAllowed, "bad_request", "use POST")
			return
		}
		if dist != nil {
			if err := dist.Check(r.Context()); err != nil {
				writeAPIError(w, http.StatusConflict, "conflict", "rotation refused, no key was made: every node must receive the new sealing key, and "+err.Error())
				return
			}
		}
		res, err := h.rotate(r, dist)
		if err != nil {
			h.cfg.Logger.Warn("credential: sealing key rotation failed", "err", err)
			var de *distributeError
			switch {
			case errors.As(err, &de):
				writeAPIError(w, http.StatusConflict, "conflict", de.Error())
			case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed):
				writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "the HSM is unavailable; retry when it is back (secrets resealed so far stay valid)")
			case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrNotFound):
				h.writeWriteError(w, err)
			default:
				writeAPIError(w, http.StatusInternalServerError, "internal", "rotating the sealing key failed; secrets resealed so far stay valid, run it again")
			}
			return
		}
		h.cfg.Logger.Info("credential: sealing key rotated", "key_version", res.KeyVersion, "resealed", len(res.Resealed), "skipped", len(res.Skipped))
		writeJSON(w, http.StatusOK, res)
	})
}

// Distributor hands this node's sealing keys to a cluster's other nodes.
type Distributor interface {
	// Check fails when some member could not receive keys now; its text
	// says which and why, for the admin.
	Check(ctx context.Context) error
	// Distribute hands every key version to every other member.
	Distribute(ctx context.Context) error
}

func (h *secretsHandler) rotate(r *http.Request, dist Distributor) (*RotateResult, error) {
	ctx := r.Context()
	v, err := h.cfg.Keystore.Rotate(ctx)
	if err != nil {
		return nil, err
	}
	if dist != nil {
		if err := dist.Distribute(ctx); err != nil {
			return nil, &distributeError{v: v, err: err}
		}
	}
	var stored []hsm.SealedSecret
	for _, s := range h.cfg.Current().Secrets {
		stored = append(stored, hsm.SealedSecret{Name: s.Name, Version: s.Version, Sealed: s.Sealed})
	}
	slices.SortFunc(stored, func(a, b hsm.SealedSecret) int { return strings.Compare(a.Name, b.Name) })
	resealed, err := h.cfg.Keystore.ResealAll(ctx, stored)
	res := &RotateResult{KeyVersion: v, Resealed: []string{}}
	for _, s := range resealed {
		perr := h.propose(ctx, &state.Command{Op: state.OpSecretReseal, Time: h.cfg.Now().UTC(),
			Secret: &state.Secret{Name: s.Name, Version: s.Version, Sealed: s.Sealed}})
		switch {
		case errors.Is(perr, state.ErrConflict), errors.Is(perr, state.ErrNotFound):
			res.Skipped = append(res.Skipped, s.Name) // replaced or deleted meanwhile
		case perr != nil:
			return nil, fmt.Errorf("store resealed %q: %w", s.Name, perr)
		default:
			res.Resealed = append(res.Resealed, s.Name)
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// distributeError: the new key exists here but did not reach every node.
type distributeError struct {
	v   uint32
	err error
}

func (e *distributeError) Error() string {
	return fmt.Sprintf("sealing key v%d was made on this node but did not reach every node (%v); secrets were not resealed and still open everywhere; run the rotation again once every node is reachable", e.v, e.err)
}
