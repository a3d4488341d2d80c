package cluster

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Close() error  { m.closed = true; return nil }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func persist(t testing.TB, fsm raft.FSM) *memSink {
	t.Helper()
	s, err := (&compressedFSM{inner: fsm}).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	s.Release()
	return sink
}

func TestSnapshotRoundTrip(t *testing.T) {
	src := newKV()
	src.data["a"] = strings.Repeat("x", 10000)
	src.data["b"] = "y"
	sink := persist(t, src)
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v, want closed only", sink.closed, sink.cancelled)
	}
	if !isZstd(sink.Bytes()) {
		t.Fatal("snapshot is not a zstd frame")
	}
	dst := newKV()
	if err := (&compressedFSM{inner: dst}).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if dst.get("a") != src.data["a"] || dst.get("b") != "y" {
		t.Fatal("restored state differs")
	}
}

func TestRestoreUncompressedSnapshot(t *testing.T) {
	dst := newKV()
	if err := (&compressedFSM{inner: dst}).Restore(io.NopCloser(strings.NewReader(`{"old":"format"}`))); err != nil {
		t.Fatal(err)
	}
	if dst.get("old") != "format" {
		t.Fatal("plain snapshot not restored")
	}
}

func TestRestoreCorruptSnapshot(t *testing.T) {
	sink := persist(t, newKV())
	b := append([]byte(nil), sink.Bytes()...)
	b = b[:len(b)-3] // truncated frame
	err := (&compressedFSM{inner: newKV()}).Restore(io.NopCloser(bytes.NewReader(b)))
	if err == nil {
		t.Fatal("a truncated snapshot was restored without error")
	}
}

// FuzzDecompressSnapshot feeds arbitrary bytes to the snapshot reader: it
// must never panic, and a compressed frame must come back byte for byte.
func FuzzDecompressSnapshot(f *testing.F) {
	enc, _ := zstd.NewWriter(nil)
	f.Add([]byte(`{"plain":"json"}`))
	f.Add(enc.EncodeAll([]byte(`{"a":"b"}`), nil))
	f.Add(append([]byte(nil), zstdMagic...))
	f.Add([]byte{})
	f.Add(append([]byte{0x50, 0x2a, 0x4d, 0x18, 12, 0, 0, 0, 'P', 'C', 'I', 'X', 7, 0, 0, 0, 0, 0, 0, 0}, enc.EncodeAll([]byte(`{}`), nil)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, err := decompressSnapshot(bytes.NewReader(data))
		if err == nil {
			io.Copy(io.Discard, r)
			r.Close()
		}
		r, _, err = decompressSnapshot(bytes.NewReader(enc.EncodeAll(data, nil)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: err=%v, %d bytes back of %d", err, len(got), len(data))
		}
	})
}

func BenchmarkSnapshotPersist(b *testing.B) {
	src := newKV()
	for i := range 2000 {
		src.data[strings.Repeat("k", i%50)+string(rune('a'+i%26))+strings.Repeat("0", i%7)] = strings.Repeat("value ", 20)
	}
	plain, _ := src.Snapshot()
	var raw memSink
	plain.Persist(&raw)
	var size int
	for b.Loop() {
		size = persist(b, src).Len()
	}
	b.ReportMetric(float64(raw.Len())/float64(size), "ratio")
	b.SetBytes(int64(raw.Len()))
}

// A snapshot records the index its state machine had applied (in a zstd
// skippable frame, which plain zstd readers skip), and restoring it sets
// that index.
func TestSnapshotCarriesAppliedIndex(t *testing.T) {
	fsm := &compressedFSM{inner: newKV()}
	b, _ := json.Marshal(kvCmd{K: "a", V: "1"})
	fsm.Apply(&raft.Log{Index: 41, Type: raft.LogCommand, Data: b})
	snap, err := fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(bytes.NewReader(sink.Bytes()))
	if plain, err := io.ReadAll(dec); err != nil || !bytes.Contains(plain, []byte(`"a":"1"`)) {
		t.Fatalf("a plain zstd reader does not skip the index frame: %v %q", err, plain)
	}
	restored := &compressedFSM{inner: newKV()}
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !restored.known.Load() || restored.applied.Load() != 41 || restored.inner.(*kvFSM).get("a") != "1" {
		t.Fatalf("restored: applied %d known %v", restored.applied.Load(), restored.known.Load())
	}
}

// isZstd: b is zstd data: a data frame, or the applied-index skippable
// frame followed by one.
func isZstd(b []byte) bool {
	if bytes.HasPrefix(b, indexFrameMagic[:]) && len(b) >= 8+indexFrameSize {
		b = b[8+indexFrameSize:]
	}
	return bytes.HasPrefix(b, zstdMagic)
}
