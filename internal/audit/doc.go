// Package audit is one node's durable, tamper-evident audit trail: the
// gateway.Sink that keeps every gateway decision on local disk, in a form
// an auditor can verify offline with the node's public key alone.
//
// # Records
//
// One JSON object per governed request (Record, kind "request"): time,
// node, agent, user (when the credential names one; none do yet), persona,
// key id, client IP, session, protocol revision, method, tool, upstream,
// decision, reason, every stage's verdict, DLP outcomes and finding counts
// by detector id (never the values), ICAP outcome, latency, upstream
// status, the W3C trace id (the agent's traceparent, else a new one), and
// keyed digests of a tool call's arguments and result: HMAC-SHA256 under a
// key the appliance derives from the HSM's MAC key (replicated to every
// node), over the canonical JSON of the arguments and the upstream's result
// bytes, so equal values correlate across calls and nodes without being
// stored, and nobody without the HSM can test a guess against a digest.
//
// One record per admin API write (kind "admin", Record.Admin; WriteAdmin),
// in the same chain: the admin credential's id and a short id of the
// token (8 hex digits of its SHA-256, never the token), the role, the
// action (method and route), the path, the HTTP status and result ("ok" or
// the error code), and the objects the request's commands changed with the
// SHA-256 of each object's canonical document before and after (keys,
// secrets and credentials as replicated: hashes and ciphertext, never a
// value). internal/api captures them (auditWrites); refused attempts are
// recorded too. Records are numbered (seq) from 1 without gaps.
//
// # Segments and the chain
//
// Records go to append-only segment files in the audit directory
// (default DATA_DIR/audit), segment-00000001.log, segment-00000002.log, …
// A segment starts with the magic "PCAUDIT1" and a length-prefixed JSON
// header (segment number, first seq, the chain hash it continues from),
// then one frame per record:
//
//	u32 big-endian length | record JSON | 32-byte chain hash
//
// where a record's chain hash is SHA-256(previous record's hash || its
// JSON), and the first record of a segment continues from the last hash of
// the segment before (32 zero bytes for segment 1). So editing, removing,
// inserting or reordering any record breaks the chain at that record.
// A segment is closed at the first flush after it reaches SegmentBytes
// (64 MiB) or SegmentAge (24h), and at every start (each start opens a new
// segment); a closed segment is zstd-compressed (segment-….log.zst) as a
// sequence of independent zstd frames of about 256 KiB of records each
// (with content checksums; together one valid zstd stream), through a temp
// file and a rename, so a crash never leaves it unreadable, and indexed
// (below).
//
// # Checkpoints
//
// checkpoints.log holds one JSON line per checkpoint: segment, record
// count, last seq, the chain hash after that many records, the SHA-256 of
// the segment's header, and an ECDSA P-256 signature by the HSM's audit key
// (hsm.SignerAudit: generated inside the token, never extractable). One is
// written every CheckpointInterval (10s) while records arrive, and a final
// one when a segment closes. The public key is written beside the segments
// as audit-pub.pem (every key ever used stays in it). Without an HSM the
// checkpoints are unsigned: the chain still shows accidental damage and
// naive edits, but whoever can write the directory can rewrite it
// consistently, and Verify says so.
//
// # Verify
//
// Verify walks every segment and checkpoint and names each place the trail
// is not intact (segment file and record number): a changed byte, a
// removed, swapped or inserted record, a missing segment (first, middle or
// newest), a tail cut inside or at the end of a record, a changed header,
// a checkpoint not signed by the trail's key, removed checkpoints. It
// detects what a local trail can: an attacker who deletes the newest
// segments together with their checkpoints, or who rewrites a segment
// after its last checkpoint, is caught by VerifyAnchored, which also
// checks the trail against the chain head raft anchored for its node (see
// Replication): the anchored segment must be there and hold the anchored
// record with the anchored chain hash, and the anchored signed checkpoint
// must verify and be in checkpoints.log. The anchors come from any node
// (GET /v1/audit/anchors, `portcullis audit anchors`, or its
// AUDIT_DIR/replicas/anchors.json), so an auditor verifies an exported
// trail offline with the public key and an anchors file
// (`portcullis audit verify --audit-dir DIR --anchors FILE`).
//
// # Replication
//
// Design: records reach the other nodes through the cluster's existing
// hashicorp/raft group, in batches — no second raft group, no JetStream,
// no replication protocol of our own. One raft group keeps one ordering
// and one failure model for control state and audit; the cost is audit
// entries sharing the control state's log (see Limits). Each flush (group
// commit) of the log, after its fsync, is queued to a Replicator, which
// proposes what is queued as ONE state.OpAuditBatch command whenever the
// previous one is committed (pipelined: a batch holds everything flushed
// while the one before was in flight). A Batch is the records framed
// exactly as in the segment (so a replica is byte-identical), per segment
// run with the segment's header, the checkpoints written since the batch
// before and, once per start, the public key; zstd-compressed (a DecodeBatch
// on the receiving side checks that it is one intact run of a chain).
// The command also carries the chain head after the batch (segment,
// record, seq, hash, newest signed checkpoint): every node's state.Store
// anchors it (forward only, replay-safe) in replicated state and in raft
// snapshots. Every node's Replicas writes other nodes' batches into
// AUDIT_DIR/replicas/<node>/ (its own are skipped), skipping records it
// holds (raft replays its log at every start), and closes and compresses a
// replica segment when the node's next one begins: `portcullis audit
// verify --audit-dir AUDIT_DIR/replicas/<node>` checks it with the node's
// signed checkpoints. Records never enter the control-state snapshot: a
// node that installs a raft snapshot (it joined late, or was down for
// more than TrailingLogs entries) gets the anchors but not the records
// the snapshot replaced; its replica then has a gap, logged, counted
// (portcullis_audit_replica_gaps_total) and named by verify. A node that
// died between its fsync and raft's commit ships those records from its
// local segments at its next start (ReplicatorConfig.Anchored), before
// anything new.
//
// # Durability modes
//
// async (the default): the gateway answers before the record is durable.
// strict (Config.Strict, gateway.DurableSink via StrictSink): the
// gateway's answer is released only once WriteDurable returns, that is
// once the record is fsynced locally and committed by raft (on a quorum of
// voters; on a single node, its own raft log, fsynced); Run flushes as
// soon as a strict write waits, instead of every FlushInterval. A failed
// proposal is retried (through the next leader, after an election); a
// record not durable within StrictTimeout (5s) refuses its call. Once
// attempts have failed for a second, or a record has waited StrictTimeout,
// Down reports the trail unable to make records durable, and the
// appliance refuses new calls (503) and fails /healthz until a commit
// succeeds again. A refused call's record stays queued and is
// replicated later, so a trail may hold records of calls whose answers
// were withheld. With one node of three dead, no record of an
// acknowledged call is lost in strict mode: it was on a quorum before the
// answer. In async mode the records of the dead node's last flush
// interval plus one raft commit are lost with it (those not yet on the
// others). Measured on a shared 2-core machine: qa/cluster's
// TestAuditStrictSurvivesNodeKills (strict, kill -9 of a follower, then
// of the leader, 2 agents per node) found every one of 2457–3098
// acknowledged calls on every survivor; TestAuditAsyncLossOnNodeKill
// (async) lost 19 of the 809 calls the killed node acknowledged, the
// oldest answered 40 ms before the kill, and the survivors held a prefix
// (no holes). TestAuditFigures prints what each mode costs.
//
// # Durability and the loss window
//
// Write only appends the framed record to an in-memory buffer. A flush
// (one write and one fsync of the whole buffer) runs every FlushInterval
// (100 ms) from Run, or at once when the buffer reaches BufferBytes
// (1 MiB). So a record handed to Write is on disk within FlushInterval plus
// the duration of one flush, and kill -9 or a power cut loses at most the
// records handed over in that window, plus those still in the gateway's
// queue in front of Write (microseconds unless the disk is behind). The
// async gateway answers an agent before the record is durable: an acknowledged
// call can be in that window. qa's TestAuditSurvivesKill9 kills a real node
// three times under four agents' load, asserts that every call
// acknowledged more than FlushInterval + 400 ms before a kill has its
// record, and prints the loss: on a shared 2-core machine with the default
// 100 ms interval, 244 of 6864 acknowledged calls were lost, the oldest
// acknowledged 88 ms before its kill. On
// restart a record torn by the crash at the end of the last segment is cut
// off (it was never on disk whole), the segment gets its final checkpoint
// and is compressed, and the chain continues in a new segment.
//
// # Retention
//
// RetainAge and RetainBytes (server --audit-retain-age, --audit-retain-bytes)
// delete the oldest closed segments, from the oldest on: those whose newest
// record is older than RetainAge, and while the trail's files exceed
// RetainBytes. Never the open segment, nor one without its final
// checkpoint. Before deleting, a marker goes to retention.log, signed by
// the audit key: segments 1..N were deleted, the chain continues from head
// H at seq S+1. Verify accepts the absence of exactly those segments and
// checks that the first remaining one starts from H; a middle, newest or
// any other missing segment is still reported, and so is a marker that
// does not verify.
//
// # Ranges
//
// VerifyWith verifies only the segments overlapping a seq or time range
// (audit verify --from --to): the first is chained to the signed final
// checkpoint of the segment before it, so a range verifies without the
// rest of the trail. Verify does the same after any gap, so the segment
// after a missing one is still checked.
//
// # Search and the index
//
// Each compressed segment has a sidecar index (segment-….idx, index.go):
// its seq and time range, each block's offsets and time range, and posting
// lists (record ordinals) per agent, user, persona, tool, decision, kind
// and admin identity. Search and Page skip the segments and blocks a
// filter excludes and decompress only the blocks holding candidates; the
// open segment and segments without an index are scanned (with a byte
// pre-filter before JSON decoding). An index is rebuilt at start when
// missing (one block for segments compressed before indexes existed). The
// index is an accelerator, not evidence: verify never reads it, an index
// that does not match its segment's size is ignored, and an index forged to
// hide a record can only hide it from search. BenchmarkSearch10M measures
// latency on 10M records (99 segments; a loaded 2-core machine): one
// agent's 10000 records 0.5 s (0.95 s with no index parsed yet, as a CLI
// run), a persona's newest 100 3 ms, a page of 100 after a cursor 6 ms, a
// filter matching nothing 1 ms; 76 MB of segments and 9 MB of index per
// million records.
//
// # Export bundles
//
// Export writes the segments overlapping a time range, their indexes,
// checkpoints.log, retention.log, audit-pub.pem and a manifest as a tar
// (optionally zstd); VerifyBundle (audit verify --bundle) unpacks it,
// strictly (known flat names only, sizes bounded), and verifies it as a
// range, offline.
//
// # Limits
//
// Audit batches travel in the control state's raft log (JSON-encoded, so
// the compressed payload is base64 in it) and stay there until raft
// compacts them (after SnapshotThreshold entries, keeping TrailingLogs):
// in strict mode under load a node proposes one entry per commit round
// trip. Replicas are written on raft's apply goroutine without fsync
// (fsynced every second; raft's log holds the batch durably meanwhile).
// A batch for any node is accepted from any member (members are trusted:
// mutual TLS); a member that forges another node's batches writes into
// that node's replicas, but cannot produce its signed checkpoints. Audit
// batches are command format V3: during a rolling upgrade from a binary
// without them, an old node halts (it stops applying rather than diverge,
// see state.Store.Halted) at the first batch an upgraded node proposes;
// upgrade every node before serving traffic (a gate on the members'
// versions is not built).
//
// # Not built yet
//
// Export to OTLP, syslog/CEF and webhooks is internal/export; incident
// reports are internal/incident. A node whose audit directory was wiped
// starts a new trail at seq 1 under its old anchor: it logs an error at
// start, and the replicas skip its records as already held until its seq
// passes the anchored one (resetting a node's anchor is not built).
package audit
