package xdp

import "fmt"

// AttachMode selects how the program is attached to an interface.
type AttachMode int

// Attach modes.
const (
	// ModeAuto tries native (driver) mode and falls back to generic mode.
	ModeAuto AttachMode = iota
	// ModeNative requires driver mode.
	ModeNative
	// ModeGeneric uses the kernel's generic (skb) XDP path.
	ModeGeneric
)

func (m AttachMode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// ParseAttachMode parses "auto", "native" or "generic".
func ParseAttachMode(s string) (AttachMode, error) {
	switch s {
	case "", "auto":
		return ModeAuto, nil
	case "native", "driver":
		return ModeNative, nil
	case "generic", "skb":
		return ModeGeneric, nil
	}
	return ModeAuto, fmt.Errorf("xdp attach mode %q: want auto, native or generic", s)
}

// Attachment reports where the program is attached and how.
type Attachment struct {
	Iface string `json:"iface"`
	Mode  string `json:"mode"` // "native" or "generic"
}

// Counters are packet counts per reason, summed over CPUs.
type Counters [numReasons]uint64

// ByName returns the counters keyed by reason name.
func (c Counters) ByName() map[string]uint64 {
	m := make(map[string]uint64, len(c))
	for i, n := range c {
		m[Reason(i).String()] = n
	}
	return m
}
