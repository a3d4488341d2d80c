// Package audit is one node's durable, tamper-evident audit trail: the
// gateway.Sink that keeps every gateway decision on local disk, in a form
// an auditor can verify offline with the node's public key alone.
//
// # Records
//
// One JSON object per governed request (Record): time, node, agent,
// persona, key id, client IP, session, protocol revision, method, tool,
// upstream, decision, reason, every stage's verdict, DLP outcomes and
// finding counts by detector id (never the values), ICAP outcome, latency
// and upstream status. Records are numbered (seq) from 1 without gaps.
// gateway.Decision carries no argument or result digest yet, so records
// have none.
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
// segment); a closed segment is zstd-compressed (segment-….log.zst, with
// the zstd content checksum) through a temp file and a rename, so a crash
// never leaves it unreadable.
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
// # Search
//
// Search scans every segment linearly (with a byte pre-filter before JSON
// decoding) and returns matches newest last. There is no index yet: fine
// for one node's trail in this slice, not for 10M records.
//
// # Not built yet
//
// Replication of records or chain heads to other nodes (anchoring heads in
// raft, a strict mode where a call completes only once its record is
// durable on a quorum, failing closed), retention with verifiable deletion
// of old segments, admin-action records, keyed argument/result digests,
// the admin API route for search and export bundles, OTLP and syslog/CEF
// export, and incident reports.
package audit
