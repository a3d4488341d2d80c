package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/guard"
)

// guardShareInterval is how often a node tells the other members what its
// guard admitted, so that a limit of N holds for the cluster (see
// internal/guard: the overshoot is bounded by what the others admit in one
// interval).
const guardShareInterval = 200 * time.Millisecond

// openGuard makes the node's guard (rate limits, concurrency caps, circuit
// breakers) and gives it to the gateway.
func (a *Appliance) openGuard(gw *gateway.Config) error {
	g, err := guard.New(guard.Config{Logger: a.log.With("component", "guard"), Metrics: a.metrics})
	if err != nil {
		return err
	}
	a.guard = g
	gw.Guard = g
	return nil
}

// limits is the current view's compiled limits.
func (a *Appliance) limits() *guard.Plan {
	if v := a.gwSource.View(); v != nil {
		return v.Limits
	}
	return nil
}

// shareGuard sends what this node's guard admitted to every other member
// every guardShareInterval until ctx ends. A member that does not answer
// misses that share (its buckets then trail by those calls); nothing is
// retried, since the next share is already on its way.
func (a *Appliance) shareGuard(ctx context.Context) error {
	t := time.NewTicker(guardShareInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		usage := a.guard.Export()
		if len(usage) == 0 || a.node == nil {
			continue
		}
		body, err := json.Marshal(usage)
		if err != nil {
			a.log.Error("guard: encode usage", "err", err)
			continue
		}
		var wg sync.WaitGroup
		for id, m := range a.store.Current().Members {
			if id == a.nodeID || m.RaftAddr == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, guardShareInterval*5)
				defer cancel()
				code, b, err := a.node.CallPeer(cctx, m.RaftAddr, http.MethodPost, "guard/usage", body)
				if err == nil && code != http.StatusNoContent {
					err = fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(b))
				}
				if err != nil {
					a.log.Debug("guard: share usage with a member", "member", id, "err", err)
				}
			}()
		}
		wg.Wait()
	}
}

// serveGuardUsage is POST /app/guard/usage on the node port: another
// member's admitted calls, spent here too.
func (a *Appliance) serveGuardUsage(w http.ResponseWriter, r *http.Request) {
	var usage []guard.Usage
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&usage); err != nil {
		http.Error(w, "guard usage: "+err.Error(), http.StatusBadRequest)
		return
	}
	a.guard.Absorb(a.limits(), usage)
	w.WriteHeader(http.StatusNoContent)
}
