package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/credential"
)

// openKeystore opens the node's HSM: the configured token, or in dev mode
// a SoftHSM2 token of its own under the data dir. It makes sure the sealing
// and MAC keys exist (a single node is its cluster's first node). A nil
// keystore without error means the node runs without an HSM.
func openKeystore(cfg Config, log *slog.Logger) (*hsm.Keystore, error) {
	hc := cfg.HSM
	if hc.TokenLabel == "" {
		if !cfg.Dev {
			log.Warn("no HSM configured (--hsm-token): backend secrets cannot be stored and upstream credentials cannot be injected")
			return nil, nil
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
	hc.Logger = log
	ks, err := hsm.Open(hc)
	if err != nil {
		return nil, fmt.Errorf("open HSM: %w", err)
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
	var h http.Handler
	if a.keystore != nil {
		h = credential.SecretsHandler(credential.SecretsConfig{
			Keystore: a.keystore,
			Current:  a.store.Current,
			Cluster:  a.node,
			Logger:   a.log.With("component", "secrets"),
		})
	} else {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"this node has no HSM, so it cannot store secrets: start it with --hsm-token and --hsm-pin-file (dev mode needs SoftHSM2: apt install softhsm2)"}}`)
		})
	}
	return []api.Route{
		{Method: http.MethodGet, Path: "/secrets", Handler: h},
		{Method: http.MethodPut, Path: "/secrets/:name", Handler: h},
		{Method: http.MethodDelete, Path: "/secrets/:name", Handler: h},
	}
}
