package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
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
	return a.assignAs(exposedName(prefix, name), false, upstream, name)
}

// assignAs hands out n, or its hashed form when n is unusable, taken, or
// forced (it belongs to another namespace).
func (a *nameAssigner) assignAs(n string, force bool, upstream, name string) string {
	if a.used == nil {
		a.used = map[string]bool{}
	}
	if force || n == "" || len(n) > maxToolName || a.used[n] {
		n = hashedName(n, upstream, name)
	}
	if a.used[n] { // a clean name that looks like a hashed one; extremely unlikely
		n = hashedName(n[:len(n)-9], upstream, name+"\x00")
	}
	a.used[n] = true
	return n
}

// exposedNames names every item of kind k that the upstreams ups offer,
// as a function of each upstream's own list (and the set of prefixes),
// never of a persona's role, so a grant change can never rebind a name to
// another tool:
//
//   - Within one upstream's list, an item whose name needs no sanitizing
//     ("get_ticket") is named before the ones that do ("get ticket"), so
//     the exact match always keeps the clean name; then the item name
//     decides. Collisions and over-long names get the hashed form.
//   - A clean name that falls into a longer prefix's namespace (prefix "a"
//     with tool "b_c" while an upstream with prefix "a_b" exists; an empty
//     prefix with a tool "helpdesk_x") gets the hashed form, so no upstream
//     can take another's names.
//
// Upstreams given the same prefix (toolPrefix: "" on several) may offer
// the same name; Gateway.build gives a persona that sees both the hashed
// form for all but the first upstream in name order.
func (g *Gateway) exposedNames(v *View, k listKind, ups []string) map[*upstream]map[string]string {
	prefixes := map[string]bool{} // sanitized prefixes of every upstream
	for _, spec := range v.Upstreams {
		prefixes[sanitizeName(spec.prefix())] = true
	}
	out := map[*upstream]map[string]string{}
	for _, up := range ups {
		u := g.upstream(up, v)
		if u == nil {
			continue
		}
		l := u.lists[k].Load()
		if l == nil {
			continue
		}
		keys := make([]string, 0, len(l.items))
		for _, it := range l.items {
			keys = append(keys, it.key)
		}
		slices.Sort(keys)
		keys = slices.Compact(keys) // an upstream listing a name twice keeps the first
		exact := slices.DeleteFunc(slices.Clone(keys), func(key string) bool { return sanitizeName(key) != key })
		other := slices.DeleteFunc(keys, func(key string) bool { return sanitizeName(key) == key })
		ns := sanitizeName(u.spec.prefix())
		m := make(map[string]string, len(exact)+len(other))
		var a nameAssigner
		for _, key := range append(exact, other...) {
			n := exposedName(u.spec.prefix(), key)
			m[key] = a.assignAs(n, inLongerNamespace(n, ns, prefixes), u.spec.Name, key)
		}
		out[u] = m
	}
	return out
}

// inLongerNamespace reports whether name, from namespace ns, starts with
// the prefix of a longer namespace ("<q>_").
func inLongerNamespace(name, ns string, prefixes map[string]bool) bool {
	for q := range prefixes {
		if len(q) > len(ns) && len(name) > len(q) && name[len(q)] == '_' && name[:len(q)] == q {
			return true
		}
	}
	return false
}
