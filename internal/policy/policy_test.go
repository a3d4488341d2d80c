package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/state"
)

const doc = `
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "http://127.0.0.1:9101/mcp"}
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: git}
spec: {url: "http://127.0.0.1:9102/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec:
  tools:
    - tool: helpdesk/search_tickets
    - tool: helpdesk/get_ticket
      args: {project: {in: [SUPPORT, BILLING]}}
    - tool: helpdesk/list_*
  resources: [{uri: "ticket://SUPPORT/*", upstream: helpdesk}]
  prompts: [{prompt: helpdesk/summarize}]
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: constrained}
spec:
  tools:
    - tool: helpdesk/update_ticket
      args:
        id: {regex: "T-[0-9]+"}
        priority: {min: 1, max: 3}
        title: {maxLength: 10, optional: true}
        owner: {prefix: "team-"}
        status: {notIn: [deleted]}
        filter: {fields: {region: {equals: eu}}}
        tags: {items: {in: [a, b]}, maxLength: 2, optional: true}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: all-projects}
spec:
  tools: [{tool: helpdesk/get_ticket}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: triage}
spec: {skills: [read-tickets, constrained]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: admin}
spec: {skills: [read-tickets, all-projects]}
`

func compile(t testing.TB) *Set {
	objs, err := state.ParseDocuments("doc.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	snap := &state.Snapshot{Upstreams: map[string]*state.Upstream{}, Skills: map[string]*state.Skill{}, Personas: map[string]*state.Persona{}}
	for _, o := range objs {
		switch o := o.(type) {
		case *state.Upstream:
			snap.Upstreams[o.Name] = o
		case *state.Skill:
			snap.Skills[o.Name] = o
		case *state.Persona:
			snap.Personas[o.Name] = o
		}
	}
	return Compile(snap)
}

func args(t testing.TB, s string) map[string]any {
	if s == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAllow(t *testing.T) {
	set := compile(t)
	good := `{"id":"T-12","priority":2,"owner":"team-a","status":"open","filter":{"region":"eu"}}`
	cases := []struct {
		persona, upstream, tool, args string
		allow                         bool
		want                          string // substring of the violation
	}{
		{"triage", "helpdesk", "search_tickets", `{"q":"x"}`, true, ""},
		{"triage", "helpdesk", "get_ticket", `{"project":"SUPPORT"}`, true, ""},
		{"triage", "helpdesk", "get_ticket", `{"project":"HR"}`, false, `argument project is not one of the allowed values ["SUPPORT", "BILLING"] (rule from skill read-tickets)`},
		{"triage", "helpdesk", "get_ticket", `{}`, false, "argument project is required"},
		{"triage", "helpdesk", "get_ticket", `{"project":["SUPPORT"]}`, false, "argument project is not one of"},
		{"admin", "helpdesk", "get_ticket", `{"project":"HR"}`, true, ""}, // union with an unconstrained grant
		{"triage", "helpdesk", "list_queues", ``, true, ""},
		{"triage", "helpdesk", "delete_ticket", `{}`, false, "tool helpdesk/delete_ticket is not allowed for persona triage: it is not in the persona's role"},
		{"triage", "git", "search_tickets", `{}`, false, "not in the persona's role"},
		{"triage", "helpdesk", "update_ticket", good, true, ""},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"T-12"`, `"T-12x"`, 1), false, "argument id must match"},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"priority":2`, `"priority":7`, 1), false, "argument priority must be at most 3"},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"priority":2`, `"priority":"2"`, 1), false, "argument priority must be a number"},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"team-a"`, `"ops"`, 1), false, `argument owner must start with "team-"`},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"open"`, `"deleted"`, 1), false, "argument status is one of the forbidden values"},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"eu"`, `"us"`, 1), false, `argument filter.region must equal "eu"`},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `{"region":"eu"}`, `"eu"`, 1), false, "argument filter must be an object"},
		{"triage", "helpdesk", "update_ticket", addField(good, `"title":"a very long title"`), false, "argument title is longer than 10 characters"},
		{"triage", "helpdesk", "update_ticket", addField(good, `"tags":["a","c"]`), false, "argument tags[1] is not one of"},
		{"triage", "helpdesk", "update_ticket", addField(good, `"tags":["a","b","a"]`), false, "argument tags has more than 2 elements"},
		{"triage", "helpdesk", "update_ticket", addField(good, `"tags":["a","b"]`), true, ""},
		// A list is not a way around a list of forbidden values.
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"open"`, `["deleted"]`, 1), false, "argument status must be a single value"},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"open"`, `{"v":"deleted"}`, 1), false, "argument status must be a single value"},
		// Nor is another spelling that a case-insensitive server would bind.
		{"triage", "helpdesk", "get_ticket", `{"project":"SUPPORT","PROJECT":"HR"}`, false, `argument project is also given as "PROJECT"`},
		{"triage", "helpdesk", "update_ticket", addField(good, `"Title":"a very long title"`), false, `argument title is also given as "Title"`},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `{"region":"eu"}`, `{"region":"eu","REGION":"us"}`, 1), false, `argument filter.region is also given as "REGION"`},
		{"admin", "helpdesk", "get_ticket", `{"project":"SUPPORT","PROJECT":"HR"}`, true, ""}, // unconstrained grant: nothing to confuse
		// Unicode simple folding: ſ (U+017F) folds to s, K (U+212A) to k;
		// a lone variant of an optional or required name is refused too.
		{"triage", "helpdesk", "update_ticket", addField(good, `"ſtatus":"deleted"`), false, `argument status is also given as "ſtatus"`},
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `"status"`, `"STATUS"`, 1), false, `argument status is also given as "STATUS"`},
		{"triage", "helpdesk", "update_ticket", addField(good, `"TITLE":"a very long title"`), false, `argument title is also given as "TITLE"`},
		{"triage", "helpdesk", "update_ticket", addField(good, `"tıtle":"x"`), true, ""}, // dotless ı does not fold to i
		{"triage", "helpdesk", "update_ticket", strings.Replace(good, `{"region":"eu"}`, `{"region":"eu","ʀegion":"us"}`, 1), true, ""},
		// Control characters in member names, at any depth, for every grant.
		{"admin", "helpdesk", "get_ticket", `{"project\u0000":"HR"}`, false, `argument "project\x00" has a control character in its name`},
		{"admin", "helpdesk", "get_ticket", `{"q":{"a":[{"b\u007f":1}]}}`, false, `argument q.a[0]."b\x7f" has a control character`},
		{"triage", "helpdesk", "search_tickets", `{"q\u0085":"x"}`, false, `has a control character in its name`},
		{"triage", "helpdesk", "search_tickets", `{"q\tx":"x"}`, false, `has a control character in its name`},
		{"triage", "helpdesk", "search_tickets", `{"q":"a\u0000b","ünïcode":"ok"}`, true, ""}, // in values they are data
	}
	for _, c := range cases {
		t.Run(c.persona+"/"+c.tool, func(t *testing.T) {
			d := set.Role(c.persona).Allow(c.upstream, c.tool, args(t, c.args))
			if d.Allow != c.allow {
				t.Fatalf("Allow = %v (%v), want %v", d.Allow, d.Violation, c.allow)
			}
			if !c.allow && !strings.Contains(d.Violation.Error(), c.want) {
				t.Fatalf("violation %q does not contain %q", d.Violation, c.want)
			}
		})
	}
}

func addField(obj, field string) string { return obj[:len(obj)-1] + "," + field + "}" }

// TestResourceDotSegments checks that a URI pattern cannot be left through
// dot segments that a server would resolve, in any spelling, while names
// that merely contain dots still match.
func TestResourceDotSegments(t *testing.T) {
	r := compile(t).Role("triage") // ticket://SUPPORT/* on helpdesk
	for _, uri := range []string{
		"ticket://SUPPORT/../HR/1", "ticket://SUPPORT/..", "ticket://SUPPORT/./x", "ticket://SUPPORT/%2e%2e/HR",
		"ticket://SUPPORT/%2E./HR", "ticket://SUPPORT/..%2fHR", "ticket://SUPPORT/..%5CHR", `ticket://SUPPORT/..\HR`,
		"ticket://SUPPORT/x?next=/../HR",
		// Encoded more than once: a server (or a proxy before it) that
		// decodes twice would see "..".
		"ticket://SUPPORT/%252e%252e/HR", "ticket://SUPPORT/%252E%252e%252fHR", "ticket://SUPPORT/..%252fHR",
		"ticket://SUPPORT/%25252e%25252e/HR", "ticket://SUPPORT/%zz/%252e%252e/HR",
		"ticket://SUPPORT/%25252525252e", // still encoded after the bounded decoding
	} {
		if r.Resource("helpdesk", uri) {
			t.Errorf("Resource(%q) allowed through a dot segment", uri)
		}
	}
	for _, uri := range []string{"ticket://SUPPORT/a..b", "ticket://SUPPORT/...", "ticket://SUPPORT/.hidden", "ticket://SUPPORT/v1.2/notes", "ticket://SUPPORT/100%25", "ticket://SUPPORT/a%2520b", "ticket://SUPPORT/%zz"} {
		if !r.Resource("helpdesk", uri) {
			t.Errorf("Resource(%q) refused, but it has no dot segment", uri)
		}
	}
}

func FuzzHasDotSegment(f *testing.F) {
	for _, s := range []string{"a/../b", "%2e%2E", "x%2f.%5c", "", "/", "..", "a.b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		// Reference: normalise the separators and dots, then split.
		norm := strings.NewReplacer("%2f", "/", "%2F", "/", "%5c", "/", "%5C", "/", "\\", "/").Replace(uri)
		want := false
		for _, seg := range strings.Split(norm, "/") {
			d := strings.NewReplacer("%2e", ".", "%2E", ".").Replace(seg)
			if (d == "." || d == "..") && strings.Trim(seg, ".%2eE") == "" {
				want = true
			}
		}
		if got := hasDotSegment(uri); got != want {
			t.Fatalf("hasDotSegment(%q) = %v, reference %v", uri, got, want)
		}
	})
}

// FuzzResourceDecoding checks the decoded judgement against a reference:
// a URI whose repeated (lenient) percent-decoding shows a dot segment, or
// that would still decode further, matches only an exact grant.
func FuzzResourceDecoding(f *testing.F) {
	for _, s := range []string{"%252e%252e", "a/%25252e./b", "100%25", "%zz%252e", "%2525252525"} {
		f.Add(s)
	}
	r := &Role{resources: []resourceGrant{{pattern: "x://*"}}}
	f.Fuzz(func(t *testing.T, tail string) {
		uri := "x://" + tail
		want, cur := !hasDotSegment(uri), uri
		for i := 0; want && i < maxDecodes; i++ {
			next := percentDecodeRef(cur)
			if next == cur {
				break
			}
			want, cur = !hasDotSegment(next), next
			if i == maxDecodes-1 && percentDecodeRef(cur) != cur {
				want = false
			}
		}
		if got := r.Resource("u", uri); got != want {
			t.Fatalf("Resource(%q) = %v, reference %v", uri, got, want)
		}
	})
}

// percentDecodeRef is an independent lenient decoder for the fuzz reference.
func percentDecodeRef(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil && !strings.ContainsAny(s[i+1:i+3], "+-") {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

func TestVisibilityResourcesPrompts(t *testing.T) {
	set := compile(t)
	r := set.Role("triage")
	if set.Role("nobody") != nil {
		t.Fatal("unknown persona has a role")
	}
	if got := fmt.Sprint(r.Upstreams()); got != "[helpdesk]" {
		t.Fatalf("Upstreams = %s", got)
	}
	for tool, want := range map[string]bool{"get_ticket": true, "list_x": true, "list": false, "delete_ticket": false, "update_ticket": true} {
		if r.ToolVisible("helpdesk", tool) != want {
			t.Errorf("ToolVisible(%s) != %v", tool, want)
		}
	}
	if !r.Resource("helpdesk", "ticket://SUPPORT/42") || r.Resource("helpdesk", "ticket://HR/1") || r.Resource("git", "ticket://SUPPORT/42") {
		t.Error("resource grants wrong")
	}
	if !r.Prompt("helpdesk", "summarize") || r.Prompt("helpdesk", "escalate") {
		t.Error("prompt grants wrong")
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*c", "abc", true}, {"a*c", "abd", false},
		{"*b*", "abc", true}, {"get_*", "get_", true}, {"get_*", "ge", false}, {"", "", true}, {"", "a", false},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXcYb", false}, {"ticket://*/x", "ticket://a/b/x", true},
	} {
		if got := Match(c.p, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a*b*c", "aXbYc")
	f.Add("**", "")
	f.Fuzz(func(t *testing.T, p, s string) {
		got := Match(p, s)
		if !strings.Contains(p, "*") && got != (p == s) {
			t.Fatalf("Match(%q,%q) = %v without wildcards", p, s, got)
		}
		if p == "*" && !got {
			t.Fatal("* must match everything")
		}
	})
}

// bigSet builds 1,000 personas over 10,000 tools (100 upstreams × 100 tools),
// each persona with 10 skills of 10 tools, some constrained.
func bigSet(b *testing.B) *Set {
	snap := &state.Snapshot{Upstreams: map[string]*state.Upstream{}, Skills: map[string]*state.Skill{}, Personas: map[string]*state.Persona{}}
	in := []any{"SUPPORT", "BILLING"}
	for u := 0; u < 100; u++ {
		snap.Upstreams[fmt.Sprintf("up%d", u)] = &state.Upstream{Meta: state.Meta{Name: fmt.Sprintf("up%d", u)}}
	}
	for s := 0; s < 1000; s++ {
		sk := &state.Skill{Meta: state.Meta{Name: fmt.Sprintf("skill%d", s)}}
		for i := 0; i < 10; i++ {
			tool := (s*10 + i) % 10000
			g := state.ToolGrant{Tool: fmt.Sprintf("up%d/tool%d", tool/100, tool%100)}
			if i%2 == 0 {
				g.Args = map[string]*state.Constraint{"project": {In: in}}
			}
			sk.Tools = append(sk.Tools, g)
		}
		snap.Skills[sk.Name] = sk
	}
	for p := 0; p < 1000; p++ {
		per := &state.Persona{Meta: state.Meta{Name: fmt.Sprintf("persona%d", p)}}
		for i := 0; i < 10; i++ {
			per.Skills = append(per.Skills, fmt.Sprintf("skill%d", (p*7+i*13)%1000))
		}
		snap.Personas[per.Name] = per
	}
	return Compile(snap)
}

func BenchmarkDecision(b *testing.B) {
	set := bigSet(b)
	// persona0 has skill0 → up0/tool0 (constrained) and up0/tool1 (not).
	a := map[string]any{"project": "BILLING", "q": "x"}
	b.Run("allow-constrained", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := set.Role("persona0").Allow("up0", "tool0", a)
			if !d.Allow {
				b.Fatal(d.Violation)
			}
		}
	})
	b.Run("allow-unconstrained", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !set.Role("persona0").Allow("up0", "tool1", a).Allow {
				b.Fatal("denied")
			}
		}
	})
	b.Run("deny-not-granted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if set.Role("persona0").Allow("up99", "tool99", a).Allow {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("visible", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !set.Role("persona999").ToolVisible("up0", "tool1") && false {
				b.Fatal()
			}
		}
	})
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
