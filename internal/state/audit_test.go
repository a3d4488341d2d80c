package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func auditBatch(node string, first, last uint64, cp string) *AuditBatch {
	b := &AuditBatch{Node: node, FirstSeq: first, Payload: []byte("zstd..."),
		Head: AuditHead{Segment: 1, Records: int(last), Seq: last, Hash: strings.Repeat("ab", 32)}}
	if cp != "" {
		b.Head.Checkpoint = json.RawMessage(cp)
	}
	return b
}

// Audit batches move each node's anchor forward only: a replayed or
// retried batch leaves it (and is still handed on, for the receiver to
// skip), a batch without a checkpoint keeps the anchored one, and the
// anchors survive a snapshot (format 3).
func TestAuditBatchAnchors(t *testing.T) {
	s := NewStore(nil)
	var got []uint64
	s.OnAuditBatch(func(b *AuditBatch, index uint64) { got = append(got, index) })
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	apply := func(idx uint64, b *AuditBatch) string {
		t.Helper()
		r, err := applyCmd(t, s, idx, &Command{Op: OpAuditBatch, Time: t0, Audit: b})
		if err != nil {
			t.Fatalf("batch at %d: %v", idx, err)
		}
		return r.Changes[0].Action
	}
	if a := apply(1, auditBatch("n1", 1, 10, `{"segment":1,"records":10}`)); a != "updated" {
		t.Fatalf("first batch: %s", a)
	}
	if a := apply(2, auditBatch("n1", 1, 10, "")); a != "unchanged" {
		t.Fatalf("the same batch again: %s", a)
	}
	if a := apply(3, auditBatch("n1", 3, 5, "")); a != "unchanged" {
		t.Fatalf("an older batch: %s", a)
	}
	apply(4, auditBatch("n1", 11, 20, ""))
	apply(5, auditBatch("n2", 1, 3, ""))
	a, ok := s.AuditAnchor("n1")
	if !ok || a.Seq != 20 || a.Index != 4 || string(a.Checkpoint) != `{"segment":1,"records":10}` {
		t.Fatalf("anchor of n1: %+v", a)
	}
	if a := apply(6, auditBatch("n1", 21, 20, `{"segment":1,"records":20,"final":true}`)); a != "updated" {
		t.Fatalf("a batch of a checkpoint only: %s", a)
	}
	if an, _ := s.AuditAnchor("n1"); an.Seq != 20 || an.Index != 6 || !strings.Contains(string(an.Checkpoint), "final") {
		t.Fatalf("anchor after a checkpoint-only batch: %+v", an)
	}
	if len(got) != 6 {
		t.Fatalf("OnAuditBatch saw %d batches, want all 6", len(got))
	}
	if cur := s.Current(); cur.Index != 0 {
		t.Fatalf("an audit batch changed the control snapshot (index %d)", cur.Index)
	}

	snap, _ := s.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sink.Bytes(), []byte(`"format":3`)) || bytes.Contains(sink.Bytes(), []byte("zstd...")) {
		t.Fatal("a snapshot with anchors is not format 3, or it holds the records")
	}
	r := NewStore(nil)
	if err := r.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if as := r.AuditAnchors(); len(as) != 2 || as[0].Node != "n1" || as[0].Seq != 20 || as[1].Node != "n2" {
		t.Fatalf("restored anchors: %+v", as)
	}
}

// A malformed batch is refused when proposed, with an error naming what is
// wrong, and a hand-made entry of one changes nothing; a batch in an entry
// of an older format halts the store (it cannot have been written by a
// binary that knows the format).
func TestAuditBatchRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		b    *AuditBatch
		want string
	}{
		{"no batch", nil, "no batch"},
		{"bad node", auditBatch("bad node", 1, 2, ""), "not a node id"},
		{"seq 0", auditBatch("n1", 0, 2, ""), "want 1 <= first <= last"},
		{"last before first", auditBatch("n1", 5, 2, ""), "want 1 <= first <= last"},
		{"empty without a checkpoint", auditBatch("n1", 3, 2, ""), "no records and no checkpoint"},
		{"no payload", func() *AuditBatch { b := auditBatch("n1", 1, 2, ""); b.Payload = nil; return b }(), "payload of 0 bytes"},
		{"huge payload", func() *AuditBatch {
			b := auditBatch("n1", 1, 2, "")
			b.Payload = make([]byte, MaxAuditPayload+1)
			return b
		}(), "payload of"},
		{"bad hash", func() *AuditBatch { b := auditBatch("n1", 1, 2, ""); b.Head.Hash = "xyz"; return b }(), "not a hex SHA-256"},
		{"segment 0", func() *AuditBatch { b := auditBatch("n1", 1, 2, ""); b.Head.Segment = 0; return b }(), "head segment 0"},
		{"checkpoint not JSON", auditBatch("n1", 1, 2, "{nope"), "not JSON"},
	} {
		s := NewStore(nil)
		_, _, err := s.Prepare(&Command{Op: OpAuditBatch, Audit: c.b}, Node{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Prepare: %v, want malformed: %q", c.name, err, c.want)
		}
		data, err := json.Marshal(&Command{V: V3, Op: OpAuditBatch, Audit: c.b})
		if err != nil {
			continue // not representable in an entry (invalid JSON inside)
		}
		if res, ok := s.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(error); !ok || !strings.Contains(res.Error(), c.want) {
			t.Errorf("%s: Apply of a hand-made entry: %v", c.name, res)
		}
		if len(s.AuditAnchors()) != 0 || s.Err() != nil {
			t.Errorf("%s: the refused batch changed the store", c.name)
		}
	}
	s := NewStore(nil)
	data, _ := json.Marshal(&Command{V: V2, Op: OpAuditBatch, Audit: auditBatch("n1", 1, 2, "")})
	s.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data})
	if !errors.Is(s.Err(), ErrUnsupported) {
		t.Fatalf("a V2 entry with an audit batch: %v, want the store halted", s.Err())
	}
}
