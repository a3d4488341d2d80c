package audit

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Anchors is the chain heads raft committed for every node's trail (see
// state.AuditAnchor), as GET /v1/audit/anchors and `portcullis audit
// anchors` print them and as every node keeps a copy of them in
// DATA_DIR/audit/replicas/anchors.json. An auditor keeps one beside an
// exported trail and checks the trail against it (VerifyAnchored).
type Anchors struct {
	// From is the node that wrote the file, at Time.
	From    string              `json:"from,omitempty"`
	Time    time.Time           `json:"time,omitzero"`
	Anchors []state.AuditAnchor `json:"anchors"`
}

// AnchorsFile is the name of the anchors copy in the replicas directory.
const AnchorsFile = "anchors.json"

// ReadAnchors reads an anchors file.
func ReadAnchors(file string) (*Anchors, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var a Anchors
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%s: not an anchors file: %w", file, err)
	}
	for _, an := range a.Anchors {
		if h, err := hex.DecodeString(an.Hash); err != nil || len(h) != hashSize || an.Segment == 0 || an.Records < 1 || an.Node == "" {
			return nil, fmt.Errorf("%s: anchor for node %q is malformed (segment %d, record %d, hash %q)", file, an.Node, an.Segment, an.Records, an.Hash)
		}
	}
	return &a, nil
}

// WriteAnchors writes a through a temp file and a rename (no fsync: the
// file is a copy; raft's state is the record).
func WriteAnchors(file string, a *Anchors) error {
	js, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file+".tmp", append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(file+".tmp", file)
}

// VerifyAnchored is Verify, and then checks the trail against the chain
// head raft anchored for its node: the anchored segment must be present
// and hold the anchored record with the anchored chain hash, and the
// anchored signed checkpoint must verify and be in checkpoints.log. This
// detects what a trail cannot show by itself: its newest segments deleted
// together with their checkpoints, or a segment rewritten after its last
// checkpoint. node names the trail's node; "" takes it from the trail's
// segment headers or checkpoints (or the only anchor). Records newer than
// the anchor are not an error (async mode ships them a moment later).
func VerifyAnchored(dir string, anchors []state.AuditAnchor, node string, keys ...*ecdsa.PublicKey) (*Report, error) {
	r, err := Verify(dir, keys...)
	if err != nil {
		return nil, err
	}
	if node == "" {
		node = trailNode(dir)
	}
	if node == "" && len(anchors) == 1 {
		node = anchors[0].Node
	}
	if node == "" {
		return nil, errors.New("audit verify: the trail names no node; name it (--node)")
	}
	var a *state.AuditAnchor
	for i := range anchors {
		if anchors[i].Node == node {
			a = &anchors[i]
		}
	}
	if a == nil {
		r.problem("", 0, 0, "raft anchored no chain head for node %s: the anchors are of another cluster, or the node never replicated a record", node)
		return r, nil
	}
	if len(keys) == 0 {
		keys, _ = ReadPublicKeys(filepath.Join(dir, pubKeyFile))
	}
	byID := map[string]*ecdsa.PublicKey{}
	for _, k := range keys {
		if id, err := KeyID(k); err == nil {
			byID[id] = k
		}
	}
	checkAnchor(r, dir, a, byID)
	r.Notes = append(r.Notes, fmt.Sprintf("checked against the chain head raft anchored for node %s: seq %d (%s record %d) at raft index %d, %s",
		node, a.Seq, segmentName(a.Segment), a.Records, a.Index, a.Time.UTC().Format(time.RFC3339)))
	return r, nil
}

// trailNode is the node a trail's segment headers or checkpoints name.
func trailNode(dir string) string {
	if segs, err := listSegments(dir); err == nil {
		for _, s := range segs {
			sr, c, err := openSegment(s)
			if err != nil {
				continue
			}
			n := sr.hdr.Node
			c.Close()
			if n != "" {
				return n
			}
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, ckptFile))
	cps, _, _ := parseCheckpoints(data)
	for _, c := range cps {
		if c.Node != "" {
			return c.Node
		}
	}
	return ""
}

func checkAnchor(r *Report, dir string, a *state.AuditAnchor, keys map[string]*ecdsa.PublicKey) {
	name := segmentName(a.Segment)
	when := a.Time.UTC().Format(time.RFC3339)
	segs, err := listSegments(dir)
	if err != nil {
		r.problem("", 0, 0, "%v", err)
		return
	}
	var seg *segmentFile
	for i := range segs {
		if segs[i].No == a.Segment {
			seg = &segs[i]
		}
	}
	if seg == nil {
		r.problem(name, 0, 0, "missing: raft anchored its record %d (seq %d) at %s; the newest segments were removed", a.Records, a.Seq, when)
	} else {
		checkAnchoredSegment(r, *seg, a, when)
	}
	if len(a.Checkpoint) == 0 {
		return
	}
	var c Checkpoint
	if err := json.Unmarshal(a.Checkpoint, &c); err != nil {
		r.problem("", 0, 0, "the checkpoint raft anchored is not a checkpoint: %v", err)
		return
	}
	if len(keys) > 0 {
		if err := c.verify(keys); err != nil {
			r.problem("", 0, 0, "the checkpoint raft anchored (segment %d, %d records) does not verify: %v", c.Segment, c.Records, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, ckptFile))
	cps, _, _ := parseCheckpoints(data)
	found := false
	for _, have := range cps {
		if have.Segment == c.Segment && have.Records == c.Records && have.Head == c.Head && have.Sig == c.Sig && have.Time == c.Time {
			found = true
			break
		}
	}
	if !found {
		r.problem(ckptFile, 0, 0, "lacks the checkpoint raft anchored (segment %d, %d records, written %s): checkpoints were removed", c.Segment, c.Records, c.Time)
	}
	if c.Segment != a.Segment {
		present := false
		for _, s := range segs {
			present = present || s.No == c.Segment
		}
		if !present {
			r.problem(segmentName(c.Segment), 0, 0, "missing: the checkpoint raft anchored vouches for its %d records", c.Records)
		}
	}
}

func checkAnchoredSegment(r *Report, s segmentFile, a *state.AuditAnchor, when string) {
	sr, c, err := openSegmentOpts(s, true)
	if err != nil {
		r.problem(s.Name(), 0, 0, "cannot be read to check the chain head raft anchored: %v", err)
		return
	}
	defer c.Close()
	for sr.n < a.Records {
		p, err := sr.next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, ErrHash) {
			break
		}
		if sr.n == a.Records {
			seq, _ := recordSeq(p)
			if seq != a.Seq || hex.EncodeToString(sr.stored[:]) != a.Hash {
				r.problem(s.Name(), sr.n, seq, "does not match the chain head raft anchored at %s (seq %d, hash %s): this record or one before it was changed", when, a.Seq, a.Hash[:12])
			}
			return
		}
	}
	r.problem(s.Name(), 0, 0, "has %d records, but raft anchored record %d (seq %d) at %s: records %d..%d were cut off", sr.n, a.Records, a.Seq, when, sr.n+1, a.Records)
}
