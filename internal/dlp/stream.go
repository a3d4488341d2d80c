package dlp

import "errors"

// Stream scans a body that arrives in chunks (SSE events, chunked
// transfer) with bounded memory and without missing values split across
// chunk boundaries. Findings are reported with offsets in the whole stream.
// A Stream is not safe for concurrent use.
type Stream struct {
	s      *Scanner
	emit   func(Finding)
	buf    []byte
	base   int64 // stream offset of buf[0]
	done   int64 // end of the last reported finding
	window int
	keep   int
	closed bool
}

const (
	streamWindow  = 64 << 10 // scan when this much is buffered
	streamOverlap = 17 << 10 // rescanned with the next window (> longest match)
	streamContext = 64       // extra bytes kept before the cut for context
)

// ErrStreamClosed is returned by Write after Close.
var ErrStreamClosed = errors.New("dlp: stream closed")

// NewStream returns a Stream that calls emit for every finding, in order.
// Memory stays below about 2×64 KiB however long the stream is.
func (s *Scanner) NewStream(emit func(Finding)) *Stream {
	return &Stream{s: s, emit: emit, window: streamWindow, keep: streamOverlap}
}

// Write buffers p and scans whenever a window is full.
func (st *Stream) Write(p []byte) (int, error) {
	if st.closed {
		return 0, ErrStreamClosed
	}
	n := len(p)
	for len(p) > 0 {
		room := st.window + st.keep + streamContext - len(st.buf)
		if room <= 0 {
			st.flush(false)
			continue
		}
		k := min(room, len(p))
		st.buf = append(st.buf, p[:k]...)
		p = p[k:]
		if len(st.buf) >= st.window+st.keep {
			st.flush(false)
		}
	}
	return n, nil
}

// Close scans what is left and reports the remaining findings.
func (st *Stream) Close() error {
	if st.closed {
		return nil
	}
	st.closed = true
	st.flush(true)
	st.buf = nil
	return nil
}

// flush scans the buffer, reports the findings that can no longer change,
// and keeps the tail that may still be part of a value.
func (st *Stream) flush(final bool) {
	fs := st.s.scan(st.buf, nil, nil)
	cut := len(st.buf)
	if !final {
		cut = safeCut(st.buf, len(st.buf)-st.keep)
	}
	carry := cut
	for _, f := range fs {
		abs := f
		abs.Start += int(st.base)
		abs.End += int(st.base)
		if int64(abs.Start) < st.done {
			continue // reported already (or overlaps a reported one)
		}
		if f.End > cut {
			// not final yet; rescan it with the next window
			carry = min(carry, f.Start)
			continue
		}
		st.emit(abs)
		st.done = int64(abs.End)
	}
	if final {
		st.base += int64(len(st.buf))
		st.buf = st.buf[:0]
		return
	}
	carry = safeCut(st.buf, max(0, carry-streamContext))
	if carry == 0 {
		carry = cut // always make progress
	}
	n := copy(st.buf, st.buf[carry:])
	st.buf = st.buf[:n]
	st.base += int64(carry)
}

// safeCut moves k back (at most 256 bytes) to just after a byte that cannot
// be inside a value, so a rescan never starts in the middle of a word.
func safeCut(b []byte, k int) int {
	if k <= 0 {
		return 0
	}
	for j := k; j > 0 && k-j < 256; j-- {
		switch b[j-1] {
		case ' ', '\n', '\r', '\t', '"', ',', '{', '}', '[', ']', '<', '>':
			return j
		}
	}
	return k
}
