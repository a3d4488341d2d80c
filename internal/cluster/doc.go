// Package cluster runs the raft node that replicates a Portcullis node's
// control state.
//
// A Node wraps a raft.FSM given in Config (the state store) with a
// hashicorp/raft instance whose log and stable store is raft-boltdb/v2 and
// whose snapshots live in a file snapshot store. Snapshots are
// zstd-compressed transparently: the FSM writes plain bytes to its sink and
// reads plain bytes on restore; this package compresses on the way to disk
// and decompresses on the way back (and still reads snapshots that were
// written uncompressed).
//
// # Single node today, a cluster tomorrow
//
// The first start of a node with Config.Bootstrap set bootstraps a
// single-voter cluster containing only itself; every later start replays the
// newest snapshot and the log after it, so a restart keeps every object. This
// is the same code path a 3–5 node cluster uses, which is why even a dev
// appliance runs raft.
//
// The hooks for more voters are in place:
//
//   - Joining: the leader calls Node.AddVoter for a new node (an admin API
//     or join endpoint authenticates the joiner first, and the HSM wrap/unwrap
//     ceremony shares the sealing key before the node becomes a voter).
//     Node.RemoveServer takes a node out.
//   - Node-to-node transport: Config.StreamLayer replaces the plain TCP
//     stream layer. NewTLSStreamLayer speaks mutual TLS 1.3 with node
//     certificates issued by the cluster CA, so raft RPCs are authenticated
//     and encrypted and a host without such a certificate cannot take part.
//     Nil means plain TCP on BindAddr, which is only for a single node or
//     dev mode on loopback.
//   - Leader forwarding: Apply on a follower returns a *NotLeaderError
//     (matching ErrNotLeader) naming the current leader, unless
//     Config.Forwarder is set, in which case the command is handed to the
//     forwarder, which sends it to the leader over the same mutual-TLS
//     channel and returns the leader's result. The admin API can therefore
//     accept writes on any node. (The forwarding RPC itself is not built
//     yet. It carries the leader's outcome back as state.EncodeOutcome
//     writes it, and the follower returns what state.DecodeOutcome gives,
//     so a forwarded write answers exactly as a local one.)
//   - A state machine that meets an entry it must not skip (state.Store on
//     a command format newer than its binary) halts: Run returns its
//     error and Apply refuses writes (see Halter).
//
// Reads never go through this package: the data plane reads the FSM's
// current immutable snapshot directly and never waits on the leader.
//
// Raft's own hclog output is routed into the *slog.Logger from Config.
package cluster
