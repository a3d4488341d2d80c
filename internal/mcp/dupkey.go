package mcp

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// DuplicateKey reports the path of the first object member name that occurs
// twice in the same JSON object of doc ("filter.owner", "items[2].id"), or
// ok=false when there is none (or doc is not valid JSON: the caller's own
// decoding reports that).
//
// The gateway decides on decoded arguments but forwards the agent's bytes;
// parsers disagree about which duplicate wins (Go keeps the last, others the
// first), so a duplicate could show the policy one value and the upstream
// another. Arguments with duplicates are refused instead.
//
// It runs on every tool call, so it scans the bytes itself and allocates
// nothing unless a name is escaped, an object has many members, or a
// duplicate is found. Names compare as decoded ("a" and "\u0061" are the
// same name; so are two invalid UTF-8 names the decoder reads alike).
func DuplicateKey(doc []byte) (path string, ok bool) {
	if bytes.IndexByte(doc, '{') < 0 || !json.Valid(doc) {
		return "", false
	}
	s := dupScanner{doc: doc}
	if !s.value(0) {
		return "", false
	}
	// The path is built on the way out, innermost segment first.
	var b []byte
	for i := len(s.path) - 1; i >= 0; i-- {
		seg := s.path[i]
		if seg.key != "" || seg.index < 0 {
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, seg.key...)
		} else {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(seg.index), 10)
			b = append(b, ']')
		}
	}
	return string(b), true
}

const maxDupDepth = 256

type pathSeg struct {
	key   string // a member name; "" with index >= 0 for an array element
	index int
}

// dupScanner walks valid JSON; path is filled (innermost first) when a
// duplicate is found.
type dupScanner struct {
	doc  []byte
	i    int
	path []pathSeg
}

func (s *dupScanner) ws() {
	for s.i < len(s.doc) {
		switch s.doc[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value; true means a duplicate was found inside it.
func (s *dupScanner) value(depth int) bool {
	if depth > maxDupDepth {
		s.i = len(s.doc)
		return false
	}
	s.ws()
	if s.i >= len(s.doc) {
		return false
	}
	switch s.doc[s.i] {
	case '{':
		return s.object(depth)
	case '[':
		s.i++
		for n := 0; ; n++ {
			s.ws()
			if s.i < len(s.doc) && s.doc[s.i] == ']' {
				s.i++
				return false
			}
			if s.value(depth + 1) {
				s.path = append(s.path, pathSeg{index: n})
				return true
			}
			s.ws()
			if s.i < len(s.doc) && s.doc[s.i] == ',' {
				s.i++
			}
		}
	case '"':
		s.str()
	default: // number, true, false, null
		for s.i < len(s.doc) {
			switch s.doc[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return false
			}
			s.i++
		}
	}
	return false
}

// str skips a string and returns its raw contents (between the quotes).
func (s *dupScanner) str() []byte {
	s.i++ // the opening quote
	start := s.i
	for s.i < len(s.doc) {
		switch s.doc[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			raw := s.doc[start:s.i]
			s.i++
			return raw
		}
		s.i++
	}
	return s.doc[start:]
}

// plain reports whether a raw member name is its own decoded form: no
// escapes, and ASCII only (the decoder replaces invalid UTF-8, so two
// different raw names may decode alike).
func plain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// name decodes a raw member name (allocating for what is not plain).
func name(raw []byte) string {
	if plain(raw) {
		return string(raw)
	}
	var v string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &v); err != nil {
		return string(raw)
	}
	return v
}

func (s *dupScanner) object(depth int) bool {
	s.i++                // '{'
	var small [16][]byte // raw names of this object, while no name is escaped
	seen := small[:0]
	var big map[string]struct{}
	for {
		s.ws()
		if s.i >= len(s.doc) || s.doc[s.i] == '}' {
			s.i++
			return false
		}
		raw := s.str()
		if !plain(raw) && big == nil {
			big = make(map[string]struct{}, len(seen)+4)
			for _, r := range seen {
				big[name(r)] = struct{}{}
			}
		}
		dup := false
		if big != nil {
			k := name(raw)
			_, dup = big[k]
			big[k] = struct{}{}
		} else {
			for _, r := range seen {
				if bytes.Equal(r, raw) {
					dup = true
					break
				}
			}
			if len(seen) == cap(small) {
				big = make(map[string]struct{}, 2*len(seen))
				for _, r := range seen {
					big[string(r)] = struct{}{}
				}
				big[string(raw)] = struct{}{}
			} else {
				seen = append(seen, raw)
			}
		}
		if dup {
			s.path = append(s.path, pathSeg{key: name(raw), index: -1})
			return true
		}
		s.ws()
		s.i++ // ':'
		if s.value(depth + 1) {
			s.path = append(s.path, pathSeg{key: name(raw), index: -1})
			return true
		}
		s.ws()
		if s.i < len(s.doc) && s.doc[s.i] == ',' {
			s.i++
		}
	}
}
