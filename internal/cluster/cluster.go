package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Errors returned by Node. Match them with errors.Is.
var (
	// ErrNotLeader means the write was refused because this node is not the
	// raft leader and no Forwarder is configured. The concrete error is a
	// *NotLeaderError naming the leader, if one is known.
	ErrNotLeader = errors.New("cluster: this node is not the leader")
	// ErrNoLeader means no leader was elected in time (for example because a
	// majority of voters is unreachable).
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrClosed means the node was closed.
	ErrClosed = errors.New("cluster: node closed")
	// ErrDataDirInUse means another process (or another Node in this one)
	// holds the raft log of the data dir open.
	ErrDataDirInUse = errors.New("cluster: data dir is in use")
	// ErrUnknownOutcome means the leader changed or went away while the
	// write was being committed: it may or may not have been applied.
	ErrUnknownOutcome = errors.New("cluster: the leader changed while the write was being committed; it may or may not have been applied")
)

// lockTimeout bounds the wait for the raft log's file lock: a second node
// started on the same data dir fails instead of hanging.
const lockTimeout = 2 * time.Second

// NotLeaderError is returned by Apply on a follower without a Forwarder.
// LeaderID and LeaderAddr are empty when no leader is known.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Forwarder sends a command to the leader and returns the leader's result.
// It is the hook for leader forwarding over mutual TLS in a cluster; a
// single-node appliance leaves it nil.
type Forwarder interface {
	Forward(ctx context.Context, leaderID, leaderAddr string, cmd []byte) (any, error)
}

// Halter is implemented by an FSM that can meet a committed entry it must
// not skip (one written by a newer binary): Halted is closed then, and Err
// says why. Node.Run returns that error, and Node.Apply refuses writes, so
// the node stops instead of serving state that silently diverges from the
// cluster's (state.Store implements it).
type Halter interface {
	Halted() <-chan struct{}
	Err() error
}

// Config configures a Node. Zero durations and counts take the defaults
// below.
type Config struct {
	// NodeID is this node's stable raft server ID. Required.
	NodeID string
	// DataDir holds raft.db (log and stable store) and snapshots/. Required;
	// created with mode 0700 if missing.
	DataDir string
	// BindAddr is the TCP address raft listens on, e.g. 127.0.0.1:9444.
	// Required unless StreamLayer is set.
	BindAddr string
	// AdvertiseAddr is the address other nodes dial; defaults to the
	// listener's address.
	AdvertiseAddr string
	// StreamLayer, if set, replaces the plain TCP stream layer (the hook
	// for node-to-node mutual TLS).
	StreamLayer raft.StreamLayer
	// FSM is the replicated state machine. Required.
	FSM raft.FSM
	// Logger receives raft's log output. Nil discards it.
	Logger *slog.Logger
	// Bootstrap makes the first start (no existing raft state) bootstrap a
	// single-voter cluster of this node. Later starts ignore it.
	Bootstrap bool
	// Forwarder, if set, receives writes made on a follower.
	Forwarder Forwarder
	// TLS, if set, makes the node port speak mutual TLS 1.3 only and carry,
	// besides raft, the cluster's RPCs: writes made on a follower are
	// forwarded to the leader (unless Forwarder is set), cluster status
	// asks every member, leadership can be transferred from any node. It
	// holds this node's certificate and decides which peers to trust
	// (ClientCAs/RootCAs, or VerifyPeerCertificate with InsecureSkipVerify
	// for a trust bundle that changes at run time); the same config
	// accepts and dials. Codec is then required. Replaces StreamLayer.
	TLS   *tls.Config
	Codec Codec
	// Peer, with TLS, serves the application's own node-to-node calls
	// under /app/ on the node port (mutual TLS: only members reach it);
	// other nodes call it with Node.CallPeer.
	Peer http.Handler

	// ApplyTimeout bounds Apply when the context has no deadline.
	// Default 10s.
	ApplyTimeout time.Duration
	// SnapshotInterval is how often raft checks whether to snapshot.
	// Default 2m.
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one. Default 1024.
	SnapshotThreshold uint64
	// TrailingLogs is how many entries to keep after a snapshot so slow
	// followers can catch up without one. Default 4096.
	TrailingLogs uint64
	// SnapshotRetain is how many snapshots to keep on disk. Default 2.
	SnapshotRetain int
	// Timing (heartbeat, election, leader lease); the defaults (500 ms
	// each) suit a LAN.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 1024
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 4096
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = 2
	}
	// Half of hashicorp/raft's defaults: a LAN appliance elects a new
	// leader in about a second after the old one dies (measured 1.5–3 s
	// with 1 s timeouts). The lease equals the heartbeat timeout.
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("node id is required")
	case c.DataDir == "":
		return errors.New("data dir is required")
	case c.FSM == nil:
		return errors.New("fsm is required")
	case c.TLS != nil && c.Codec == nil:
		return errors.New("a codec is required with TLS (forwarded writes)")
	case c.TLS != nil && c.StreamLayer != nil:
		return errors.New("set TLS or StreamLayer, not both")
	case c.BindAddr == "" && c.StreamLayer == nil:
		return errors.New("bind address is required")
	case c.SnapshotRetain < 1:
		return errors.New("snapshot retain must be at least 1")
	}
	return nil
}

// Node is one raft server. New starts it; Close stops it.
type Node struct {
	cfg    Config
	log    *slog.Logger
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	store  *raftboltdb.BoltStore
	fsm    *compressedFSM
	closed chan struct{}

	started   time.Time
	currentAt atomic.Int64 // unix ns: when this node was last caught up (watchCurrent)

	peers  *peerLayer   // nil without Config.TLS
	rpc    *http.Client // to peers' RPC servers
	rpcSrv *http.Server
	reach  reach // peers whose status RPC timed out

	closeOnce sync.Once
	closeErr  error
}

// New opens (or creates) the node's raft state in cfg.DataDir and starts the
// raft server. On a first start with cfg.Bootstrap it bootstraps a
// single-voter cluster. The FSM is restored from the newest snapshot before
// New returns; log entries after it are applied once a leader commits, so
// call WaitReady before serving reads that must include them.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cluster: config: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, closed: make(chan struct{}), started: time.Now()}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: create data dir: %w", err)
	}
	hlog := newHCLogger(cfg.Logger.With("from", "raft"))

	var err error
	dbPath := filepath.Join(cfg.DataDir, "raft.db")
	n.store, err = raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &bbolt.Options{Timeout: lockTimeout}})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is locked by another process (is a portcullis node already running with this data dir?)", ErrDataDirInUse, dbPath)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft log store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return nil, fmt.Errorf("cluster: open snapshot store: %w", err)
	}

	stream := cfg.StreamLayer
	if cfg.TLS != nil {
		if n.peers, err = newPeerLayer(cfg.BindAddr, cfg.AdvertiseAddr, cfg.TLS, cfg.Logger); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		stream = n.peers
		n.rpc = n.newRPCClient()
		n.rpcSrv = &http.Server{Handler: n.rpcHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	}
	if stream == nil {
		stream, err = newTCPStreamLayer(cfg.BindAddr, cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.NoLegacyTelemetry = true
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}

	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: inspect raft state: %w", err)
	}
	if !existing && cfg.Bootstrap {
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter,
			ID:       rc.LocalID,
			Address:  n.trans.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, n.store, n.store, snaps, n.trans, boot); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped single-voter cluster", "node", cfg.NodeID, "addr", string(n.trans.LocalAddr()))
	}

	n.fsm = &compressedFSM{inner: cfg.FSM}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	if n.rpcSrv != nil {
		go n.rpcSrv.Serve(n.peers.rpc)
	}
	go n.watchCurrent()
	if n.rpc != nil {
		go n.probePeers()
	}
	ok = true
	return n, nil
}

// Run watches leadership until ctx is done. On gaining leadership it makes
// sure this node's advertised address in the raft configuration is current
// (it may change between restarts of a single node). Cancellation is not an
// error; Run does not stop raft — Close does.
//
// If the FSM is a Halter and halts, Run returns its error.
func (n *Node) Run(ctx context.Context) error {
	var halted <-chan struct{}
	if h, ok := n.cfg.FSM.(Halter); ok {
		halted = h.Halted()
	}
	leaderCh := n.raft.LeaderCh()
	if n.raft.State() == raft.Leader {
		n.onLeader(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.closed:
			return nil
		case <-halted:
			err := n.cfg.FSM.(Halter).Err()
			n.log.Error("state machine halted; stopping the node", "node", n.cfg.NodeID, "err", err)
			return fmt.Errorf("cluster: %w", err)
		case isLeader := <-leaderCh:
			if isLeader {
				n.log.Info("gained raft leadership", "node", n.cfg.NodeID)
				n.onLeader(ctx)
			} else {
				n.log.Info("lost raft leadership", "node", n.cfg.NodeID)
			}
		}
	}
}

// onLeader updates this node's address in the configuration if it moved.
func (n *Node) onLeader(ctx context.Context) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("read raft configuration", "err", err)
		return
	}
	self := n.trans.LocalAddr()
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.NodeID) && s.Address != self && s.Suffrage == raft.Voter {
			n.log.Info("updating own raft address", "from", string(s.Address), "to", string(self))
			if err := n.AddVoter(ctx, n.cfg.NodeID, string(self)); err != nil {
				n.log.Warn("update own raft address", "err", err)
			}
		}
	}
}

// WaitReady blocks until this node's state is complete, or ctx is done: on
// the leader, every entry of its log is applied (a barrier); on a
// follower, a leader is known, was heard from recently, and everything it
// has committed is applied here.
func (n *Node) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		switch n.raft.State() {
		case raft.Leader:
			if err := n.raft.Barrier(n.timeout(ctx)).Error(); err == nil {
				return nil
			} else if errors.Is(err, raft.ErrRaftShutdown) {
				return ErrClosed
			}
		case raft.Follower:
			if n.followerCurrent() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: wait ready: %w (%w)", ErrNoLeader, ctx.Err())
		case <-n.closed:
			return ErrClosed
		case <-t.C:
		}
	}
}

// followerCurrent: a leader is known and was heard from within an election
// timeout, and this node applied all it knows to be committed.
func (n *Node) followerCurrent() bool {
	if _, id := n.raft.LeaderWithID(); id == "" {
		return false
	}
	lc := n.raft.LastContact()
	if lc.IsZero() || time.Since(lc) > 2*n.cfg.ElectionTimeout {
		return false
	}
	c := n.commitIndex()
	return c > 0 && n.appliedThrough(c)
}

// Staleness is how old this node's view of the replicated state may be:
// zero on a leader (it steps down when it loses its majority for longer
// than the leader lease); on any other node the time since it was last
// caught up, that is heard from the leader recently and had applied all the
// leader had committed (checked every currentEvery), or since it started if
// never. A node that resumes after a pause therefore stays stale until it
// has applied what it missed, not merely until it hears the leader again.
func (n *Node) Staleness() time.Duration {
	if n.raft.State() == raft.Leader {
		return 0
	}
	return time.Since(time.Unix(0, max(n.currentAt.Load(), n.started.UnixNano())))
}

// currentEvery is how often a node checks that it is caught up.
const currentEvery = 50 * time.Millisecond

// watchCurrent records when this node was last caught up, until Close.
func (n *Node) watchCurrent() {
	t := time.NewTicker(currentEvery)
	defer t.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-t.C:
			if n.raft.State() == raft.Leader {
				n.currentAt.Store(time.Now().UnixNano())
				continue
			}
			if !n.followerCurrent() {
				continue
			}
			// After a gap (a pause, a partition) hearing the leader is not
			// enough: its heartbeats arrive before the entries this node
			// missed, so its own commit index looks complete. Ask the
			// leader what it has committed, and wait for that.
			if gap := time.Since(time.Unix(0, n.currentAt.Load())); gap > 2*n.cfg.ElectionTimeout && n.rpc != nil {
				ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
				err := n.Sync(ctx)
				cancel()
				if err != nil {
					continue
				}
			}
			n.currentAt.Store(time.Now().UnixNano())
		}
	}
}

// Reconcile makes the raft configuration follow want (the cluster's member
// list, id → raft address). On the leader it adds each member the
// configuration lacks as a non-voter, so a new node that never comes up
// cannot cost the cluster its majority; promotes a non-voter to voter once
// it answers on the node port and has applied what the leader committed
// (only with Config.TLS; without it new members are voters at once); and
// removes each server no longer wanted. An empty want changes nothing.
// Elsewhere it does nothing. Call it again when it fails, or on a timer:
// each call makes the next step.
func (n *Node) Reconcile(ctx context.Context, want map[string]string) error {
	if len(want) == 0 || n.raft.State() != raft.Leader {
		return nil
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("cluster: reconcile: %w", err)
	}
	have := map[string]raft.Server{}
	for _, s := range f.Configuration().Servers {
		have[string(s.ID)] = s
	}
	var errs []error
	for id, addr := range want {
		s, ok := have[id]
		switch {
		case ok && string(s.Address) == addr && s.Suffrage == raft.Voter:
		case ok && string(s.Address) == addr && n.rpc != nil:
			if n.caughtUp(ctx, addr) {
				n.log.Info("promoting a caught-up member to voter", "node", id)
				errs = append(errs, n.AddVoter(ctx, id, addr))
			}
		case n.rpc == nil:
			n.log.Info("adding a cluster member to raft", "node", id, "addr", addr)
			errs = append(errs, n.AddVoter(ctx, id, addr))
		default:
			n.log.Info("adding a cluster member to raft as a non-voter until it catches up", "node", id, "addr", addr)
			if err := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx)).Error(); err != nil {
				errs = append(errs, fmt.Errorf("cluster: add non-voter %s: %w", id, mapRaftErr(err)))
			}
		}
	}
	for id := range have {
		if _, ok := want[id]; !ok && id != n.cfg.NodeID {
			n.log.Info("removing a former member from raft", "node", id)
			errs = append(errs, n.RemoveServer(ctx, id))
		}
	}
	if _, ok := want[n.cfg.NodeID]; !ok && len(have) > 1 {
		// This leader was removed: hand over, and the next leader takes it
		// out of the configuration.
		n.log.Info("this node was removed from the cluster; handing leadership over")
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: hand over leadership after removal: %w", err))
		}
	}
	return errors.Join(errs...)
}

// caughtUp asks a member whether it follows this leader and has applied
// what this leader committed.
func (n *Node) caughtUp(ctx context.Context, addr string) bool {
	var st NodeStatus
	if err := n.peerStatus(ctx, addr, &st); err != nil {
		return false
	}
	return st.Leader == n.cfg.NodeID && st.AppliedIndex+healthyLag/10 >= n.commitIndex()
}

// Apply replicates cmd through raft and returns the FSM's response. If the
// FSM's Apply returned an error value, Apply returns it as the error. On a
// follower it forwards to the leader via Config.Forwarder, or fails with a
// *NotLeaderError. If ctx ends first, Apply returns ctx's error; the command
// may still be committed later.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	select {
	case <-n.closed:
		return nil, ErrClosed
	default:
	}
	if h, ok := n.cfg.FSM.(Halter); ok && h.Err() != nil {
		return nil, fmt.Errorf("cluster: %w", h.Err())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	forwards := n.rpc != nil && n.cfg.Forwarder == nil // over the node port
	if n.raft.State() != raft.Leader {
		addr, id := n.raft.LeaderWithID()
		switch {
		case n.cfg.Forwarder != nil && id != "":
			return n.cfg.Forwarder.Forward(ctx, string(id), string(addr), cmd)
		case forwards:
			return n.forward(ctx, cmd)
		}
		return nil, &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
	}
	resp, err := n.applyLocal(ctx, cmd)
	if errors.Is(err, ErrNotLeader) && forwards {
		// It stopped leading before appending the command: send it to
		// the next leader (forward waits for one).
		return n.forward(ctx, cmd)
	}
	return resp, err
}

// applyLocal proposes cmd on this node, which must be the leader.
func (n *Node) applyLocal(ctx context.Context, cmd []byte) (any, error) {
	f := n.raft.Apply(cmd, n.timeout(ctx))
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: apply: %w", ctx.Err())
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("cluster: apply: %w", mapRaftErr(err))
		}
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

func mapRaftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost):
		return errors.Join(ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return errors.Join(ErrNotLeader, err) // not appended: safe to send again
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left > 0 {
			return left
		}
		return time.Millisecond
	}
	return n.cfg.ApplyTimeout
}

// Snapshot takes a snapshot now (normally raft does so by itself after
// SnapshotThreshold entries). Taking one with nothing new is not an error.
func (n *Node) Snapshot() error {
	err := n.raft.Snapshot().Error()
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// AddVoter adds (or re-addresses) a voting member. Only the leader can.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx)).Error()
	if err != nil {
		return fmt.Errorf("cluster: add voter %s: %w", id, mapRaftErr(err))
	}
	return nil
}

// RemoveServer removes a member. Only the leader can.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	err := n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx)).Error()
	if err != nil {
		return fmt.Errorf("cluster: remove server %s: %w", id, mapRaftErr(err))
	}
	return nil
}

// Member is one server in the raft configuration.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// Status is a point-in-time view of the node, for health and admin output.
type Status struct {
	NodeID       string   `json:"node_id"`
	State        string   `json:"state"` // Leader, Follower, Candidate, Shutdown
	LeaderID     string   `json:"leader_id,omitempty"`
	Term         uint64   `json:"term"`
	LastIndex    uint64   `json:"last_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []Member `json:"members"`
}

// Status reports the node's raft state.
func (n *Node) Status() Status {
	_, leader := n.raft.LeaderWithID()
	st := Status{
		NodeID:       n.cfg.NodeID,
		State:        n.raft.State().String(),
		LeaderID:     string(leader),
		Term:         n.raft.CurrentTerm(),
		LastIndex:    n.raft.LastIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Members = append(st.Members, Member{
				ID:      string(s.ID),
				Address: string(s.Address),
				Voter:   s.Suffrage == raft.Voter,
				Leader:  s.ID == leader,
			})
		}
	}
	return st
}

// IsLeader reports whether this node is currently the leader.
func (n *Node) IsLeader() bool { return n.raft != nil && n.raft.State() == raft.Leader }

// Addr is the raft transport address of this node.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// Close shuts raft down and closes the stores. It is safe to call more than
// once and after a failed New.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		var errs []error
		if n.rpcSrv != nil {
			n.rpcSrv.Close()
		}
		if n.raft != nil {
			if err := n.raft.Shutdown().Error(); err != nil {
				errs = append(errs, fmt.Errorf("shutdown raft: %w", err))
			}
		}
		if n.trans != nil {
			if err := n.trans.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close transport: %w", err))
			}
		}
		if n.store != nil {
			if err := n.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close log store: %w", err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			n.closeErr = fmt.Errorf("cluster: close: %w", err)
		}
	})
	return n.closeErr
}

// tcpStreamLayer is raft's plain TCP stream layer. raft.NewTCPTransport
// wraps the same thing, but constructing the stream layer here keeps one
// code path for the plain and the mutual-TLS case (Config.StreamLayer).
type tcpStreamLayer struct {
	net.Listener
	advertise net.Addr
}

var _ raft.StreamLayer = (*tcpStreamLayer)(nil)

func newTCPStreamLayer(bind, advertise string) (*tcpStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen raft on %s: %w", bind, err)
	}
	s := &tcpStreamLayer{Listener: ln, advertise: ln.Addr()}
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("resolve advertise address %q: %w", advertise, err)
		}
		s.advertise = a
	}
	if a, ok := s.advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s is not advertisable; set an advertise address", a)
	}
	return s, nil
}

func (s *tcpStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

func (s *tcpStreamLayer) Addr() net.Addr { return s.advertise }
