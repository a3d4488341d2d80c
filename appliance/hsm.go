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
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/credential"
)

// HSMPINEnv is the environment variable that may hold the HSM user PIN when
// no --hsm-pin-file is given. There is deliberately no flag taking the PIN
// itself: a flag value shows in ps and in shell history.
const HSMPINEnv = "PORTCULLIS_HSM_PIN"

// sessionKeyLabel is the input of the HSM MAC that derives the gateway's
// session key. The MAC key lives in the HSM and is replicated to every node
// by the join ceremony, so every node derives the same 32 bytes without the
// key ever being written to disk or to raft. Changing the label (v2) rotates
// the key; the old label's output then goes into PreviousSessionKeys.
const sessionKeyLabel = "portcullis/session-key/v1"

// hsmConfig says which keystore the node opens:
//
//   - --hsm-token given (any mode): that token, through --hsm-module (default
//     SoftHSM2), with the user PIN from --hsm-pin-file or $PORTCULLIS_HSM_PIN.
//   - --dev without --hsm-token: a SoftHSM2 token the node creates and
//     initializes under DATA/hsm with random SO and user PINs kept in 0600
//     files (hsm.InitDevToken), so the one-command start has a real HSM.
//   - otherwise: a clear error; a production node needs an HSM.
func (c *Config) hsmConfig() (hsm.Config, error) {
	if err := c.validateHSM(); err != nil {
		return hsm.Config{}, err
	}
	if c.HSMToken == "" {
		hc, err := hsm.InitDevToken(c.DataDir)
		if err != nil {
			return hsm.Config{}, fmt.Errorf("dev-mode HSM token under %s: %w", hsm.DevTokenPaths(c.DataDir).Dir, err)
		}
		return hc, nil
	}
	hc := hsm.Config{ModulePath: c.HSMModule, TokenLabel: c.HSMToken, PINFile: c.HSMPINFile}
	if hc.PINFile == "" {
		hc.PINEnv = HSMPINEnv
	}
	return hc, nil
}

func (c *Config) validateHSM() error {
	switch {
	case c.HSMToken == "" && !c.Dev:
		return errors.New("an HSM is required: pass --hsm-token LABEL with --hsm-pin-file FILE (or $" + HSMPINEnv + "), and --hsm-module if it is not SoftHSM2")
	case c.HSMToken == "" && (c.HSMModule != "" || c.HSMPINFile != ""):
		return errors.New("--hsm-module and --hsm-pin-file need --hsm-token")
	}
	return nil
}

// openHSM opens the node's keystore and makes sure it holds a sealing key
// and the MAC key. This node bootstraps its cluster, so it may create them;
// a joining node would receive them through the wrap/unwrap ceremony.
func openHSM(ctx context.Context, cfg *Config, log *slog.Logger) (*hsm.Keystore, error) {
	hc, err := cfg.hsmConfig()
	if err != nil {
		return nil, err
	}
	hc.Logger = log
	ks, err := hsm.Open(hc)
	if err != nil {
		return nil, fmt.Errorf("open HSM token %q: %w", hc.TokenLabel, err)
	}
	if err := ks.EnsureKeys(ctx); err != nil {
		ks.Close()
		return nil, fmt.Errorf("HSM token %q: create keys: %w", hc.TokenLabel, err)
	}
	return ks, nil
}

// sessionKeys derives the gateway's session key from the HSM (see
// sessionKeyLabel). A session-key file left in the data dir by an older
// version is still accepted for opening handles it sealed, so agents'
// sessions survive the upgrade; new handles are sealed with the HSM key.
func sessionKeys(ctx context.Context, ks *hsm.Keystore, legacyFile string) (key []byte, previous [][]byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	key, err = ks.MAC(ctx, []byte(sessionKeyLabel))
	if err != nil {
		return nil, nil, fmt.Errorf("derive the session key from the HSM: %w", err)
	}
	if len(key) != 32 {
		return nil, nil, fmt.Errorf("derive the session key from the HSM: MAC gave %d bytes, want 32", len(key))
	}
	b, err := os.ReadFile(legacyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return key, nil, nil
	case err != nil:
		return nil, nil, err
	}
	old, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(old) != 32 {
		return nil, nil, fmt.Errorf("%s does not hold a 32-byte hex key", legacyFile)
	}
	return key, [][]byte{old}, nil
}

// secretRoutes are the admin API's secret routes (put, list, delete, and
// the sealing key's rotation; no route ever returns a value).
func (a *Appliance) secretRoutes() []api.Route {
	cfg := credential.SecretsConfig{
		Keystore: a.hsm,
		Current:  a.store.Current,
		Cluster:  a.node,
		Logger:   a.log.With("component", "secrets"),
	}
	h := credential.SecretsHandler(cfg)
	voters := func() int {
		n := 0
		for _, m := range a.node.Status().Members {
			if m.Voter {
				n++
			}
		}
		return n
	}
	return []api.Route{
		{Method: http.MethodGet, Path: "/secrets", Handler: h},
		{Method: http.MethodPut, Path: "/secrets/:name", Handler: h},
		{Method: http.MethodDelete, Path: "/secrets/:name", Handler: h},
		{Method: http.MethodPost, Path: "/seal-keys/rotate", Handler: credential.RotateHandler(cfg, voters)},
	}
}

// unsealer opens the secrets upstream credentials name: ciphertext from the
// local replicated snapshot, opened by this node's HSM.
func (a *Appliance) unsealer() credential.Unsealer {
	return credential.KeystoreUnsealer{Keystore: a.hsm, Lookup: credential.StateLookup(a.store.Current)}
}
