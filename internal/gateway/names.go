package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxToolName is the longest tool name the strictest model APIs accept.
const maxToolName = 64

// sanitizeName maps s onto [A-Za-z0-9_-], replacing anything else with '_'.
func sanitizeName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// exposedName is the preferred name of upstream tool (or prompt) name under
// prefix: "<prefix>_<name>" sanitized, or the sanitized name alone for an
// empty prefix.
func exposedName(prefix, name string) string {
	if prefix == "" {
		return sanitizeName(name)
	}
	return sanitizeName(prefix) + "_" + sanitizeName(name)
}

// hashedName is the collision-free fallback for identity upstream/name: the
// preferred name cut short, plus 8 hex digits of its identity's SHA-256.
func hashedName(preferred, upstream, name string) string {
	sum := sha256.Sum256([]byte(upstream + "/" + name))
	suffix := "_" + hex.EncodeToString(sum[:4])
	if len(preferred) > maxToolName-len(suffix) {
		preferred = preferred[:maxToolName-len(suffix)]
	}
	return preferred + suffix
}

// nameAssigner hands out exposed names deterministically: callers must offer
// identities in a fixed order (the catalog sorts by upstream, then name).
// The first identity to want a clean name gets it; later ones and names
// over the length limit get the hashed form.
type nameAssigner struct{ used map[string]bool }

func (a *nameAssigner) assign(prefix, upstream, name string) string {
	if a.used == nil {
		a.used = map[string]bool{}
	}
	n := exposedName(prefix, name)
	if n == "" || len(n) > maxToolName || a.used[n] || n != exposedName(prefix, name) {
		n = hashedName(n, upstream, name)
	}
	if a.used[n] { // a clean name that looks like a hashed one; extremely unlikely
		n = hashedName(n[:len(n)-9], upstream, name+"\x00")
	}
	a.used[n] = true
	return n
}
