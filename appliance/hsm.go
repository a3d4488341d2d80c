package appliance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/credential"
	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// HSMPINEnv is the environment variable that holds the HSM user PIN when no
// --hsm-pin-file is given. There is deliberately no flag taking the PIN
// itself: a flag value shows in ps and in shell history.
const HSMPINEnv = "PORTCULLIS_HSM_PIN"

// sessionKeyLabel is the input of the HSM MAC that derives the gateway's
// session key. The MAC key lives in the HSM and reaches every node through
// the join ceremony, so every node derives the same 32 bytes without the key
// ever being written to disk or to raft. Changing the label (v2) rotates the
// key; the old label's output then goes into PreviousSessionKeys.
const sessionKeyLabel = "portcullis/session-key/v1"

// openKeystore opens the node's HSM: the configured token, or in dev mode
// a SoftHSM2 token of its own under the data dir. It makes sure the sealing
// and MAC keys exist (a single node is its cluster's first node). A nil
// keystore without error means the node runs without an HSM.
func openKeystore(cfg Config, log *slog.Logger, ensure bool) (*hsm.Keystore, error) {
	hc := cfg.HSM
	if hc.TokenLabel == "" {
		if !cfg.Dev {
			log.Warn("no HSM configured (--hsm-token): backend secrets cannot be stored and upstream credentials cannot be injected")
			return nil, nil
		}
		// SoftHSM reads its configuration from the environment when the
		// module is first loaded, and this process has no other use for
		// it: point it at the node's own token directory, once, here.
		if err := os.Setenv(hsm.SoftHSMConfEnv, hsm.DevTokenPaths(cfg.DataDir).Conf); err != nil {
			return nil, fmt.Errorf("dev HSM token: %w", err)
		}
		dev, err := hsm.InitDevToken(cfg.DataDir)
		if errors.Is(err, hsm.ErrModuleNotFound) {
			log.Warn("dev mode runs without an HSM: SoftHSM2 is not installed (apt install softhsm2); backend secrets cannot be stored")
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dev HSM token: %w", err)
		}
		hc = dev
	}
	if hc.PINFile == "" && hc.PINEnv == "" {
		hc.PINEnv = HSMPINEnv
	}
	hc.Logger = log
	ks, err := hsm.Open(hc)
	if err != nil {
		return nil, fmt.Errorf("open HSM: %w", err)
	}
	if !ensure {
		log.Info("HSM open; its keys come from the cluster being joined", "token", hc.TokenLabel)
		return ks, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ks.EnsureKeys(ctx); err != nil {
		ks.Close()
		return nil, fmt.Errorf("HSM keys: %w", err)
	}
	log.Info("HSM ready", "token", hc.TokenLabel)
	return ks, nil
}

// secretRoutes mounts the secret API (credential.SecretsHandler) on the
// admin API. Without an HSM the routes answer 503 saying why.
func (a *Appliance) secretRoutes() []api.Route {
	var h, rotate http.Handler
	if a.keystore != nil {
		cfg := credential.SecretsConfig{
			Keystore: a.keystore,
			Current:  a.store.Current,
			Cluster:  api.TrackApplies(a.node), // its writes get admin records (audit)
			Logger:   a.log.With("component", "secrets"),
		}
		h = credential.SecretsHandler(cfg)
		var dist credential.Distributor
		if a.ident != nil {
			dist = keyDistributor{a}
		}
		rotate = credential.RotateHandler(cfg, dist)
	} else {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"this node has no HSM, so it cannot store secrets: start it with --hsm-token and --hsm-pin-file (dev mode needs SoftHSM2: apt install softhsm2)"}}`)
		})
		rotate = h
	}
	return []api.Route{
		{Method: http.MethodGet, Path: "/secrets", Handler: h},
		{Method: http.MethodPut, Path: "/secrets/:name", Handler: h},
		{Method: http.MethodDelete, Path: "/secrets/:name", Handler: h},
		{Method: http.MethodPost, Path: "/seal-keys/rotate", Handler: rotate},
	}
}

// upstreamTransport is the gateway's UpstreamTransport hook: an upstream
// with a Credential is called through a credential.Transport that unseals
// its secrets with this node's HSM (ciphertext from the local replicated
// snapshot) and injects them into requests for the upstream's origin only (a
// redirect elsewhere gets nothing); one per upstream connection, closed with
// it (which zeroes its cached plaintexts). The plaintext lives only there:
// the unsealed bytes for at most Config.SecretCacheTTL (30s), the rendered
// value in the outgoing request until it is written. Without an HSM such
// calls fail closed with credential.ErrUnavailable; other upstreams are
// unaffected. The drafter's tool lists come through the same connections.
func (a *Appliance) upstreamTransport(spec *gateway.UpstreamSpec, base http.RoundTripper) (http.RoundTripper, error) {
	if spec.Credential == nil {
		return base, nil
	}
	if a.keystore == nil {
		return nil, fmt.Errorf("%w: upstream %q needs a backend credential but this node has no HSM", credential.ErrUnavailable, spec.Name)
	}
	tr, err := credential.New(credential.Config{
		Upstream: spec.Name,
		URL:      spec.URL,
		Spec:     credential.FromState(spec.Credential),
		Unsealer: credential.KeystoreUnsealer{Keystore: a.keystore, Lookup: credential.StateLookup(a.store.Current)},
		Base:     base,
		CacheTTL: a.cfg.SecretCacheTTL,
		Logger:   a.log.With("component", "credential"),
	})
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", spec.Name, err)
	}
	return tr, nil
}

// sessionKeys returns the gateway's session key and the keys that still
// open older handles. With an HSM the key is the HSM's MAC of
// sessionKeyLabel, and a session-key file left by an older version (or by
// a start without HSM) is kept as a previous key, so agents' sessions
// survive the change. Without an HSM the key is the session-key file's.
func (a *Appliance) sessionKeys() (key []byte, previous [][]byte, err error) {
	file := filepath.Join(a.cfg.DataDir, "session-key")
	if a.keystore == nil {
		key, err := loadOrCreateKey(file)
		return key, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, err = a.keystore.MAC(ctx, []byte(sessionKeyLabel))
	if err != nil {
		return nil, nil, fmt.Errorf("derive it from the HSM: %w", err)
	}
	if len(key) != 32 {
		return nil, nil, fmt.Errorf("derive it from the HSM: MAC gave %d bytes, want 32", len(key))
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return key, nil, nil
	case err != nil:
		return nil, nil, err
	}
	old, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(old) != 32 {
		return nil, nil, fmt.Errorf("%s does not hold a 32-byte hex key", file)
	}
	return key, [][]byte{old}, nil
}
