package state

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ProtocolVersions are the MCP revisions an Upstream may be pinned to.
var ProtocolVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}

// ValidateName checks an object name: 1–63 lowercase letters, digits, '-'
// and '_', starting and ending with a letter or digit. Names appear in URLs
// (/p/<persona>/mcp) and in tool identities (<upstream>/<tool>).
func ValidateName(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > 63 {
		return fmt.Errorf("%q is longer than 63 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (c == '-' || c == '_') && i > 0 && i < len(s)-1
		if !ok {
			return fmt.Errorf("%q is not a valid name (lowercase letters, digits, '-' and '_', starting and ending with a letter or digit)", s)
		}
	}
	return nil
}

func validToolPrefix(s string) bool {
	if len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

type errList []*FieldError

func (l *errList) add(field, format string, args ...any) {
	*l = append(*l, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// validateObject checks one object on its own (references to other objects
// are checked by checkRefs against the state the change would produce).
func validateObject(o Object) []*FieldError {
	var errs errList
	switch o := o.(type) {
	case *Upstream:
		if o.URL == "" {
			errs.add("spec.url", "required")
		} else if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add("spec.url", "%q is not an http(s) URL with a host", o.URL)
		} else if u.User != nil {
			errs.add("spec.url", "must not carry credentials; reference a secret instead")
		}
		switch o.Transport {
		case "", "streamable-http", "sse":
		default:
			errs.add("spec.transport", "unknown transport %q (want streamable-http or sse)", o.Transport)
		}
		if o.Limits != nil {
			validateRates(&errs, "spec.limits", *o.Limits)
		}
		if b := o.Breaker; b != nil {
			if b.Failures < 0 || b.Failures > 1000 {
				errs.add("spec.breaker.failures", "%d: want 1..1000 (0 for the default 5)", b.Failures)
			}
			if b.Cooldown < 0 || time.Duration(b.Cooldown) > time.Hour {
				errs.add("spec.breaker.cooldown", "%v: want at most 1h", time.Duration(b.Cooldown))
			}
		}
		if o.ToolPrefix != nil && !validToolPrefix(*o.ToolPrefix) {
			errs.add("spec.toolPrefix", "%q: at most 32 letters, digits, '_' or '-'", *o.ToolPrefix)
		}
		if o.ProtocolVersion != "" && !slices.Contains(ProtocolVersions, o.ProtocolVersion) {
			errs.add("spec.protocolVersion", "unknown MCP revision %q (want one of %s)", o.ProtocolVersion, strings.Join(ProtocolVersions, ", "))
		}
		if o.Timeout < 0 || o.Timeout > Duration(3600e9) {
			errs.add("spec.timeout", "must be between 0 and 1h")
		}
		if o.Credential != nil {
			validateCredential(&errs, "spec.credential", o.Credential)
		}
		switch o.Environment {
		case "", "prod", "staging", "dev":
		default:
			errs.add("spec.environment", "unknown environment %q (want prod, staging or dev)", o.Environment)
		}
		switch o.Egress {
		case "", "internal", "external":
		default:
			errs.add("spec.egress", "unknown egress %q (want internal or external)", o.Egress)
		}
	case *Skill:
		if len(o.Description) > 4096 {
			errs.add("spec.description", "longer than 4096 characters")
		}
		if len(o.Tools)+len(o.Resources)+len(o.Prompts) == 0 {
			errs.add("spec", "a skill must grant at least one tool, resource or prompt")
		}
		for i, g := range o.Tools {
			p := fmt.Sprintf("spec.tools[%d]", i)
			if err := validateIdentity(g.Tool, "tool"); err != nil {
				errs.add(p+".tool", "%v", err)
			}
			for name, c := range g.Args {
				validateConstraint(&errs, p+".args."+name, c, 0)
			}
		}
		for i, g := range o.Resources {
			p := fmt.Sprintf("spec.resources[%d]", i)
			if g.URI == "" {
				errs.add(p+".uri", "required (a URI or a pattern with *)")
			}
			if g.Upstream != "" {
				if err := ValidateName(g.Upstream); err != nil {
					errs.add(p+".upstream", "%v", err)
				}
			}
		}
		for i, g := range o.Prompts {
			if err := validateIdentity(g.Prompt, "prompt"); err != nil {
				errs.add(fmt.Sprintf("spec.prompts[%d].prompt", i), "%v", err)
			}
		}
	case *Persona:
		if len(o.Description) > 8192 {
			errs.add("spec.description", "longer than 8192 characters")
		}
		seen := map[string]bool{}
		for i, s := range o.Skills {
			p := fmt.Sprintf("spec.skills[%d]", i)
			if err := ValidateName(s); err != nil {
				errs.add(p, "%v", err)
			} else if seen[s] {
				errs.add(p, "skill %q listed twice", s)
			}
			seen[s] = true
		}
		for i, r := range o.DLP {
			validateDLPRule(&errs, fmt.Sprintf("spec.dlp[%d]", i), r)
		}
		if o.Endpoint != nil {
			if _, err := netip.ParseAddrPort(o.Endpoint.Listen); err != nil {
				errs.add("spec.endpoint.listen", "%q is not ADDR:PORT (e.g. 10.77.0.1:9001)", o.Endpoint.Listen)
			}
		}
		if l := o.Limits; l != nil {
			validateRates(&errs, "spec.limits", Rates{CallsPerMinute: l.CallsPerMinute, CallsPerHour: l.CallsPerHour, CallsPerDay: l.CallsPerDay, Burst: l.Burst, Concurrency: l.Concurrency})
			for _, tool := range slices.Sorted(maps.Keys(l.Tools)) {
				p := fmt.Sprintf("spec.limits.tools[%q]", tool)
				if err := validateIdentity(tool, "tool"); err != nil || strings.Contains(tool, "*") {
					errs.add(p, "%q is not a tool identity upstream/tool (no patterns)", tool)
				}
				validateRates(&errs, p, l.Tools[tool])
			}
			if l.Persona != nil {
				validateRates(&errs, "spec.limits.persona", *l.Persona)
			}
		}
		if n := o.Network; n != nil {
			validateCIDRs(&errs, "spec.network", n.AllowCIDRs, n.DenyCIDRs)
			validateUnknownCountry(&errs, "spec.network.unknownCountry", n.UnknownCountry)
			if len(n.AllowCountries) > 0 && len(n.DenyCountries) > 0 {
				errs.add("spec.network", "set allowCountries or denyCountries, not both")
			}
			for _, l := range []struct {
				name string
				cc   []string
			}{{"allowCountries", n.AllowCountries}, {"denyCountries", n.DenyCountries}} {
				for i, c := range l.cc {
					if !validCountry(c) {
						errs.add(fmt.Sprintf("spec.network.%s[%d]", l.name, i), "%q is not an ISO 3166-1 alpha-2 country code (e.g. DE)", c)
					}
				}
			}
		}
	case *NetworkPolicy:
		if len(o.Description) > 4096 {
			errs.add("spec.description", "longer than 4096 characters")
		}
		validateCIDRs(&errs, "spec", o.AllowCIDRs, o.DenyCIDRs)
		validateUnknownCountry(&errs, "spec.unknownCountry", o.UnknownCountry)
		if len(o.AllowCIDRs)+len(o.DenyCIDRs) == 0 && o.UnknownCountry == "" {
			errs.add("spec", "a network policy must set allowCIDRs, denyCIDRs or unknownCountry")
		}
	case *SequenceRule:
		validateSequenceRule(&errs, o)
	case *Agent:
		if o.Persona == "" {
			errs.add("spec.persona", "required")
		} else if err := ValidateName(o.Persona); err != nil {
			errs.add("spec.persona", "%v", err)
		}
	}
	return errs
}

// DLP vocabulary understood by the gateway.
var (
	DLPCategories = []string{"pci", "banking", "national-id", "phi", "secrets", "pii", "crypto"}
	DLPActions    = []string{"log", "mask", "redact", "tokenize", "block"}
)

func validateDLPRule(errs *errList, p string, r DLPRule) {
	if len(r.Categories)+len(r.Detectors) == 0 {
		errs.add(p, "name at least one category or detector")
	}
	for i, c := range r.Categories {
		if !slices.Contains(DLPCategories, c) {
			errs.add(fmt.Sprintf("%s.categories[%d]", p, i), "unknown category %q (want one of %s)", c, strings.Join(DLPCategories, ", "))
		}
	}
	switch r.Direction {
	case "", "request", "response", "both":
	default:
		errs.add(p+".direction", "unknown direction %q (want request, response or both)", r.Direction)
	}
	if !slices.Contains(DLPActions, r.Action) {
		errs.add(p+".action", "unknown action %q (want one of %s)", r.Action, strings.Join(DLPActions, ", "))
	}
	if r.KeepTail != nil && (*r.KeepTail < 0 || *r.KeepTail > 16) {
		errs.add(p+".keepTail", "must be between 0 and 16")
	}
	switch r.Format {
	case "":
	case "ff1":
		if r.Action != "tokenize" {
			errs.add(p+".format", "ff1 applies only to the tokenize action")
		}
	default:
		errs.add(p+".format", "unknown format %q (want ff1)", r.Format)
	}
}

func validateCredential(errs *errList, p string, c *Credential) {
	n := 0
	if c.Secret != "" {
		n++
	}
	if c.Basic != nil {
		n++
	}
	if c.OAuth2 != nil {
		n++
	}
	if n != 1 {
		errs.add(p, "set exactly one of secret, basic and oauth2")
	}
	if c.Secret != "" {
		if err := ValidateName(c.Secret); err != nil {
			errs.add(p+".secret", "%v", err)
		}
		if c.Header != "" && c.Query != "" {
			errs.add(p, "set header or query, not both")
		}
		if c.Header != "" && !validHeaderName(c.Header) {
			errs.add(p+".header", "%q is not a valid HTTP header name", c.Header)
		} else if framingHeaders[strings.ToLower(c.Header)] {
			errs.add(p+".header", "%s frames the HTTP message and cannot carry a credential", c.Header)
		}
		if c.Query != "" && strings.ContainsAny(c.Query, "&=#?\r\n ") {
			errs.add(p+".query", "%q is not a valid query parameter name", c.Query)
		}
		if c.Format != "" && strings.Count(c.Format, "{secret}") != 1 {
			errs.add(p+".format", "must contain {secret} exactly once")
		} else if strings.ContainsAny(c.Format, "\r\n\x00") {
			errs.add(p+".format", "contains a line break or NUL")
		}
	} else if c.Header != "" || c.Query != "" || c.Format != "" {
		errs.add(p, "header, query and format go with secret")
	}
	if b := c.Basic; b != nil {
		if b.PasswordSecret == "" {
			errs.add(p+".basic.passwordSecret", "required")
		}
		if (b.Username == "") == (b.UsernameSecret == "") {
			errs.add(p+".basic", "set username or usernameSecret")
		}
	}
	if o := c.OAuth2; o != nil {
		switch u, err := url.Parse(o.TokenURL); {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs.add(p+".oauth2.tokenURL", "%q is not an http(s) URL", o.TokenURL)
		case u.User != nil:
			errs.add(p+".oauth2.tokenURL", "must not carry credentials (the client secret is a sealed secret)")
		case u.Scheme == "http" && !loopbackHost(u.Hostname()):
			errs.add(p+".oauth2.tokenURL", "%q: use https; plain http is allowed only toward a loopback address, since the client secret travels to it", o.TokenURL)
		}
		if o.ClientID == "" {
			errs.add(p+".oauth2.clientID", "required")
		}
		if o.ClientSecretSecret == "" {
			errs.add(p+".oauth2.clientSecret", "required: the name of a sealed secret")
		}
		switch o.AuthStyle {
		case "", "header", "body":
		default:
			errs.add(p+".oauth2.authStyle", "unknown %q (want header or body)", o.AuthStyle)
		}
	}
}

// framingHeaders frame an HTTP message; a credential placed in one would
// break or smuggle requests (the gateway's injector refuses them too).
var framingHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"upgrade": true, "te": true, "trailer": true, "keep-alive": true, "content-type": true,
}

// loopbackHost reports whether host (a URL's Hostname) is a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// SecretNames lists the sealed secrets a credential refers to.
func (c *Credential) SecretNames() []string {
	if c == nil {
		return nil
	}
	var out []string
	if c.Secret != "" {
		out = append(out, c.Secret)
	}
	if c.Basic != nil {
		out = append(out, c.Basic.UsernameSecret, c.Basic.PasswordSecret)
	}
	if c.OAuth2 != nil {
		out = append(out, c.OAuth2.ClientSecretSecret)
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// maxCIDRs bounds one list, so a document cannot blow up the kernel maps.
const maxCIDRs = 10000

func validateCIDRs(errs *errList, p string, allow, deny []string) {
	for _, l := range []struct {
		name  string
		cidrs []string
	}{{"allowCIDRs", allow}, {"denyCIDRs", deny}} {
		if len(l.cidrs) > maxCIDRs {
			errs.add(p+"."+l.name, "lists %d prefixes; at most %d", len(l.cidrs), maxCIDRs)
			continue
		}
		for i, c := range l.cidrs {
			if _, err := ParseCIDR(c); err != nil {
				errs.add(fmt.Sprintf("%s.%s[%d]", p, l.name, i), "%v", err)
			}
		}
	}
}

func validateUnknownCountry(errs *errList, p, v string) {
	switch v {
	case "", "allow", "deny":
	default:
		errs.add(p, "unknown rule %q (want allow or deny)", v)
	}
}

// validCountry accepts an ISO 3166-1 alpha-2 code; "ZZ" is the databases'
// marker for unknown space (use unknownCountry instead).
func validCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c != "ZZ"
}

// ParseCIDR parses an IPv4 or IPv6 prefix ("10.0.0.0/8") or a single
// address (as a /32 or /128), and rejects prefixes with host bits set.
func ParseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// maxRate bounds any rate limit figure (a day of a billion calls).
const maxRate = 1_000_000_000

// validateRates checks limit figures: none negative or absurd, a burst only
// beside a rate.
func validateRates(errs *errList, path string, r Rates) {
	for _, f := range []struct {
		name string
		v    int
	}{{"callsPerMinute", r.CallsPerMinute}, {"callsPerHour", r.CallsPerHour}, {"callsPerDay", r.CallsPerDay}, {"burst", r.Burst}, {"concurrency", r.Concurrency}} {
		if f.v < 0 || f.v > maxRate {
			errs.add(path+"."+f.name, "%d: want 0..%d (0 for no limit)", f.v, maxRate)
		}
	}
	if r.Burst > 0 && r.CallsPerMinute == 0 && r.CallsPerHour == 0 && r.CallsPerDay == 0 {
		errs.add(path+".burst", "a burst needs callsPerMinute, callsPerHour or callsPerDay")
	}
}

// validateIdentity checks "<upstream>/<name>" where name may hold '*'.
func validateIdentity(s, what string) error {
	up, name, ok := strings.Cut(s, "/")
	if !ok || name == "" {
		return fmt.Errorf("%q must be \"<upstream>/<%s>\" (the %s part may use * wildcards)", s, what, what)
	}
	if err := ValidateName(up); err != nil {
		return fmt.Errorf("upstream part: %v", err)
	}
	if len(name) > 256 {
		return fmt.Errorf("%s name longer than 256 characters", what)
	}
	return nil
}

const maxConstraintDepth = 16

func validateConstraint(errs *errList, p string, c *Constraint, depth int) {
	if c == nil {
		return // "arg: {}" or "arg: null": the argument must be present
	}
	if depth > maxConstraintDepth {
		errs.add(p, "constraints nested deeper than %d levels", maxConstraintDepth)
		return
	}
	if c.In != nil && len(c.In) == 0 {
		errs.add(p+".in", "must list at least one value")
	}
	if c.NotIn != nil && len(c.NotIn) == 0 {
		errs.add(p+".notIn", "must list at least one value")
	}
	for _, l := range []struct {
		name string
		vals []any
	}{{"in", c.In}, {"notIn", c.NotIn}} {
		for i, v := range l.vals {
			switch v.(type) {
			case string, float64, bool, nil:
			default:
				errs.add(fmt.Sprintf("%s.%s[%d]", p, l.name, i), "must be a string, number, boolean or null")
			}
		}
	}
	switch c.Equals.(type) {
	case nil, string, float64, bool:
	default:
		errs.add(p+".equals", "must be a string, number or boolean")
	}
	if c.Regex != nil {
		if _, err := regexp.Compile(*c.Regex); err != nil {
			errs.add(p+".regex", "invalid RE2 expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
		errs.add(p, "min %v is greater than max %v", *c.Min, *c.Max)
	}
	if c.MaxLength != nil && *c.MaxLength < 0 {
		errs.add(p+".maxLength", "must not be negative")
	}
	for name, f := range c.Fields {
		validateConstraint(errs, p+".fields."+name, f, depth+1)
	}
	if c.Items != nil {
		validateConstraint(errs, p+".items", c.Items, depth+1)
	}
}

// checkRefs reports references to objects that the snapshot does not hold.
func checkRefs(s *Snapshot, o Object) []*FieldError {
	var errs errList
	switch o := o.(type) {
	case *Skill:
		for i, g := range o.Tools {
			up, _, _ := strings.Cut(g.Tool, "/")
			if s.Upstreams[up] == nil {
				errs.add(fmt.Sprintf("spec.tools[%d].tool", i), "upstream %q does not exist", up)
			}
		}
		for i, g := range o.Resources {
			if g.Upstream != "" && s.Upstreams[g.Upstream] == nil {
				errs.add(fmt.Sprintf("spec.resources[%d].upstream", i), "upstream %q does not exist", g.Upstream)
			}
		}
		for i, g := range o.Prompts {
			up, _, _ := strings.Cut(g.Prompt, "/")
			if s.Upstreams[up] == nil {
				errs.add(fmt.Sprintf("spec.prompts[%d].prompt", i), "upstream %q does not exist", up)
			}
		}
	case *Persona:
		for i, name := range o.Skills {
			if s.Skills[name] == nil {
				errs.add(fmt.Sprintf("spec.skills[%d]", i), "skill %q does not exist", name)
			}
		}
		if other := listenConflict(s, o); other != "" {
			errs.add("spec.endpoint.listen", "%s is already the endpoint of persona %q", o.Endpoint.Listen, other)
		} else if n := listenersOnAddr(s, o); n > MaxListenersPerAddr {
			errs.add("spec.endpoint.listen", "%d persona endpoints on address %s; at most %d (the NIC filter checks them all)", n, o.Endpoint.Listen, MaxListenersPerAddr)
		}
	case *Upstream:
		for _, name := range o.Credential.SecretNames() {
			if s.Secrets[name] == nil {
				errs.add("spec.credential", "secret %q does not exist (store it with `portcullis secret put %s`)", name, name)
			}
		}
	case *Agent:
		if s.Personas[o.Persona] == nil {
			errs.add("spec.persona", "persona %q does not exist", o.Persona)
		}
	case *SequenceRule:
		checkSequenceRefs(s, o, &errs)
	}
	for _, e := range errs {
		e.Kind, e.Name = o.Kind(), o.Metadata().Name
	}
	return errs
}

// listenConflict names another persona of s whose dedicated listener would
// take p's address: the same address and port, or an unspecified address of
// the same family on the same port.
func listenConflict(s *Snapshot, p *Persona) string {
	if p.Endpoint == nil {
		return ""
	}
	mine, err := netip.ParseAddrPort(p.Endpoint.Listen)
	if err != nil {
		return ""
	}
	names := slices.Sorted(maps.Keys(s.Personas))
	for _, name := range names {
		o := s.Personas[name]
		if name == p.Name || o.Endpoint == nil {
			continue
		}
		theirs, err := netip.ParseAddrPort(o.Endpoint.Listen)
		if err != nil || theirs.Port() != mine.Port() {
			continue
		}
		a, b := mine.Addr().Unmap(), theirs.Addr().Unmap()
		if a == b || (a.Is4() == b.Is4() && (a.IsUnspecified() || b.IsUnspecified())) {
			return name
		}
	}
	return ""
}

// MaxListenersPerAddr is how many persona endpoints one address may carry
// (internal/xdp.MaxListenersPerAddr).
const MaxListenersPerAddr = 16

// listenersOnAddr counts, for the address of p's endpoint, the persona
// endpoints in s that serve it: those on the address itself and those on
// the unspecified address of its family (which serve every address). For an
// unspecified address it is the largest such count over the family.
func listenersOnAddr(s *Snapshot, p *Persona) int {
	if p.Endpoint == nil {
		return 0
	}
	mine, err := netip.ParseAddrPort(p.Endpoint.Listen)
	if err != nil {
		return 0
	}
	family := mine.Addr().Unmap().Is4()
	perAddr := map[netip.Addr]int{}
	unspec := 0
	for _, o := range s.Personas {
		if o.Endpoint == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(o.Endpoint.Listen)
		if err != nil || ap.Addr().Unmap().Is4() != family {
			continue
		}
		if a := ap.Addr().Unmap(); a.IsUnspecified() {
			unspec++
		} else {
			perAddr[a]++
		}
	}
	if !mine.Addr().Unmap().IsUnspecified() {
		return perAddr[mine.Addr().Unmap()] + unspec
	}
	most := 0
	for _, n := range perAddr {
		most = max(most, n)
	}
	return most + unspec
}

// referrers lists the objects in s that refer to kind/name.
func referrers(s *Snapshot, kind Kind, name string) []string {
	var out []string
	switch kind {
	case KindUpstream:
		for _, sk := range s.Skills {
			uses := false
			for _, g := range sk.Tools {
				up, _, _ := strings.Cut(g.Tool, "/")
				uses = uses || up == name
			}
			for _, g := range sk.Prompts {
				up, _, _ := strings.Cut(g.Prompt, "/")
				uses = uses || up == name
			}
			for _, g := range sk.Resources {
				uses = uses || g.Upstream == name
			}
			if uses {
				out = append(out, "Skill "+sk.Name)
			}
		}
	case KindSkill:
		for _, p := range s.Personas {
			if slices.Contains(p.Skills, name) {
				out = append(out, "Persona "+p.Name)
			}
		}
	case KindPersona:
		for _, a := range s.Agents {
			if a.Persona == name {
				out = append(out, "Agent "+a.Name)
			}
		}
	}
	out = append(out, sequenceReferrers(s, kind, name)...)
	slices.Sort(out)
	return slices.Compact(out)
}
