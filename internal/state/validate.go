package state

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
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
		if o.ToolPrefix != nil && !validToolPrefix(*o.ToolPrefix) {
			errs.add("spec.toolPrefix", "%q: at most 32 letters, digits, '_' or '-'", *o.ToolPrefix)
		}
		if o.ProtocolVersion != "" && !slices.Contains(ProtocolVersions, o.ProtocolVersion) {
			errs.add("spec.protocolVersion", "unknown MCP revision %q (want one of %s)", o.ProtocolVersion, strings.Join(ProtocolVersions, ", "))
		}
		if o.Timeout < 0 || o.Timeout > Duration(3600e9) {
			errs.add("spec.timeout", "must be between 0 and 1h")
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
	case *Agent:
		if o.Persona == "" {
			errs.add("spec.persona", "required")
		} else if err := ValidateName(o.Persona); err != nil {
			errs.add("spec.persona", "%v", err)
		}
	}
	return errs
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
	case *Agent:
		if s.Personas[o.Persona] == nil {
			errs.add("spec.persona", "persona %q does not exist", o.Persona)
		}
	}
	for _, e := range errs {
		e.Kind, e.Name = o.Kind(), o.Metadata().Name
	}
	return errs
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
	slices.Sort(out)
	return slices.Compact(out)
}
