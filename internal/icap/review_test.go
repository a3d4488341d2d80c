package icap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReviewChunkSizeOverflow: a chunk size near 2^63 after a first chunk
// overflowed the size check (len+n < 0), so a hostile or broken ICAP server
// could make the client read without bound. It must be refused as too
// large before anything is read.
func TestReviewChunkSizeOverflow(t *testing.T) {
	var counted int64
	junk := io.LimitReader(zeroReader{&counted}, 8<<20)
	in := io.MultiReader(strings.NewReader("1\r\na\r\n7fffffffffffffff\r\n"), junk)
	_, err := readChunked(bufio.NewReader(in), 1024)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge chunk after a small one: %v, want ErrTooLarge", err)
	}
	if counted > 64<<10 {
		t.Errorf("read %d bytes of the oversized chunk before refusing it", counted)
	}
	// a body exactly at the limit is fine, one byte over is not
	ok := "400\r\n" + strings.Repeat("x", 1024) + "\r\n0\r\n\r\n"
	if b, err := readChunked(bufio.NewReader(strings.NewReader(ok)), 1024); err != nil || len(b) != 1024 {
		t.Errorf("body at the limit: %d bytes, %v", len(b), err)
	}
	over := "400\r\n" + strings.Repeat("x", 1024) + "\r\n1\r\ny\r\n0\r\n\r\n"
	if _, err := readChunked(bufio.NewReader(bytes.NewReader([]byte(over))), 1024); !errors.Is(err, ErrTooLarge) {
		t.Errorf("body over the limit: %v", err)
	}
}

type zeroReader struct{ n *int64 }

func (z zeroReader) Read(p []byte) (int, error) {
	clear(p)
	*z.n += int64(len(p))
	return len(p), nil
}
