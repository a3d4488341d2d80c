package appliance

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Session events (ended sessions, DLP taint fingerprints) reach every node
// through raft in batches: the gateway hands each event to sessionShare
// without blocking, and shareSessions proposes what accumulated every
// shareInterval (at most state.MaxSessionEvents per entry). Every node's
// store hands applied batches to its gateway (Gateway.ImportSessions), and
// the batches are in raft snapshots, so a restarted or new node starts with
// them. The window in which another node does not yet know an event is the
// batch interval plus one commit (about 100 ms plus a round trip on a LAN);
// a call that lands on another node inside it is judged without the event.
// While no leader can commit, events wait in a bounded buffer
// (maxPendingEvents; beyond it the oldest are dropped and counted).
const (
	shareInterval    = 100 * time.Millisecond
	maxPendingEvents = 200000
)

type sessionShare struct {
	mu      sync.Mutex
	pending state.SessionEvents
	dropped prometheus.Counter
}

// add queues ev; it never blocks on the network.
func (s *sessionShare) add(ev *state.SessionEvents) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending.Revoked = append(s.pending.Revoked, ev.Revoked...)
	s.pending.Taints = append(s.pending.Taints, ev.Taints...)
	if over := len(s.pending.Revoked) + len(s.pending.Taints) - maxPendingEvents; over > 0 {
		n := min(over, len(s.pending.Taints))
		s.pending.Taints = s.pending.Taints[n:]
		s.dropped.Add(float64(n))
	}
}

// take removes up to state.MaxSessionEvents events (revocations first).
func (s *sessionShare) take() *state.SessionEvents {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending.Revoked)+len(s.pending.Taints) == 0 {
		return nil
	}
	out := &state.SessionEvents{}
	n := min(len(s.pending.Revoked), state.MaxSessionEvents)
	out.Revoked, s.pending.Revoked = s.pending.Revoked[:n:n], s.pending.Revoked[n:]
	m := min(len(s.pending.Taints), state.MaxSessionEvents-n)
	out.Taints, s.pending.Taints = s.pending.Taints[:m:m], s.pending.Taints[m:]
	return out
}

// putBack returns a batch that could not be committed.
func (s *sessionShare) putBack(ev *state.SessionEvents) {
	s.mu.Lock()
	s.pending.Revoked = append(ev.Revoked, s.pending.Revoked...)
	s.pending.Taints = append(ev.Taints, s.pending.Taints...)
	s.mu.Unlock()
}

func (a *Appliance) shareSessions(ctx context.Context) error {
	t := time.NewTicker(shareInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flushSessions(context.Background()) // what this node learnt last
			return nil
		case <-t.C:
			a.flushSessions(ctx)
		}
	}
}

func (a *Appliance) flushSessions(ctx context.Context) {
	for ev := a.share.take(); ev != nil; ev = a.share.take() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := a.propose(pctx, &state.Command{Op: state.OpSessionEvents, Time: time.Now().UTC(), Sessions: ev})
		cancel()
		if err != nil {
			a.share.putBack(ev)
			a.log.Warn("session events not replicated yet; retrying", "events", len(ev.Revoked)+len(ev.Taints), "err", err)
			return
		}
	}
}
