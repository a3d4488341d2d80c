package state

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Audit batches (command format V3): every node's audit trail
// (internal/audit) reaches every other node through raft, one command per
// group commit of the node's trail, never one per record. A batch carries
// the node's records as they are framed in its segments (Payload: zstd,
// encoded and decoded by internal/audit; opaque here) and the chain head
// after them (Head).
//
// Applying a batch does two things:
//
//   - The node's anchor — the latest chain head raft committed for it:
//     segment, seq, chain hash and the latest signed checkpoint — moves
//     forward. Anchors are part of the replicated state and of raft
//     snapshots: every node, and every later replay, holds the same heads,
//     so an audit trail whose newest segments and checkpoints were deleted
//     on its own node no longer matches what the cluster anchored.
//   - The batch is handed to OnAuditBatch (the appliance writes the records
//     into its replica of that node's trail). Records are not kept in the
//     store or in snapshots: a node that installs a snapshot gets the
//     anchors, but not the records of the entries the snapshot replaced.
//
// Apply is replay-safe: a batch that ends at or before the node's anchor
// (a retried proposal, a replayed entry) leaves the anchor as it is, and
// the receiver of OnAuditBatch skips records it already holds.

// OpAuditBatch applies Audit (format V3).
const OpAuditBatch Op = "audit.batch"

// MaxAuditPayload bounds one batch's compressed records.
const MaxAuditPayload = 8 << 20

// maxAuditCheckpoint bounds the checkpoint carried in an anchor.
const maxAuditCheckpoint = 4 << 10

// AuditHead is where one node's audit chain stands: after record Seq, the
// Records-th record of segment Segment, whose chain hash is Hash (hex
// SHA-256). Checkpoint is the node's latest signed checkpoint (the JSON
// line of its checkpoints.log), when it has one.
type AuditHead struct {
	Segment    uint64          `json:"segment"`
	Records    int             `json:"records"`
	Seq        uint64          `json:"seq"`
	Hash       string          `json:"hash"`
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
}

// AuditBatch is one group commit of node Node's trail: records FirstSeq
// through Head.Seq.
type AuditBatch struct {
	Node     string    `json:"node"`
	FirstSeq uint64    `json:"firstSeq"`
	Head     AuditHead `json:"head"`
	Payload  []byte    `json:"payload"`
}

// AuditAnchor is the latest head raft committed for a node's trail, with
// the command time and raft index that anchored it.
type AuditAnchor struct {
	Node string `json:"node"`
	AuditHead
	Time  time.Time `json:"time"`
	Index uint64    `json:"index"`
}

func checkAuditBatch(b *AuditBatch) error {
	switch {
	case b == nil:
		return malformed("audit.batch: no batch")
	case !ValidNodeID(b.Node):
		return malformed("audit.batch: node %q is not a node id", b.Node)
	case b.FirstSeq == 0 || b.Head.Seq+1 < b.FirstSeq:
		return malformed("audit.batch: records %d..%d: want 1 <= first <= last (or last+1: checkpoints only)", b.FirstSeq, b.Head.Seq)
	case b.FirstSeq == b.Head.Seq+1 && len(b.Head.Checkpoint) == 0:
		return malformed("audit.batch: no records and no checkpoint")
	case b.Head.Segment == 0 || b.Head.Records < 1:
		return malformed("audit.batch: head segment %d, record %d: want both >= 1", b.Head.Segment, b.Head.Records)
	case len(b.Payload) == 0 || len(b.Payload) > MaxAuditPayload:
		return malformed("audit.batch: payload of %d bytes: want 1..%d", len(b.Payload), MaxAuditPayload)
	case len(b.Head.Checkpoint) > maxAuditCheckpoint:
		return malformed("audit.batch: checkpoint of %d bytes exceeds %d", len(b.Head.Checkpoint), maxAuditCheckpoint)
	case len(b.Head.Checkpoint) > 0 && !json.Valid(b.Head.Checkpoint):
		return malformed("audit.batch: the checkpoint is not JSON")
	}
	if h, err := hex.DecodeString(b.Head.Hash); err != nil || len(h) != 32 {
		return malformed("audit.batch: head hash %q is not a hex SHA-256", b.Head.Hash)
	}
	return nil
}

// applyAudit moves the batch's node's anchor forward and hands the batch
// on (the caller holds s.mu).
func (s *Store) applyAudit(cmd *Command, index uint64) *Result {
	b := cmd.Audit
	old := s.anchors[b.Node]
	action := "unchanged"
	switch {
	case old == nil || b.Head.Seq > old.Seq:
		a := &AuditAnchor{Node: b.Node, AuditHead: b.Head, Time: cmd.Time, Index: index}
		if len(a.Checkpoint) == 0 && old != nil {
			a.Checkpoint = old.Checkpoint // the batch brought no newer one
		}
		a.Checkpoint = slices.Clone(a.Checkpoint)
		s.anchors[b.Node] = a
		action = "updated"
	case b.Head.Seq == old.Seq && b.Head.Hash == old.Hash && len(b.Head.Checkpoint) > 0 && string(b.Head.Checkpoint) != string(old.Checkpoint):
		// Checkpoints only (the final one of a segment): same head, newer
		// checkpoint.
		a := *old
		a.Checkpoint, a.Time, a.Index = slices.Clone(b.Head.Checkpoint), cmd.Time, index
		s.anchors[b.Node] = &a
		action = "updated"
	}
	if s.onAudit != nil {
		s.onAudit(b, index)
	}
	return &Result{Index: index, Changes: []Change{{Kind: "AuditAnchor", Name: b.Node, Action: action}}}
}

// OnAuditBatch registers f to receive every audit batch as it is applied
// (also when raft replays its log at start). f runs on raft's apply
// goroutine: it must not block for long (appending to local files is
// fine). Call it before the node starts.
func (s *Store) OnAuditBatch(f func(b *AuditBatch, index uint64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAudit = f
}

// AuditAnchors returns a copy of every node's anchor, sorted by node.
func (s *Store) AuditAnchors() []AuditAnchor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.anchorDump()
}

// AuditAnchor returns node's anchor, if raft committed one.
func (s *Store) AuditAnchor(node string) (AuditAnchor, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.anchors[node]
	if !ok {
		return AuditAnchor{}, false
	}
	c := *a
	c.Checkpoint = slices.Clone(a.Checkpoint)
	return c, true
}

// anchorDump is the anchors, sorted (the caller holds s.mu).
func (s *Store) anchorDump() []AuditAnchor {
	out := make([]AuditAnchor, 0, len(s.anchors))
	for _, n := range slices.Sorted(maps.Keys(s.anchors)) {
		a := *s.anchors[n]
		a.Checkpoint = slices.Clone(a.Checkpoint)
		out = append(out, a)
	}
	return out
}

func (s *Store) restoreAnchors(as []AuditAnchor) error {
	m := map[string]*AuditAnchor{}
	for i := range as {
		a := as[i]
		if !ValidNodeID(a.Node) {
			return fmt.Errorf("restore state snapshot: an audit anchor for node %q", a.Node)
		}
		m[a.Node] = &a
	}
	s.anchors = m
	return nil
}
