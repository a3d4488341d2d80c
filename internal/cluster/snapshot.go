package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame (RFC 8878 section 3.1.1).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// compressedFSM wraps the caller's FSM so that snapshots are stored
// zstd-compressed. Apply passes through untouched.
type compressedFSM struct {
	inner raft.FSM
}

var (
	_ raft.FSM          = (*compressedFSM)(nil)
	_ raft.FSMSnapshot  = (*compressedSnapshot)(nil)
	_ raft.SnapshotSink = (*compressingSink)(nil)
)

func (f *compressedFSM) Apply(l *raft.Log) any { return f.inner.Apply(l) }

func (f *compressedFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	return &compressedSnapshot{inner: s}, nil
}

// Restore decompresses a zstd snapshot, or passes an uncompressed one
// through unchanged (snapshots written before compression was enabled).
func (f *compressedFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	r, err := decompressSnapshot(rc)
	if err != nil {
		return err
	}
	defer r.Close()
	return f.inner.Restore(r)
}

// decompressSnapshot returns a reader of the plain snapshot bytes in r. The
// returned ReadCloser's Close releases the decoder, not r.
func decompressSnapshot(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("cluster: read snapshot: %w", err)
	}
	if !bytes.Equal(head, zstdMagic) {
		return io.NopCloser(br), nil
	}
	dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot decoder: %w", err)
	}
	return &decoderCloser{Decoder: dec}, nil
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
	inner raft.FSMSnapshot
}

// Persist gives the inner snapshot a sink that compresses into the real one.
func (s *compressedSnapshot) Persist(sink raft.SnapshotSink) error {
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
