package policy

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Set is the compiled policy of one state snapshot.
type Set struct {
	Index uint64
	roles map[string]*Role
}

// Role is one Persona's compiled, default-deny permissions.
type Role struct {
	Persona   string
	upstreams map[string]*upstreamRole
	names     []string // sorted keys of upstreams
	resources []resourceGrant
}

type upstreamRole struct {
	tools        map[string][]*grant // exact tool name → grants
	toolPatterns []patternGrant
	prompts      map[string]struct{}
	promptPats   []string
}

type patternGrant struct {
	pattern string
	grant   *grant
}

type grant struct {
	skill string
	tool  string // as written in the skill: "<upstream>/<tool-or-pattern>"
	args  []argRule
}

type argRule struct {
	name string
	c    *constraint
}

type resourceGrant struct {
	upstream string // "" = any upstream
	pattern  string
}

type constraint struct {
	required  bool
	in        []any
	notIn     []any
	hasEquals bool
	equals    any
	prefix    *string
	re        *regexp.Regexp
	min, max  float64 // NaN when unset
	maxLength int     // -1 when unset
	fields    []argRule
	items     *constraint
}

// Compile builds the policy for every persona in s. Invalid pieces (which
// validation in package state prevents) are skipped, never widened.
func Compile(s *state.Snapshot) *Set {
	set := &Set{Index: s.Index, roles: make(map[string]*Role, len(s.Personas))}
	for name, p := range s.Personas {
		r := &Role{Persona: name, upstreams: map[string]*upstreamRole{}}
		for _, skName := range p.Skills {
			sk := s.Skills[skName]
			if sk == nil {
				continue
			}
			for _, tg := range sk.Tools {
				up, tool, ok := strings.Cut(tg.Tool, "/")
				if !ok || tool == "" {
					continue
				}
				g := &grant{skill: sk.Name, tool: tg.Tool, args: compileArgs(tg.Args, 0)}
				ur := r.upstream(up)
				if strings.Contains(tool, "*") {
					ur.toolPatterns = append(ur.toolPatterns, patternGrant{pattern: tool, grant: g})
				} else {
					ur.tools[tool] = append(ur.tools[tool], g)
				}
			}
			for _, pg := range sk.Prompts {
				up, name, ok := strings.Cut(pg.Prompt, "/")
				if !ok || name == "" {
					continue
				}
				ur := r.upstream(up)
				if strings.Contains(name, "*") {
					ur.promptPats = append(ur.promptPats, name)
				} else {
					ur.prompts[name] = struct{}{}
				}
			}
			for _, rg := range sk.Resources {
				if rg.URI == "" {
					continue
				}
				r.resources = append(r.resources, resourceGrant{upstream: rg.Upstream, pattern: rg.URI})
				if rg.Upstream != "" {
					r.upstream(rg.Upstream)
				}
			}
		}
		for up := range r.upstreams {
			r.names = append(r.names, up)
		}
		slices.Sort(r.names)
		set.roles[name] = r
	}
	return set
}

func (r *Role) upstream(name string) *upstreamRole {
	ur := r.upstreams[name]
	if ur == nil {
		ur = &upstreamRole{tools: map[string][]*grant{}, prompts: map[string]struct{}{}}
		r.upstreams[name] = ur
	}
	return ur
}

func compileArgs(args map[string]*state.Constraint, depth int) []argRule {
	out := make([]argRule, 0, len(args))
	for name, c := range args {
		out = append(out, argRule{name: name, c: compileConstraint(c, depth)})
	}
	slices.SortFunc(out, func(a, b argRule) int { return strings.Compare(a.name, b.name) })
	return out
}

func compileConstraint(c *state.Constraint, depth int) *constraint {
	out := &constraint{required: true, min: math.NaN(), max: math.NaN(), maxLength: -1}
	if c == nil {
		return out
	}
	out.required = !c.Optional
	out.in = normalizeAll(c.In)
	out.notIn = normalizeAll(c.NotIn)
	if c.Equals != nil {
		out.hasEquals, out.equals = true, normalize(c.Equals)
	}
	out.prefix = c.Prefix
	if c.Regex != nil {
		re, err := regexp.Compile(`^(?:` + *c.Regex + `)$`)
		if err != nil {
			// Unreachable after validation; an uncompilable rule must deny.
			re = regexp.MustCompile(`[^\s\S]`)
		}
		out.re = re
	}
	if c.Min != nil {
		out.min = *c.Min
	}
	if c.Max != nil {
		out.max = *c.Max
	}
	if c.MaxLength != nil {
		out.maxLength = *c.MaxLength
	}
	if depth < 32 {
		out.fields = compileArgs(c.Fields, depth+1)
		if c.Items != nil {
			out.items = compileConstraint(c.Items, depth+1)
		}
	}
	return out
}

func normalizeAll(vs []any) []any {
	if vs == nil {
		return nil
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = normalize(v)
	}
	return out
}

// normalize maps every number to float64 so that YAML ints and JSON numbers
// compare equal.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	}
	return v
}

// Role returns the compiled role of a persona, or nil if there is no such
// persona.
func (s *Set) Role(persona string) *Role {
	if s == nil {
		return nil
	}
	return s.roles[persona]
}

// Upstreams lists, sorted, the upstreams any grant of the role refers to.
// Resource grants without an upstream do not add upstreams of their own.
func (r *Role) Upstreams() []string { return r.names }

// ToolVisible reports whether the role grants the tool at all (for some
// arguments). tools/list shows exactly the visible tools.
func (r *Role) ToolVisible(upstream, tool string) bool {
	ur := r.upstreams[upstream]
	if ur == nil {
		return false
	}
	if len(ur.tools[tool]) > 0 {
		return true
	}
	for i := range ur.toolPatterns {
		if Match(ur.toolPatterns[i].pattern, tool) {
			return true
		}
	}
	return false
}

// ToolExact reports whether a grant of the role names the tool exactly
// (not through a "*" pattern).
func (r *Role) ToolExact(upstream, tool string) bool {
	ur := r.upstreams[upstream]
	return ur != nil && len(ur.tools[tool]) > 0
}

// Decision is the outcome of a tool-call check.
type Decision struct {
	Allow bool
	// Skill is the skill whose grant allowed the call.
	Skill string
	// Pattern is the "*" pattern of that grant, "" when it names the tool
	// exactly (high-risk tools need an exact grant: internal/guard).
	Pattern string
	// Violation explains a denial. It is nil when Allow is true.
	Violation *Violation
}

// Violation explains why a call was refused. Its text is safe to show to
// the agent: it names the persona, tool, argument path and rule, never a
// value from the state other than those.
type Violation struct {
	Persona string
	Tool    string // "<upstream>/<tool>"
	// Path is the argument that broke a rule ("project", "filter.owner",
	// "ids[3]"); empty when the tool itself is not granted.
	Path   string
	Reason string
	Skill  string // the grant whose rule was checked last
}

func (v *Violation) Error() string {
	if v.Path == "" {
		return fmt.Sprintf("tool %s is not allowed for persona %s: %s", v.Tool, v.Persona, v.Reason)
	}
	if v.Skill == "" { // a rule of every grant, not of one skill
		return fmt.Sprintf("tool %s refused for persona %s: argument %s %s", v.Tool, v.Persona, v.Path, v.Reason)
	}
	return fmt.Sprintf("tool %s refused for persona %s: argument %s %s (rule from skill %s)", v.Tool, v.Persona, v.Path, v.Reason, v.Skill)
}

// Allow decides a tools/call. args is the decoded "arguments" object (nil
// when absent). The allow path does not allocate.
func (r *Role) Allow(upstream, tool string, args map[string]any) Decision {
	ur := r.upstreams[upstream]
	if ur == nil {
		return r.deny(upstream, tool, "", "it is not in the persona's role", "")
	}
	if len(args) > 0 {
		if p, name, bad := badMemberName(map[string]any(args), 0); bad {
			if p != "" {
				p += "."
			}
			return r.deny(upstream, tool, p+strconv.Quote(name),
				"has a control character in its name; member names must be printable", "")
		}
	}
	var first *grant
	var firstPath, firstReason string
	try := func(g *grant) bool {
		path, reason, ok := g.check(args)
		if ok {
			return true
		}
		if first == nil {
			first, firstPath, firstReason = g, path, reason
		}
		return false
	}
	for _, g := range ur.tools[tool] {
		if try(g) {
			return Decision{Allow: true, Skill: g.skill}
		}
	}
	for i := range ur.toolPatterns {
		pg := &ur.toolPatterns[i]
		if Match(pg.pattern, tool) && try(pg.grant) {
			return Decision{Allow: true, Skill: pg.grant.skill, Pattern: pg.grant.tool}
		}
	}
	if first == nil {
		return r.deny(upstream, tool, "", "it is not in the persona's role", "")
	}
	return r.deny(upstream, tool, firstPath, firstReason, first.skill)
}

func (r *Role) deny(upstream, tool, path, reason, skill string) Decision {
	return Decision{Violation: &Violation{Persona: r.Persona, Tool: upstream + "/" + tool, Path: path, Reason: reason, Skill: skill}}
}

func (g *grant) check(args map[string]any) (path, reason string, ok bool) {
	return checkRules(g.args, args)
}

// checkRules checks named values (tool arguments or an object's fields)
// against rules. A member whose name case-folds (Unicode simple folding,
// so "STATUS", "Status" and "ſtatus" all fold to "status") to a constrained
// name without being that exact name is refused, whether or not the exact
// name is present too: servers that match names case-insensitively (Go's
// encoding/json, many .NET and Java binders) could take that spelling,
// which no rule checked.
func checkRules(rules []argRule, m map[string]any) (path, reason string, ok bool) {
	for i := range rules {
		a := &rules[i]
		for k := range m {
			if k != a.name && strings.EqualFold(k, a.name) {
				return a.name, fmt.Sprintf("is also given as %q; send it once, spelled %q", k, a.name), false
			}
		}
		v, present := m[a.name]
		if p, why, ok := a.c.check(v, present); !ok {
			return joinArgPath(a.name, p), why, false
		}
	}
	return "", "", true
}

// maxNameDepth bounds how deep badMemberName looks; the gateway's JSON
// decoder bounds nesting well below it.
const maxNameDepth = 64

// badMemberName returns the path of the first member name, at any depth of
// v, that holds a NUL or another control character (C0, DEL, C1), and the
// name itself. Servers disagree on such names (C strings end at NUL, some
// decoders strip or reject them), so no rule can be sure what it checked.
// It does not allocate unless it finds one.
func badMemberName(v any, depth int) (path string, name string, found bool) {
	if depth > maxNameDepth {
		return "", "", false
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if hasControl(k) {
				return "", k, true
			}
			if p, n, ok := badMemberName(e, depth+1); ok {
				return joinArgPath(k, p), n, true
			}
		}
	case []any:
		for i, e := range x {
			if p, n, ok := badMemberName(e, depth+1); ok {
				return joinArgPath(fmt.Sprintf("[%d]", i), p), n, true
			}
		}
	}
	return "", "", false
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		if c >= 0x80 {
			for _, r := range s[i:] {
				if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
					return true
				}
			}
			return false
		}
	}
	return false
}

func joinArgPath(name, sub string) string {
	if sub == "" {
		return name
	}
	if sub[0] == '[' {
		return name + sub
	}
	return name + "." + sub
}

// check returns the sub-path and reason of the first failure.
func (c *constraint) check(v any, present bool) (string, string, bool) {
	if !present {
		if c.required {
			return "", "is required", false
		}
		return "", "", true
	}
	v = normalize(v)
	if c.in != nil && !containsValue(c.in, v) {
		return "", "is not one of the allowed values " + formatValues(c.in), false
	}
	if c.notIn != nil {
		// A list or object is none of the forbidden scalars, yet a server
		// may take its element or accept either shape: refuse it, as in
		// and equals do.
		switch v.(type) {
		case []any, map[string]any:
			return "", "must be a single value (string, number, boolean or null), not a list or object", false
		}
		if containsValue(c.notIn, v) {
			return "", "is one of the forbidden values " + formatValues(c.notIn), false
		}
	}
	if c.hasEquals && !equalValue(c.equals, v) {
		return "", fmt.Sprintf("must equal %s", formatValue(c.equals)), false
	}
	if c.prefix != nil || c.re != nil {
		s, ok := v.(string)
		if !ok {
			return "", "must be a string", false
		}
		if c.prefix != nil && !strings.HasPrefix(s, *c.prefix) {
			return "", fmt.Sprintf("must start with %q", *c.prefix), false
		}
		if c.re != nil && !c.re.MatchString(s) {
			return "", fmt.Sprintf("must match %s", c.re.String()), false
		}
	}
	if !math.IsNaN(c.min) || !math.IsNaN(c.max) {
		f, ok := v.(float64)
		if !ok {
			return "", "must be a number", false
		}
		if !math.IsNaN(c.min) && f < c.min {
			return "", fmt.Sprintf("must be at least %v", c.min), false
		}
		if !math.IsNaN(c.max) && f > c.max {
			return "", fmt.Sprintf("must be at most %v", c.max), false
		}
	}
	if c.maxLength >= 0 {
		switch x := v.(type) {
		case string:
			if utf8.RuneCountInString(x) > c.maxLength {
				return "", fmt.Sprintf("is longer than %d characters", c.maxLength), false
			}
		case []any:
			if len(x) > c.maxLength {
				return "", fmt.Sprintf("has more than %d elements", c.maxLength), false
			}
		default:
			return "", "must be a string or a list", false
		}
	}
	if len(c.fields) > 0 {
		m, ok := v.(map[string]any)
		if !ok {
			return "", "must be an object", false
		}
		if p, why, ok := checkRules(c.fields, m); !ok {
			return p, why, false
		}
	}
	if c.items != nil {
		l, ok := v.([]any)
		if !ok {
			return "", "must be a list", false
		}
		for i, e := range l {
			if p, why, ok := c.items.check(e, true); !ok {
				return joinArgPath(fmt.Sprintf("[%d]", i), p), why, false
			}
		}
	}
	return "", "", true
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if equalValue(x, v) {
			return true
		}
	}
	return false
}

// equalValue compares scalars; lists and objects never equal a scalar rule.
func equalValue(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false
}

func formatValues(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = formatValue(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func formatValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

// Resource reports whether the role may see or read a resource URI offered
// by an upstream. A URI with a dot segment ("..", ".", also
// percent-encoded) matches only a grant that names it exactly: a server
// that resolves it could otherwise leave the granted tree
// ("file:///srv/docs/*" must not reach "file:///srv/docs/../../etc/passwd").
//
// A URI with escapes is judged in every form that percent-decoding it up to
// maxDecodes times yields, since a server or a proxy in front of it may
// decode more than once ("%252e%252e" is ".." after two, "%2%65" after
// two); one that would still change after that matches only an exact grant.
func (r *Role) Resource(upstream, uri string) bool {
	dots := hasDotSegment(uri) || (strings.IndexByte(uri, '%') >= 0 && hidesDotSegment(uri))
	for i := range r.resources {
		g := &r.resources[i]
		if (g.upstream == "" || g.upstream == upstream) && (g.pattern == uri || !dots && Match(g.pattern, uri)) {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether a URI holds a "." or ".." segment anywhere
// (path, query or fragment). Separators are '/' and '\', also
// percent-encoded, and a dot may be written "%2e". It does not allocate.
func hasDotSegment(uri string) bool {
	start := 0
	for i := 0; i <= len(uri); {
		sep := 0
		switch {
		case i == len(uri):
		case uri[i] == '/' || uri[i] == '\\':
			sep = 1
		case uri[i] == '%' && i+2 < len(uri) && (uri[i+1] == '2' && (uri[i+2] == 'f' || uri[i+2] == 'F') || uri[i+1] == '5' && (uri[i+2] == 'c' || uri[i+2] == 'C')):
			sep = 3
		default:
			i++
			continue
		}
		if isDots(uri[start:i]) {
			return true
		}
		if sep == 0 {
			return false
		}
		i += sep
		start = i
	}
	return false
}

// maxDecodes bounds how many times hidesDotSegment percent-decodes a URI.
const maxDecodes = 4

// hidesDotSegment reports whether decoding uri again and again (at most
// maxDecodes times) shows a dot segment, or leaves something to decode.
// Decoding is lenient, as many servers are: a malformed escape stays as it
// is and the valid ones around it are decoded.
func hidesDotSegment(uri string) bool {
	for range maxDecodes {
		dec := percentDecode(uri)
		if dec == uri {
			return false
		}
		if hasDotSegment(dec) {
			return true
		}
		uri = dec
	}
	return percentDecode(uri) != uri
}

// percentDecode decodes every valid %HH escape of s and keeps the rest.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isDots reports whether seg is "." or "..", each dot possibly written
// "%2e" or "%2E".
func isDots(seg string) bool {
	n := 0
	for len(seg) > 0 {
		switch {
		case seg[0] == '.':
			seg = seg[1:]
		case len(seg) >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E'):
			seg = seg[3:]
		default:
			return false
		}
		n++
	}
	return n == 1 || n == 2
}

// HasResources reports whether the role grants any resource at all.
func (r *Role) HasResources() bool { return len(r.resources) > 0 }

// Prompt reports whether the role may list and get a prompt of an upstream.
func (r *Role) Prompt(upstream, name string) bool {
	ur := r.upstreams[upstream]
	if ur == nil {
		return false
	}
	if _, ok := ur.prompts[name]; ok {
		return true
	}
	for _, p := range ur.promptPats {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// Match reports whether s matches pattern, where '*' matches any run of
// characters (including none) and every other byte matches itself. It runs
// in O(len(pattern)·len(s)) at worst and does not allocate.
func Match(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
