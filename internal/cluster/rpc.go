package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Codec carries an FSM response across the wire: a write forwarded to the
// leader answers exactly as a local one. The leader encodes what its FSM
// returned (resp, or the error it returned as its response); the follower
// decodes it back.
type Codec interface {
	EncodeResponse(resp any, err error) ([]byte, error)
	DecodeResponse(b []byte) (any, error)
}

// maxRPCBody bounds a forwarded command and any RPC answer.
const maxRPCBody = 80 << 20

// rpcTimeout bounds status and transfer RPCs; peerCallTimeout an
// application call (CallPeer; an HSM key generation may take seconds).
const (
	rpcTimeout      = 2 * time.Second
	peerCallTimeout = 15 * time.Second
)

// NodeStatus is one node's own view, as GET /v1/status on the node port
// (and Node.Self) reports it.
type NodeStatus struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Leader       string `json:"leader,omitempty"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"lastIndex"`
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// FSMApplied is the last entry the state machine finished applying
	// (AppliedIndex counts entries handed to it).
	FSMApplied uint64 `json:"fsmApplied"`
	// LastContactMS is how long ago a follower last heard from the leader
	// (0 on the leader; -1 if never).
	LastContactMS int64 `json:"lastContactMs"`
}

func (n *Node) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		if n.raft.State() != raft.Leader {
			addr, id := n.raft.LeaderWithID()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMisdirectedRequest)
			json.NewEncoder(w).Encode(map[string]string{"leaderID": string(id), "leaderAddr": string(addr)})
			return
		}
		cmd, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRPCBody))
		if err != nil {
			http.Error(w, "read command: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := n.applyLocal(r.Context(), cmd)
		switch {
		case errors.Is(err, ErrNotLeader):
			// Not appended: the follower sends it to the next leader.
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		case err != nil && (errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrClosed) || r.Context().Err() != nil):
			// Not an answer of the FSM, and maybe applied.
			w.Header().Set("X-Outcome", "unknown")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		b, err := n.cfg.Codec.EncodeResponse(resp, err)
		if err != nil {
			http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(n.Self())
	})
	if n.cfg.Peer != nil {
		mux.Handle("/app/", n.cfg.Peer)
	}
	mux.HandleFunc("POST /v1/transfer", func(w http.ResponseWriter, r *http.Request) {
		if err := n.transferLocal(r.URL.Query().Get("to")); err != nil {
			status := http.StatusConflict
			if errors.Is(err, ErrNotLeader) {
				status = http.StatusMisdirectedRequest
			}
			http.Error(w, err.Error(), status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// dialError marks a failure to reach a peer before anything was sent, so
// a forwarded write may be retried against the next leader.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (n *Node) newRPCClient() *http.Client {
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			c, err := n.peers.dial(ctx, addr, alpnRPC, 5*time.Second)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr}
}

// forward sends cmd to the leader and returns its FSM's answer. While no
// leader is known (an election), and when the leader moved before the
// command was sent, it waits and tries the new one, until ctx ends.
func (n *Node) forward(ctx context.Context, cmd []byte) (any, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("cluster: forward: %w (%w)", ErrNoLeader, ctx.Err())
			case <-n.closed:
				return nil, ErrClosed
			case <-time.After(min(time.Duration(attempt)*25*time.Millisecond, 250*time.Millisecond)):
			}
		}
		if n.raft.State() == raft.Leader {
			return n.applyLocal(ctx, cmd)
		}
		addr, id := n.raft.LeaderWithID()
		if id == "" {
			continue
		}
		actx, stop := n.untilLeaderMoves(ctx, id)
		req, err := http.NewRequestWithContext(actx, http.MethodPost, "https://"+string(addr)+"/v1/apply", bytes.NewReader(cmd))
		if err != nil {
			stop()
			return nil, fmt.Errorf("cluster: forward: %w", err)
		}
		res, err := n.rpc.Do(req)
		if err != nil {
			stop()
			var de *dialError
			if errors.As(err, &de) && ctx.Err() == nil {
				n.log.Debug("leader unreachable; waiting for the next one", "leader", string(id), "err", err)
				continue
			}
			// Sent, and no answer: the leader may have committed it.
			return nil, fmt.Errorf("cluster: forward to leader %s: %w: %w", id, ErrUnknownOutcome, causeOf(actx, err))
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, maxRPCBody))
		res.Body.Close()
		stop()
		switch {
		case err != nil:
			return nil, fmt.Errorf("cluster: forward to leader %s: read answer: %w: %w", id, ErrUnknownOutcome, causeOf(actx, err))
		case res.StatusCode == http.StatusMisdirectedRequest:
			continue // it stepped down before reading the command
		case res.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("cluster: forward to leader %s: %s: %s: %w", id, res.Status, bytes.TrimSpace(body), ErrUnknownOutcome)
		}
		resp, err := n.cfg.Codec.DecodeResponse(body)
		if err != nil {
			return nil, fmt.Errorf("cluster: forward to leader %s: %w", id, err)
		}
		if e, ok := resp.(error); ok {
			return nil, e
		}
		return resp, nil
	}
}

// errLeaderMoved ends a forward whose leader was replaced while it waited.
var errLeaderMoved = errors.New("another leader was elected while waiting for its answer")

// untilLeaderMoves returns a context that ends with ctx or as soon as this
// node knows a leader other than id (or is the leader itself): a leader cut
// off by a partition never answers, and its successor decides the write's
// fate, so the caller learns the outcome is unknown within an election
// rather than at its deadline. A dial it cuts short is retried against the
// new leader (nothing was sent). stop releases it.
func (n *Node) untilLeaderMoves(ctx context.Context, id raft.ServerID) (context.Context, context.CancelFunc) {
	actx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(currentEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-actx.Done():
				return
			case <-t.C:
				if _, now := n.raft.LeaderWithID(); (now != "" && now != id) || n.raft.State() == raft.Leader {
					cancel(errLeaderMoved)
					return
				}
			}
		}
	}()
	var once sync.Once
	return actx, func() { once.Do(func() { close(done); cancel(nil) }) }
}

// causeOf names why ctx ended when that explains err.
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(err, c) && errors.Is(c, errLeaderMoved) {
		return fmt.Errorf("%w (%w)", c, err)
	}
	return err
}

// Self reports this node's own raft view.
func (n *Node) Self() NodeStatus {
	_, leader := n.raft.LeaderWithID()
	st := NodeStatus{
		ID: n.cfg.NodeID, State: n.raft.State().String(), Leader: string(leader),
		Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(), AppliedIndex: n.raft.AppliedIndex(),
		CommitIndex: n.commitIndex(), FSMApplied: n.fsmApplied(),
	}
	switch lc := n.raft.LastContact(); {
	case n.raft.State() == raft.Leader:
	case lc.IsZero():
		st.LastContactMS = -1
	default:
		st.LastContactMS = time.Since(lc).Milliseconds()
	}
	return st
}

func (n *Node) commitIndex() uint64 {
	v, _ := strconv.ParseUint(n.raft.Stats()["commit_index"], 10, 64)
	return v
}

// MemberStatus is one member as the cluster status reports it.
type MemberStatus struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raftAddr"`
	State     string `json:"state"` // leader, follower, candidate, unreachable, ...
	Voter     bool   `json:"voter"`
	Healthy   bool   `json:"healthy"`
	LastIndex uint64 `json:"lastIndex"`
	// Applied is the member's applied index; Lag how far it is behind
	// this node's last index.
	Applied       uint64 `json:"appliedIndex"`
	Lag           uint64 `json:"lag"`
	LastContactMS int64  `json:"lastContactMs"`
	Error         string `json:"error,omitempty"`
}

// ClusterStatus is the whole cluster as seen from this node.
type ClusterStatus struct {
	Leader  string         `json:"leader"`
	Term    uint64         `json:"term"`
	Members []MemberStatus `json:"members"`
}

// healthyLag is how many entries a member may trail and still be healthy.
const healthyLag = 1000

// ClusterStatus asks every member of the raft configuration for its own
// view (in parallel, bounded by rpcTimeout) and reports them.
func (n *Node) ClusterStatus(ctx context.Context) ClusterStatus {
	self := n.Self()
	out := ClusterStatus{Leader: self.Leader, Term: self.Term}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return out
	}
	servers := f.Configuration().Servers
	out.Members = make([]MemberStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		m := &out.Members[i]
		m.ID, m.RaftAddr, m.Voter = string(s.ID), string(s.Address), s.Suffrage == raft.Voter
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st NodeStatus
			if m.ID == n.cfg.NodeID {
				st = self
			} else if err := n.peerStatus(ctx, m.RaftAddr, &st); err != nil {
				m.State, m.Error = "unreachable", err.Error()
				return
			}
			m.State = stateName(st.State)
			m.LastIndex, m.Applied, m.LastContactMS = st.LastIndex, st.AppliedIndex, st.LastContactMS
			if self.LastIndex > st.AppliedIndex {
				m.Lag = self.LastIndex - st.AppliedIndex
			}
			m.Healthy = (m.State == "leader" || m.State == "follower") && m.Lag <= healthyLag && st.Leader != ""
		}()
	}
	wg.Wait()
	return out
}

func stateName(s string) string {
	switch s {
	case "Leader":
		return "leader"
	case "Follower":
		return "follower"
	case "Candidate":
		return "candidate"
	}
	return "shutdown"
}

func (n *Node) peerStatus(ctx context.Context, addr string, st *NodeStatus) (err error) {
	if n.rpc == nil {
		return errors.New("no node-to-node channel (plain TCP raft)")
	}
	ctx, cancel := context.WithTimeout(ctx, n.reach.timeout(addr))
	defer cancel()
	start := time.Now()
	defer func() { n.reach.done(addr, time.Since(start), err) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/v1/status", nil)
	if err != nil {
		return err
	}
	res, err := n.rpc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status: %s", res.Status)
	}
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(st)
}

// TransferLeadership hands leadership to the voter to (any voter if empty),
// from whichever node this is: a follower asks the leader.
func (n *Node) TransferLeadership(ctx context.Context, to string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*rpcTimeout)
	defer cancel()
	for {
		if n.raft.State() == raft.Leader {
			return n.transferLocal(to)
		}
		addr, id := n.raft.LeaderWithID()
		if n.rpc == nil && id != "" {
			return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
		}
		if id != "" {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+string(addr)+"/v1/transfer?to="+url.QueryEscape(to), nil)
			if err != nil {
				return err
			}
			res, err := n.rpc.Do(req)
			if err != nil {
				return fmt.Errorf("cluster: transfer leadership via %s: %w", id, err)
			}
			b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			switch res.StatusCode {
			case http.StatusNoContent:
				return nil
			case http.StatusMisdirectedRequest: // it stopped leading meanwhile
			default:
				return fmt.Errorf("cluster: transfer leadership: %s", bytes.TrimSpace(b))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: transfer leadership: %w", ErrNoLeader)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *Node) transferLocal(to string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	var f raft.Future
	if to == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		var addr raft.ServerAddress
		if c := n.raft.GetConfiguration(); c.Error() == nil {
			for _, s := range c.Configuration().Servers {
				if string(s.ID) == to && s.Suffrage == raft.Voter {
					addr = s.Address
				}
			}
		}
		if addr == "" {
			return fmt.Errorf("cluster: transfer leadership: %q is not a voter of this cluster", to)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(to), addr)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("cluster: transfer leadership: %w", err)
	}
	return nil
}

// Sync waits until this node has applied everything the leader had
// committed when Sync was called, so what it reads next includes every
// write acknowledged before, and everything any node has shown (reads are
// linearizable while the leader holds its lease). On the leader it
// confirms leadership with a round of heartbeats first. A node alone, or
// without the node-port RPCs, only drains its own state machine.
func (n *Node) Sync(ctx context.Context) error {
	var commit uint64
	switch {
	case n.raft.State() == raft.Leader:
		if len(n.Status().Members) > 1 {
			if err := n.raft.VerifyLeader().Error(); err != nil {
				return fmt.Errorf("cluster: sync: %w", mapRaftErr(err))
			}
		}
		commit = n.commitIndex()
	case n.rpc == nil:
		return nil
	default:
		addr, id := n.raft.LeaderWithID()
		if id == "" {
			return fmt.Errorf("cluster: sync: %w", ErrNoLeader)
		}
		var st NodeStatus
		if err := n.peerStatus(ctx, string(addr), &st); err != nil {
			return fmt.Errorf("cluster: sync with leader %s: %w", id, err)
		}
		commit = st.CommitIndex
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !n.appliedThrough(commit) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: sync: applied %d of the leader's %d: %w", n.fsmApplied(), commit, ctx.Err())
		case <-n.closed:
			return ErrClosed
		case <-t.C:
		}
	}
	return nil
}

// appliedThrough reports whether the state machine has finished every
// command up to index: raft has handed it everything through index, and no
// command after the last one it finished is at or below index (the entries
// between are no-ops, barriers or configuration, which never reach it, or
// were compacted into a snapshot it restored).
func (n *Node) appliedThrough(index uint64) bool {
	if n.raft.AppliedIndex() < index {
		return false
	}
	for i := n.fsmApplied() + 1; i <= index; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err == nil && l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

// CallPeer sends an application request (Config.Peer, under /app/) to the
// member at raft address addr over the node port and returns the answer's
// status and body (at most maxRPCBody). A member that does not answer
// within peerCallTimeout counts as unreachable.
func (n *Node) CallPeer(ctx context.Context, addr, method, path string, body []byte) (int, []byte, error) {
	if n.rpc == nil {
		return 0, nil, errors.New("cluster: no node-to-node channel (this node has no cluster TLS)")
	}
	ctx, cancel := context.WithTimeout(ctx, peerCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+"/app/"+strings.TrimPrefix(path, "/"), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	res, err := n.rpc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cluster: call %s: %w", addr, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxRPCBody))
	return res.StatusCode, b, err
}

// replicatedWait bounds WaitReplicated, replicatedProbe each status RPC it
// makes (a member slower than that to answer is not waited for).
const (
	replicatedWait  = 2 * time.Second
	replicatedProbe = 500 * time.Millisecond
)

// WaitReplicated waits until every other member that answers has applied
// index, so that a write acknowledged to an admin is already in effect on
// every live node's data plane (an agent key works wherever the agent
// connects next). Members that do not answer, or that probePeers found
// cut off, are skipped; after
// replicatedWait it gives up quietly: the write is committed either way.
func (n *Node) WaitReplicated(ctx context.Context, index uint64) {
	if n.rpc == nil {
		return
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, replicatedWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID || n.reach.cut(string(s.Address)) {
			continue // a member cut off is not waited for
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
				var st NodeStatus
				pctx, cancel := context.WithTimeout(ctx, replicatedProbe)
				err := n.peerStatus(pctx, addr, &st)
				cancel()
				if err != nil || st.FSMApplied >= index {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
			}
		}(string(s.Address))
	}
	wg.Wait()
}

// fsmApplied is the last entry the state machine finished applying (raft's
// applied index until that is known, after restoring an older snapshot).
func (n *Node) fsmApplied() uint64 {
	if n.fsm.known.Load() {
		return n.fsm.applied.Load()
	}
	return n.raft.AppliedIndex()
}
