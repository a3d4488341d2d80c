package behavior

import (
	"fmt"
	"hash/maphash"
	"time"
)

// RunawayConfig sets the default protections, which apply with no rule
// configured: over an agent's last Calls calls (a burst: all within Span),
// any of these signals quarantines the agent.
//
//   - error-retry storm: at least FailRatio of them failed;
//   - repeated near-identical calls: at least Repeats failing calls to one
//     tool with the same shape of arguments (values with digits and hex
//     runs collapsed);
//   - fabricated arguments: at least Unseen failing calls carried paths,
//     ids or hashes that no earlier result of the session contained.
//
// A failure is what the agent caused: an upstream's JSON-RPC error, an
// isError result, a refusal by policy or by request DLP. An unreachable or
// slow upstream (timeout, unavailable) is not the agent's doing and does
// not count; a guard refusal (rate limit) neither.
type RunawayConfig struct {
	Disabled  bool
	Calls     int           // default 256 (at most ringSize)
	Span      time.Duration // default 5m
	FailRatio float64       // default 0.9
	Repeats   int           // default 128
	Unseen    int           // default 128
}

const ringSize = 256

func (c *RunawayConfig) setDefaults() {
	if c.Calls <= 0 || c.Calls > ringSize {
		c.Calls = ringSize
	}
	if c.Span <= 0 {
		c.Span = 5 * time.Minute
	}
	if c.FailRatio <= 0 || c.FailRatio > 1 {
		c.FailRatio = 0.9
	}
	if c.Repeats <= 0 {
		c.Repeats = c.Calls / 2
	}
	if c.Unseen <= 0 {
		c.Unseen = c.Calls / 2
	}
}

// entry is one observed call: when (ms since the engine started, wrapping
// after 49 days: spans are taken modulo 2^32), and the hash of its tool
// and argument shape with the failed and unseen flags in its low bits.
// 8 bytes.
type entry struct {
	ms   uint32
	meta uint32
}

func newEntry(ms int64, shape uint32, fail, novel bool) entry {
	m := shape &^ 3
	if fail {
		m |= 1
	}
	if novel {
		m |= 2
	}
	return entry{ms: uint32(ms), meta: m}
}

func (e entry) fail() bool    { return e.meta&1 != 0 }
func (e entry) novel() bool   { return e.meta&2 != 0 }
func (e entry) shape() uint32 { return e.meta &^ 3 }

// runaway is an agent's recent history for the default protections.
type runaway struct {
	ring   [ringSize]entry
	pos    int // next slot
	n      int // calls observed in total
	fails  int // failing entries in the ring (of the last Calls)
	novels int // failing entries with unseen arguments
	shapes map[uint32]uint16
	seen   tokenSet
	fired  bool
}

// signal is a fired default protection, in words.
type signal struct {
	name, text string
}

// add records one call; it returns the signal it fired, if any.
func (r *runaway) add(cfg *RunawayConfig, e entry) *signal {
	if r.shapes == nil {
		r.shapes = make(map[uint32]uint16, 8)
	}
	if r.n >= cfg.Calls {
		old := r.ring[(r.pos-cfg.Calls+ringSize)%ringSize]
		if old.fail() {
			r.fails--
			if old.novel() {
				r.novels--
			}
			if c := r.shapes[old.shape()]; c <= 1 {
				delete(r.shapes, old.shape())
			} else {
				r.shapes[old.shape()] = c - 1
			}
		}
	}
	r.ring[r.pos] = e
	r.pos = (r.pos + 1) % ringSize
	r.n++
	if e.fail() {
		r.fails++
		if e.novel() {
			r.novels++
		}
		r.shapes[e.shape()]++
	}
	if r.fired || r.n < cfg.Calls {
		return nil
	}
	first := r.ring[(r.pos-cfg.Calls+ringSize)%ringSize]
	span := time.Duration(e.ms-first.ms) * time.Millisecond // modulo 2^32
	if span > cfg.Span {
		return nil
	}
	switch {
	case float64(r.fails) >= cfg.FailRatio*float64(cfg.Calls):
		r.fired = true
		return &signal{"error-retry storm", fmt.Sprintf("%d of the agent's last %d calls failed within %s (expected under %.0f%%)", r.fails, cfg.Calls, span.Round(time.Millisecond), cfg.FailRatio*100)}
	case e.fail() && r.shapes[e.shape()] >= uint16(cfg.Repeats):
		r.fired = true
		return &signal{"repeated near-identical calls", fmt.Sprintf("%d of the agent's last %d calls were failing calls to one tool with the same arguments but for numbers and hashes, within %s (expected under %d)", r.shapes[e.shape()], cfg.Calls, span.Round(time.Millisecond), cfg.Repeats)}
	case r.novels >= cfg.Unseen:
		r.fired = true
		return &signal{"fabricated arguments", fmt.Sprintf("%d of the agent's last %d calls failed with paths, ids or hashes that no earlier result of its session contained, within %s (expected under %d)", r.novels, cfg.Calls, span.Round(time.Millisecond), cfg.Unseen)}
	}
	return nil
}

// tokenSet holds fingerprints of the id-like tokens (paths, ids, hashes)
// an agent's results contained: open addressing over a fixed table,
// cleared when 3/4 full (a forgotten token only makes a later argument
// look unseen, which alone never fires). 4 KiB, allocated on first use.
type tokenSet struct {
	t []uint64
	n int
}

const tokenSlots = 512

var tokenSeed = maphash.MakeSeed()

func (s *tokenSet) add(h uint64) {
	if h == 0 {
		h = 1
	}
	if s.t == nil {
		s.t = make([]uint64, tokenSlots)
	}
	if s.n >= tokenSlots*3/4 {
		clear(s.t)
		s.n = 0
	}
	for i := h % tokenSlots; ; i = (i + 1) % tokenSlots {
		switch s.t[i] {
		case h:
			return
		case 0:
			s.t[i] = h
			s.n++
			return
		}
	}
}

func (s *tokenSet) has(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if s.t == nil {
		return false
	}
	for i := h % tokenSlots; ; i = (i + 1) % tokenSlots {
		switch s.t[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// maxScan bounds how much of one result or argument is tokenized.
const maxScan = 64 << 10

// tokens calls f with the fingerprint of every id-like token of b: a run
// of letters, digits and . _ - / : of at least 6 bytes that holds a digit
// or a '/' (paths, ids, hashes; plain words are not).
func tokens[T string | []byte](b T, f func(uint64)) {
	if len(b) > maxScan {
		b = b[:maxScan]
	}
	start, idLike := -1, false
	for i := 0; i <= len(b); i++ {
		c := byte(' ')
		if i < len(b) {
			c = b[i]
		}
		isTok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/' || c == ':'
		if isTok {
			if start < 0 {
				start, idLike = i, false
			}
			if c >= '0' && c <= '9' || c == '/' {
				idLike = true
			}
			continue
		}
		if start >= 0 && idLike && i-start >= 6 {
			switch t := any(b[start:i]).(type) {
			case string:
				f(maphash.String(tokenSeed, t))
			case []byte:
				f(maphash.Bytes(tokenSeed, t))
			}
		}
		start = -1
	}
}

// shapeOf hashes a tool and the shape of its arguments: names, and values
// with runs of digits and hex collapsed, so that get_file(a1.txt) and
// get_file(a2.txt) are near-identical.
func shapeOf(upstream, tool string, args map[string]any) uint32 {
	var h maphash.Hash
	h.SetSeed(tokenSeed)
	h.WriteString(upstream)
	h.WriteByte('/')
	h.WriteString(tool)
	shapeValue(&h, args, 0)
	return uint32(h.Sum64())
}

func shapeValue(h *maphash.Hash, v any, depth int) {
	if depth > 8 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		// Map order is random; combine member hashes order-independently.
		var sum uint64
		for k, e := range x {
			var m maphash.Hash
			m.SetSeed(tokenSeed)
			m.WriteString(k)
			shapeValue(&m, e, depth+1)
			sum += m.Sum64()
		}
		var b [8]byte
		for i := range b {
			b[i] = byte(sum >> (8 * i))
		}
		h.WriteByte('{')
		h.Write(b[:])
	case []any:
		h.WriteByte('[')
		for i, e := range x {
			if i >= 16 {
				break
			}
			shapeValue(h, e, depth+1)
		}
	case string:
		h.WriteByte('"')
		prev := byte(0)
		for i := 0; i < len(x) && i < 256; i++ {
			c := x[i]
			if c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
				c = '#'
				if prev == '#' {
					continue
				}
			}
			h.WriteByte(c)
			prev = c
		}
	case float64, int, int64:
		h.WriteByte('#')
	case bool:
		h.WriteByte('b')
	case nil:
		h.WriteByte('n')
	}
}

// argTokens calls f for the id-like tokens of the string values in v.
func argTokens(v any, depth int, f func(uint64)) {
	if depth > 8 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			argTokens(e, depth+1, f)
		}
	case []any:
		for i, e := range x {
			if i >= 64 {
				return
			}
			argTokens(e, depth+1, f)
		}
	case string:
		tokens(x, f)
	}
}
