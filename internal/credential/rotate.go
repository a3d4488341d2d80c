package credential

import (
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
// Voters, when set, reports the cluster's voters: with more than one the
// rotation is refused, because the other nodes must first receive the new
// key through the wrap/unwrap ceremony, or they could no longer open the
// resealed secrets.
func RotateHandler(cfg SecretsConfig, voters func() int) http.Handler {
	h := &secretsHandler{cfg.withDefaults()}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeAPIError(w, http.StatusMethodNotAllowed, "bad_request", "use POST")
			return
		}
		if voters != nil && voters() > 1 {
			writeAPIError(w, http.StatusConflict, "conflict", "this cluster has more than one node: each needs the new sealing key through the join ceremony before secrets are resealed; rotation is refused")
			return
		}
		res, err := h.rotate(r)
		if err != nil {
			h.cfg.Logger.Warn("credential: sealing key rotation failed", "err", err)
			switch {
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

func (h *secretsHandler) rotate(r *http.Request) (*RotateResult, error) {
	ctx := r.Context()
	v, err := h.cfg.Keystore.Rotate(ctx)
	if err != nil {
		return nil, err
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
