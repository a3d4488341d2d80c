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
// after its last checkpoint, is only caught once chain heads are anchored
// off the node (see below).
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
// gateway answers an agent before the record is durable: an acknowledged
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
// # Not built yet
//
// Replication of records or chain heads to other nodes (anchoring heads in
// raft, a strict mode where a call completes only once its record is
// durable on a quorum, failing closed), OTLP and syslog/CEF export, and
// incident reports (other slices).
package audit
