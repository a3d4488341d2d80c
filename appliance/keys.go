package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/portcullis-gw/portcullis/hsm"
)

// Sealing keys on a cluster. After a rotation on one node every other
// member must hold the new key before secrets are resealed under it. The
// hand-over is the join ceremony again, over the node port (mutual TLS,
// members only): the rotating node asks each member for a fresh HSM
// wrapping key (/app/keys/wrapping-key), wraps every key version to it
// (the Security Officer must have trusted it; automatic in dev mode) and
// sends the blobs (/app/keys/install), which the member unwraps into its
// HSM. Keys it already holds are checked, not replaced.

// peerHandler serves the node-to-node application calls (cluster.Config.Peer).
func (a *Appliance) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /app/keys/wrapping-key", func(w http.ResponseWriter, r *http.Request) {
		if a.keystore == nil {
			http.Error(w, "no HSM", http.StatusServiceUnavailable)
			return
		}
		a.keyMu.Lock() // one pending wrapping key per HSM
		pub, err := a.keystore.NewWrappingKeyPair(r.Context())
		a.keyMu.Unlock()
		if err != nil {
			http.Error(w, "make a wrapping key: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write(pub)
	})
	mux.HandleFunc("POST /app/guard/usage", a.serveGuardUsage)
	mux.HandleFunc("POST /app/keys/install", func(w http.ResponseWriter, r *http.Request) {
		var keys []hsm.WrappedKey
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&keys); err != nil {
			http.Error(w, "wrapped keys: "+err.Error(), http.StatusBadRequest)
			return
		}
		a.keyMu.Lock()
		defer a.keyMu.Unlock()
		if err := a.keystore.UnwrapSecretKeys(r.Context(), keys); err != nil {
			http.Error(w, "unwrap: "+err.Error(), http.StatusConflict)
			return
		}
		a.log.Info("received the cluster's sealing keys", "keys", len(keys))
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// keyDistributor implements credential.Distributor for this node.
type keyDistributor struct{ a *Appliance }

// others are the members besides this node (id → raft address).
func (d keyDistributor) others() map[string]string {
	out := map[string]string{}
	for id, m := range d.a.store.Current().Members {
		if id != d.a.nodeID {
			out[id] = m.RaftAddr
		}
	}
	return out
}

func (d keyDistributor) Check(ctx context.Context) error {
	return d.each(ctx, false)
}

func (d keyDistributor) Distribute(ctx context.Context) error {
	return d.each(ctx, true)
}

// each asks every other member for a wrapping key and wraps the keys to it;
// with install it also sends them. Errors name the members that failed.
func (d keyDistributor) each(ctx context.Context, install bool) error {
	others := d.others()
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for id, addr := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.one(ctx, addr, install); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("node %s: %v", id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		sort.Strings(failed)
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

func (d keyDistributor) one(ctx context.Context, addr string, install bool) error {
	code, pub, err := d.a.node.CallPeer(ctx, addr, http.MethodPost, "keys/wrapping-key", nil)
	if err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("no wrapping key: %s", strings.TrimSpace(string(pub)))
	}
	keys, err := d.a.wrapKeysFor(ctx, pub)
	if errors.Is(err, hsm.ErrUntrustedWrappingKey) {
		return fmt.Errorf("its wrapping key %s is not trusted: the Security Officer of this node must run `portcullis secret trust-join-key --fingerprint %s` with it (it is in this node's log)", hsm.WrappingKeyFingerprint(pub), hsm.WrappingKeyFingerprint(pub))
	}
	if err != nil {
		return err
	}
	if !install {
		return nil
	}
	body, _ := json.Marshal(keys)
	code, b, err := d.a.node.CallPeer(ctx, addr, http.MethodPost, "keys/install", body)
	if err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("install: %s", strings.TrimSpace(string(b)))
	}
	return nil
}
