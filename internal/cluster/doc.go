// Package cluster runs the raft node that replicates a Portcullis node's
// control state, and the node-to-node channel of a cluster.
//
// A Node wraps a raft.FSM given in Config (the state store) with a
// hashicorp/raft instance whose log and stable store is raft-boltdb/v2 and
// whose snapshots live in a file snapshot store. Snapshots are
// zstd-compressed transparently: the FSM writes plain bytes to its sink and
// reads plain bytes on restore; this package compresses on the way to disk
// and decompresses on the way back (and still reads snapshots that were
// written uncompressed).
//
// # The node port
//
// With Config.TLS a node listens on one port, mutual TLS 1.3 only, and
// routes each connection by ALPN: raft's own RPCs, or the cluster's
// (HTTP/1.1): a write proposed on a follower is forwarded to the leader
// (Apply waits through an election for the next leader, and retries only
// what was never sent), GET /v1/status reports a node's raft view (for
// ClusterStatus, readiness checks and promotion), a leadership transfer
// can be asked of any node, and Config.Peer serves the application's own
// node-to-node calls under /app/ (Node.CallPeer). Which peers to trust is
// the caller's decision, expressed in the tls.Config (the appliance checks
// a member CA bundle and member names that change at run time).
//
// # Membership
//
// The first start of a node with Config.Bootstrap bootstraps a single-voter
// cluster of itself; every later start replays the newest snapshot and the
// log after it. Other nodes start without Bootstrap and wait to be added.
// Reconcile, called on the leader with the member list the application
// keeps in its replicated state, makes the raft configuration follow it:
// a new member is added as a non-voter, promoted to voter once it follows
// this leader and has applied what it committed (so a node that never comes
// up cannot cost the cluster its majority), and servers no longer listed
// are removed.
//
// # Readiness and staleness
//
// WaitReady returns on the leader once its log is applied, and on a
// follower once a leader was heard recently and everything it knows to be
// committed is applied. Staleness says how old a node's view may be (0 on
// the leader, which steps down after the leader lease without a majority;
// the time since the leader was last heard on a follower); the appliance
// stops serving agents beyond a bound. Sync gives read-your-writes across
// nodes: it waits until this node applied what the leader had committed.
//
// A state machine that meets an entry it must not skip (state.Store on a
// command format newer than its binary) halts: Run returns its error and
// Apply refuses writes (see Halter).
//
// Reads never go through this package: the data plane reads the FSM's
// current immutable snapshot directly and never waits on the leader.
//
// Raft's own hclog output is routed into the *slog.Logger from Config.
package cluster
