package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// MaxSecretBytes bounds a stored secret's value.
const MaxSecretBytes = 64 << 10

// Applier replicates an encoded state.Command and returns once it is
// committed, with the state's error if the command was refused
// (*cluster.Node implements it).
type Applier interface {
	Apply(ctx context.Context, cmd []byte) (any, error)
}

// SecretsConfig configures SecretsHandler.
type SecretsConfig struct {
	Keystore *hsm.Keystore
	// Current returns the local replicated snapshot.
	Current func() *state.Snapshot
	Cluster Applier
	Now     func() time.Time // default time.Now
	Logger  *slog.Logger
}

// SecretInfo is what the API shows of a secret: never its value.
type SecretInfo struct {
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// SecretsHandler serves the admin API's secret routes; mount it (behind the
// admin token) on each of:
//
//	GET    /v1/secrets         {"items": [SecretInfo...]}, sorted by name
//	PUT    /v1/secrets/:name   body {"value": "<base64>"}: seal with the HSM,
//	                           replicate the ciphertext; answers SecretInfo
//	DELETE /v1/secrets/:name   refused (409) while an upstream uses it
//
// No route returns a value. A put seals version N+1 (bound into the
// ciphertext) and proposes it; if another put won the race, it re-seals and
// retries. The HSM being away answers 503 and changes nothing. The request
// body is cleared after sealing; its value is never logged.
func SecretsHandler(cfg SecretsConfig) http.Handler {
	h := &secretsHandler{cfg.withDefaults()}
	return http.HandlerFunc(h.serve)
}

func (cfg SecretsConfig) withDefaults() SecretsConfig {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

type secretsHandler struct{ cfg SecretsConfig }

func (h *secretsHandler) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	i := strings.LastIndex(path, "/secrets")
	if i < 0 {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such route")
		return
	}
	name := strings.TrimPrefix(path[i+len("/secrets"):], "/")
	switch {
	case name == "" && r.Method == http.MethodGet:
		h.list(w)
	case name != "" && r.Method == http.MethodPut:
		h.put(w, r, name)
	case name != "" && r.Method == http.MethodDelete:
		h.delete(w, r, name)
	default:
		writeAPIError(w, http.StatusMethodNotAllowed, "bad_request", fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	}
}

func (h *secretsHandler) list(w http.ResponseWriter) {
	items := []SecretInfo{}
	for _, s := range h.cfg.Current().Secrets {
		items = append(items, SecretInfo{Name: s.Name, Version: s.Version, Created: s.Created, Updated: s.Updated})
	}
	slices.SortFunc(items, func(a, b SecretInfo) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (h *secretsHandler) put(w http.ResponseWriter, r *http.Request, name string) {
	if err := state.ValidateName(name); err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("secret name: %v", err))
		return
	}
	var body struct {
		Value []byte `json:"value"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*MaxSecretBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeAPIError(w, http.StatusBadRequest, "bad_request", `want a JSON body {"value": "<base64 of the secret>"}`)
		return
	}
	defer clear(body.Value)
	switch {
	case len(body.Value) == 0:
		writeAPIError(w, http.StatusBadRequest, "invalid", "the secret is empty")
		return
	case len(body.Value) > MaxSecretBytes:
		writeAPIError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the secret exceeds %d bytes", MaxSecretBytes))
		return
	}
	for attempt := 0; ; attempt++ {
		next := uint64(1)
		if cur := h.cfg.Current().Secrets[name]; cur != nil {
			next = cur.Version + 1
		}
		sealed, err := h.cfg.Keystore.Seal(r.Context(), name, next, body.Value)
		if err != nil {
			h.cfg.Logger.Warn("credential: seal failed", "secret", name, "err", err)
			if errors.Is(err, hsm.ErrUnavailable) || errors.Is(err, hsm.ErrClosed) {
				writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "the HSM is unavailable; nothing was stored, retry when it is back")
				return
			}
			writeAPIError(w, http.StatusInternalServerError, "internal", "sealing the secret failed")
			return
		}
		err = h.propose(r.Context(), &state.Command{Op: state.OpSecretPut, Time: h.cfg.Now().UTC(),
			Secret: &state.Secret{Name: name, Version: next, Sealed: sealed}})
		if errors.Is(err, state.ErrConflict) && attempt < 3 {
			continue
		}
		if err != nil {
			h.writeWriteError(w, err)
			return
		}
		s := h.cfg.Current().Secrets[name]
		info := SecretInfo{Name: name, Version: next}
		if s != nil && s.Version == next {
			info.Created, info.Updated = s.Created, s.Updated
		}
		h.cfg.Logger.Info("credential: secret stored", "secret", name, "version", next)
		writeJSON(w, http.StatusOK, info)
		return
	}
}

func (h *secretsHandler) delete(w http.ResponseWriter, r *http.Request, name string) {
	if err := h.propose(r.Context(), &state.Command{Op: state.OpSecretDelete, Time: h.cfg.Now().UTC(), Name: name}); err != nil {
		h.writeWriteError(w, err)
		return
	}
	h.cfg.Logger.Info("credential: secret deleted", "secret", name)
	writeJSON(w, http.StatusOK, map[string]string{"name": name, "action": "deleted"})
}

func (h *secretsHandler) propose(ctx context.Context, cmd *state.Command) error {
	// Proposed in the current command format (a v1 command; Apply refuses
	// a malformed one only after it is in the log).
	cmd, err := state.Validate(cmd, state.Node{})
	if err != nil {
		return err
	}
	b, err := cmd.Encode()
	if err != nil {
		return err
	}
	_, err = h.cfg.Cluster.Apply(ctx, b)
	return err
}

// writeWriteError maps state and cluster errors; their text names only the
// secret, never a value.
func (h *secretsHandler) writeWriteError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, state.ErrNotFound):
		writeAPIError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrInUse):
		writeAPIError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, state.ErrMalformed), errors.As(err, new(*state.ValidationError)):
		writeAPIError(w, http.StatusUnprocessableEntity, "invalid", err.Error())
	default:
		h.cfg.Logger.Warn("credential: replicating a secret change failed", "err", err)
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "replicating the change failed: "+err.Error())
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeAPIError writes the admin API's error envelope.
func writeAPIError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": errCode, "message": msg}})
}
