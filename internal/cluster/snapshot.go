package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame (RFC 8878 section 3.1.1).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// compressedFSM wraps the caller's FSM so that snapshots are stored
// zstd-compressed, and tracks the index of the last entry the FSM finished
// applying (raft's own applied index moves when entries are handed to the
// FSM goroutine, a moment earlier). A snapshot carries that index in a zstd
// skippable frame ahead of the data, which any zstd reader skips.
type compressedFSM struct {
	inner raft.FSM
	// applied is the last index applied; known is false after restoring a
	// snapshot that did not record it, until the next Apply.
	applied atomic.Uint64
	known   atomic.Bool
}

// skippable frame carrying the applied index: magic, size, "PCIX", index.
var indexFrameMagic = [4]byte{0x50, 0x2a, 0x4d, 0x18} // 0x184D2A50, little endian

const indexFrameSize = 12 // "PCIX" + uint64

var (
	_ raft.FSM          = (*compressedFSM)(nil)
	_ raft.FSMSnapshot  = (*compressedSnapshot)(nil)
	_ raft.SnapshotSink = (*compressingSink)(nil)
)

func (f *compressedFSM) Apply(l *raft.Log) any {
	r := f.inner.Apply(l)
	f.applied.Store(l.Index)
	f.known.Store(true)
	return r
}

func (f *compressedFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	return &compressedSnapshot{inner: s, applied: f.applied.Load()}, nil
}

// Restore decompresses a zstd snapshot, or passes an uncompressed one
// through unchanged (snapshots written before compression was enabled).
func (f *compressedFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	r, index, err := decompressSnapshot(rc)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := f.inner.Restore(r); err != nil {
		return err
	}
	f.applied.Store(index)
	f.known.Store(index > 0)
	return nil
}

// decompressSnapshot returns a reader of the plain snapshot bytes in r, and
// the applied index the snapshot records (0 if none). The returned
// ReadCloser's Close releases the decoder, not r.
func decompressSnapshot(r io.Reader) (io.ReadCloser, uint64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var index uint64
	if head, _ := br.Peek(8 + indexFrameSize); len(head) == 8+indexFrameSize && bytes.Equal(head[:4], indexFrameMagic[:]) &&
		binary.LittleEndian.Uint32(head[4:8]) == indexFrameSize && string(head[8:12]) == "PCIX" {
		index = binary.LittleEndian.Uint64(head[12:20])
		br.Discard(8 + indexFrameSize)
	}
	head, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, 0, fmt.Errorf("cluster: read snapshot: %w", err)
	}
	if !bytes.Equal(head, zstdMagic) {
		return io.NopCloser(br), index, nil
	}
	dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: snapshot decoder: %w", err)
	}
	return &decoderCloser{Decoder: dec}, index, nil
}

type decoderCloser struct {
	*zstd.Decoder
	closed bool
}

func (d *decoderCloser) Read(p []byte) (int, error) {
	n, err := d.Decoder.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("cluster: decompress snapshot: %w", err)
	}
	return n, err
}

func (d *decoderCloser) Close() error {
	if !d.closed {
		d.closed = true
		d.Decoder.Close()
	}
	return nil
}

type compressedSnapshot struct {
	inner   raft.FSMSnapshot
	applied uint64
}

// Persist writes the applied-index frame, then gives the inner snapshot a
// sink that compresses into the real one.
func (s *compressedSnapshot) Persist(sink raft.SnapshotSink) error {
	frame := make([]byte, 8+indexFrameSize)
	copy(frame, indexFrameMagic[:])
	binary.LittleEndian.PutUint32(frame[4:], indexFrameSize)
	copy(frame[8:], "PCIX")
	binary.LittleEndian.PutUint64(frame[12:], s.applied)
	if _, err := sink.Write(frame); err != nil {
		sink.Cancel()
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	enc, err := zstd.NewWriter(sink, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("cluster: snapshot encoder: %w", err)
	}
	return s.inner.Persist(&compressingSink{SnapshotSink: sink, enc: enc})
}

func (s *compressedSnapshot) Release() { s.inner.Release() }

// compressingSink is what the FSM's Persist writes to. Close finishes the
// zstd frame before closing the underlying sink; Cancel discards both.
type compressingSink struct {
	raft.SnapshotSink
	enc  *zstd.Encoder
	done bool
}

func (c *compressingSink) Write(p []byte) (int, error) { return c.enc.Write(p) }

func (c *compressingSink) Close() error {
	if c.done {
		return nil
	}
	c.done = true
	if err := c.enc.Close(); err != nil {
		c.SnapshotSink.Cancel()
		return fmt.Errorf("cluster: finish compressed snapshot: %w", err)
	}
	return c.SnapshotSink.Close()
}

func (c *compressingSink) Cancel() error {
	if c.done {
		return nil
	}
	c.done = true
	c.enc.Close()
	return c.SnapshotSink.Cancel()
}
