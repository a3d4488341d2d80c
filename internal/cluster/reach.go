package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// quickProbe bounds a status RPC to a peer whose last one timed out,
// reachMemory is how long such a timeout is remembered, and probeEvery is
// how often every node asks every other member for its status
// (probePeers), which keeps that memory current.
const (
	quickProbe  = 300 * time.Millisecond
	reachMemory = 10 * time.Second
	probeEvery  = 250 * time.Millisecond
)

// reach remembers which peers were cut off: when a status RPC to a peer
// timed out, the next ones to it get quickProbe instead of rpcTimeout, and
// WaitReplicated does not wait for it, so that a partitioned member costs
// an admin write nothing, and a cluster status or a read's sync a fraction
// of a second rather than two. The first answer from the peer clears it.
// Safe for concurrent use.
type reach struct {
	mu       sync.Mutex
	timedOut map[string]time.Time // peer address → when its RPC last timed out
}

// timeout is the bound for the next status RPC to addr.
func (r *reach) timeout(addr string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.timedOut[addr]; ok && time.Since(t) < reachMemory {
		return quickProbe
	}
	return rpcTimeout
}

// cut reports whether addr's last status RPC timed out (within
// reachMemory) and it has not answered since.
func (r *reach) cut(addr string) bool { return r.timeout(addr) == quickProbe }

// done records the outcome of a status RPC to addr that took took: one
// that ran out of time (its own or its caller's) after quickProbe or more
// marks the peer; a caller that gave up sooner says nothing of it.
func (r *reach) done(addr string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		delete(r.timedOut, addr)
	case took >= quickProbe && isTimeout(err):
		if r.timedOut == nil {
			r.timedOut = map[string]time.Time{}
		}
		r.timedOut[addr] = time.Now()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout())
}

// probePeers asks every other member of the configuration for its status
// every probeEvery until Close, so that reach knows which peers are cut off
// before an admin write or a read would wait for them.
func (n *Node) probePeers() {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
		f := n.raft.GetConfiguration()
		if f.Error() != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), replicatedProbe)
		go func() {
			select {
			case <-n.closed:
			case <-ctx.Done():
			}
			cancel()
		}()
		var wg sync.WaitGroup
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == n.cfg.NodeID {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var st NodeStatus
				_ = n.peerStatus(ctx, string(s.Address), &st)
			}()
		}
		wg.Wait()
		cancel()
	}
}
