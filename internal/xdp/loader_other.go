//go:build !linux

package xdp

import (
	"errors"
	"log/slog"
)

// ErrUnsupported is returned where XDP does not exist.
var ErrUnsupported = errors.New("xdp: only supported on Linux")

// Loader is unavailable on this system; NewLoader always fails and Datapath
// falls back to userspace enforcement.
type Loader struct{}

// NewLoader fails: XDP needs Linux.
func NewLoader(*slog.Logger) (*Loader, error) { return nil, ErrUnsupported }

// Attach fails: XDP needs Linux.
func (*Loader) Attach([]string, AttachMode) ([]Attachment, error) { return nil, ErrUnsupported }

// Detach does nothing.
func (*Loader) Detach() error { return nil }

// Attachments reports nothing.
func (*Loader) Attachments() []Attachment { return nil }

// Update fails: XDP needs Linux.
func (*Loader) Update(*Policy) error { return ErrUnsupported }

// Stats fails: XDP needs Linux.
func (*Loader) Stats() (Counters, error) { return Counters{}, ErrUnsupported }

// Close does nothing.
func (*Loader) Close() error { return nil }
