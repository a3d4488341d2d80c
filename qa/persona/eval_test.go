package persona_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/internal/persona"
	"github.com/portcullis-gw/portcullis/internal/policy"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// catalog is the evaluation's Skill Registry and tool metadata.
type catalog struct {
	upstreams []*state.Upstream
	skills    []*state.Skill
	byName    map[string]*state.Skill
	tools     map[string]persona.ToolInfo
	truth     map[string]persona.Ability // qaAbilities of every tool
}

type evalCase struct {
	ID          string   `yaml:"id"`
	Set         string   `yaml:"set"`
	Description string   `yaml:"description"`
	Abilities   []string `yaml:"abilities"`
	Skills      []string `yaml:"skills"`
	// Deny (devel and blind sets) are tools an admin would not grant
	// although the abilities allow them; proposing one is an over-grant.
	Deny []string `yaml:"deny"`
	// Unmet (devel and blind sets): the description asks for an ability
	// on something no skill covers, and the draft should say so.
	Unmet bool `yaml:"unmet"`
}

func loadCatalog(t testing.TB) *catalog {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := state.ParseDocuments("catalog.yaml", data)
	if err != nil {
		t.Fatalf("catalog.yaml is not valid for portcullis apply: %v", err)
	}
	c := &catalog{byName: map[string]*state.Skill{}, tools: map[string]persona.ToolInfo{}, truth: map[string]persona.Ability{}}
	for _, o := range objs {
		switch x := o.(type) {
		case *state.Upstream:
			c.upstreams = append(c.upstreams, x)
		case *state.Skill:
			c.skills = append(c.skills, x)
			c.byName[x.Name] = x
		}
	}
	data, err = os.ReadFile(filepath.Join("testdata", "tools.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatalf("tools.yaml: %v", err)
	}
	for up, list := range raw {
		for _, m := range list {
			id := fmt.Sprintf("%s/%s", up, m["name"])
			var abs []string
			for _, a := range m["qaAbilities"].([]any) {
				abs = append(abs, a.(string))
			}
			truth, err := persona.ParseAbility(strings.Join(abs, "+"))
			if err != nil || truth == 0 {
				t.Fatalf("tools.yaml %s: qaAbilities %v: %v", id, abs, err)
			}
			c.truth[id] = truth
			delete(m, "qaAbilities")
			delete(m, "name")
			j, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("tools.yaml %s: %v", id, err)
			}
			var info persona.ToolInfo
			if err := json.Unmarshal(j, &info); err != nil {
				t.Fatalf("tools.yaml %s: %v", id, err)
			}
			c.tools[id] = info
		}
	}
	return c
}

// caseFiles hold the job descriptions: the four sets of the first
// evaluation, then the development and blind sets of issue 9.
var caseFiles = []string{"descriptions.yaml", "devel.yaml", "blind.yaml", "blind2.yaml", "blind3.yaml"}

func loadCases(t testing.TB) []evalCase {
	t.Helper()
	var cases []evalCase
	for _, f := range caseFiles {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		var part []evalCase
		if err := yaml.Unmarshal(data, &part); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases = append(cases, part...)
	}
	return cases
}

// toolsOf expands a skill's grants against the catalog.
func (c *catalog) toolsOf(s *state.Skill) []string {
	var out []string
	for _, g := range s.Tools {
		for id := range c.tools {
			if policy.Match(g.Tool, id) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// evalSets are the description sets, in the order they were written.
// "all" is the 60 descriptions of the first four sets; devel, blind and
// blind2 (issue 9) are reported on their own.
var evalSets = []string{"tuning", "heldout", "fresh", "final", "all", "devel", "blind", "blind2", "blind3"}

// blindSets were written without looking at the drafter: a hard-rule
// violation there is counted and reported rather than failing at once.
var blindSets = []string{"blind", "blind2", "blind3"}

// firstSets are the sets that make up "all".
var firstSets = []string{"tuning", "heldout", "fresh", "final"}

// counts accumulates true positives, proposed and expected items.
type counts struct{ tp, proposed, expected int }

func (k *counts) add(proposed, expected []string) {
	for _, p := range proposed {
		if slices.Contains(expected, p) {
			k.tp++
		}
	}
	k.proposed += len(proposed)
	k.expected += len(expected)
}

func (k counts) precision() float64 {
	if k.proposed == 0 {
		return 1
	}
	return float64(k.tp) / float64(k.proposed)
}

func (k counts) recall() float64 {
	if k.expected == 0 {
		return 1
	}
	return float64(k.tp) / float64(k.expected)
}

func (k counts) String() string {
	return fmt.Sprintf("P %.3f R %.3f (tp %d, proposed %d, expected %d)", k.precision(), k.recall(), k.tp, k.proposed, k.expected)
}

// TestDraftQuality runs the drafter over every job description, reports
// precision and recall at tool and skill level per description, per set and
// overall, and enforces the hard rule and the measured floors.
func TestDraftQuality(t *testing.T) {
	c := loadCatalog(t)
	cases := loadCases(t)
	if len(c.tools) < 100 || len(c.skills) < 30 || len(c.upstreams) < 8 || len(cases) < 30 {
		t.Fatalf("catalog too small: %d tools, %d skills, %d upstreams, %d descriptions", len(c.tools), len(c.skills), len(c.upstreams), len(cases))
	}
	ix, err := persona.NewIndex(c.skills, c.tools)
	if err != nil {
		t.Fatal(err)
	}
	only := os.Getenv("PERSONA_EVAL_SET") // e.g. "devel" while tuning, so the blind set stays unseen
	toolK, skillK := map[string]*counts{}, map[string]*counts{}
	over := map[string]int{}     // proposed tools with an unasked ability or on the deny list
	hard := map[string]int{}     // of those, the ones with an unasked ability (the hard rule)
	unmet := map[string][3]int{} // warned and expected, warned and not expected, expected
	for _, set := range evalSets {
		toolK[set], skillK[set] = &counts{}, &counts{}
	}
	var report strings.Builder
	for _, tc := range cases {
		if only != "" && !slices.Contains(strings.Split(only, ","), tc.Set) {
			continue
		}
		if !slices.Contains(evalSets, tc.Set) || tc.Set == "all" {
			t.Fatalf("%s: unknown set %q", tc.ID, tc.Set)
		}
		asked, err := persona.ParseAbility(strings.Join(tc.Abilities, "+"))
		if err != nil {
			t.Fatalf("%s: %v", tc.ID, err)
		}
		allowed := asked | persona.Read
		var wantTools []string
		for _, name := range tc.Skills {
			s := c.byName[name]
			if s == nil {
				t.Fatalf("%s: ground truth names unknown skill %q", tc.ID, name)
			}
			for _, id := range c.toolsOf(s) {
				if allowed.Has(c.truth[id]) && !slices.Contains(tc.Deny, id) && !slices.Contains(wantTools, id) {
					wantTools = append(wantTools, id)
				}
			}
		}
		for _, id := range tc.Deny {
			if _, ok := c.truth[id]; !ok {
				t.Fatalf("%s: deny names unknown tool %q", tc.ID, id)
			}
		}
		p, err := ix.Draft(tc.Description)
		if err != nil {
			t.Fatalf("%s: %v", tc.ID, err)
		}
		var gotTools, gotSkills []string
		for _, ps := range p.Skills {
			if !slices.Contains(gotSkills, ps.From) {
				gotSkills = append(gotSkills, ps.From)
			}
			for _, id := range ps.Tools {
				if !slices.Contains(gotTools, id) {
					gotTools = append(gotTools, id)
				}
			}
		}
		// The hard rule, judged by the ground truth, not by the drafter's own
		// classification. It fails the test on every set the drafter was
		// tuned on; on the blind set a violation is an over-grant, counted
		// and reported (fixing it by looking at the blind text would make
		// the set worthless), and held to its measured ceiling below.
		for _, id := range gotTools {
			if extra := c.truth[id] &^ allowed; extra != 0 && !slices.Contains(blindSets, tc.Set) {
				t.Errorf("%s: HARD RULE: proposed %s which can %s; the description asks only for %s", tc.ID, id, extra, allowed)
			}
		}
		var denied []string
		violations := 0
		for _, id := range gotTools {
			if slices.Contains(tc.Deny, id) || c.truth[id]&^allowed != 0 {
				denied = append(denied, id)
			}
			if c.truth[id]&^allowed != 0 {
				violations++
			}
		}
		checkApplies(t, tc.ID, c, p, gotTools)
		var tk, sk counts
		tk.add(gotTools, wantTools)
		sk.add(gotSkills, tc.Skills)
		sets := []string{tc.Set}
		if slices.Contains(firstSets, tc.Set) {
			sets = append(sets, "all")
		}
		warned := len(p.Unmet) > 0
		for _, set := range sets {
			toolK[set].add(gotTools, wantTools)
			skillK[set].add(gotSkills, tc.Skills)
			over[set] += len(denied)
			hard[set] += violations
			u := unmet[set]
			switch {
			case warned && tc.Unmet:
				u[0]++
			case warned:
				u[1]++
			}
			if tc.Unmet {
				u[2]++
			}
			unmet[set] = u
		}
		fmt.Fprintf(&report, "%s [%s] tools %s | skills %s\n", tc.ID, tc.Set, tk, sk)
		if len(denied) > 0 {
			fmt.Fprintf(&report, "    OVER-GRANT: %v\n", denied)
		}
		if warned != tc.Unmet {
			fmt.Fprintf(&report, "    unmet warning %v, expected %v: %v\n", warned, tc.Unmet, p.Unmet)
		}
		if extra := diff(gotSkills, tc.Skills); len(extra) > 0 {
			fmt.Fprintf(&report, "    extra skills:   %v\n", extra)
		}
		if miss := diff(tc.Skills, gotSkills); len(miss) > 0 {
			fmt.Fprintf(&report, "    missed skills:  %v\n", miss)
		}
		if extra := diff(gotTools, wantTools); len(extra) > 0 {
			fmt.Fprintf(&report, "    extra tools:    %v\n", extra)
		}
		if miss := diff(wantTools, gotTools); len(miss) > 0 {
			fmt.Fprintf(&report, "    missed tools:   %v\n", miss)
		}
		if testing.Verbose() && os.Getenv("PERSONA_EVAL_DEBUG") != "" {
			fmt.Fprintf(&report, "    asked %s forbidden %s requests %v\n", p.Asked, p.Forbidden, p.Requests)
			for _, ps := range p.Skills {
				fmt.Fprintf(&report, "    + %s (from %s, %.2f): %s\n", ps.Name, ps.From, ps.Score, ps.Reason)
			}
			for _, ex := range p.Excluded {
				fmt.Fprintf(&report, "    - %s (%.2f): %s\n", ex.Skill, ex.Score, ex.Reason)
			}
		}
	}
	fmt.Fprintf(&report, "\n| set | tool P | tool R | skill P | skill R | over-grants | of which hard rule | unmet warned (right/wrong/expected) |\n|---|---|---|---|---|---|---|---|\n")
	for _, set := range evalSets {
		if toolK[set].proposed+toolK[set].expected == 0 {
			continue // not run (PERSONA_EVAL_SET)
		}
		u := unmet[set]
		fmt.Fprintf(&report, "| %s | %.3f | %.3f | %.3f | %.3f | %d | %d | %d/%d/%d |\n", set, toolK[set].precision(), toolK[set].recall(),
			skillK[set].precision(), skillK[set].recall(), over[set], hard[set], u[0], u[1], u[2])
	}
	for _, set := range evalSets {
		fmt.Fprintf(&report, "%-8s tool level:  %s\n%-8s skill level: %s\n", set, toolK[set], set, skillK[set])
	}
	t.Logf("persona draft evaluation (%d tools, %d skills, %d upstreams):\n%s", len(c.tools), len(c.skills), len(c.upstreams), report.String())

	if only != "" {
		return
	}
	// Floors measured on this catalog, with a safety margin; see the report in the log.
	floors := []struct {
		name  string
		got   float64
		floor float64
	}{
		// Measured (see README.md), recall/precision at tool level: all
		// 0.885/0.840; held-out 0.924/0.801; fresh 0.828/0.962; final
		// 0.836/0.732. Skills, all: 0.887/0.847; devel 0.904/0.855;
		// blind 0.901/0.820; blind2 0.903/0.850; blind3 0.868/0.819.
		{"tool recall (all)", toolK["all"].recall(), 0.86},
		{"tool precision (all)", toolK["all"].precision(), 0.80},
		{"skill recall (all)", skillK["all"].recall(), 0.86},
		{"skill precision (all)", skillK["all"].precision(), 0.80},
		{"skill recall (devel)", skillK["devel"].recall(), 0.87},
		{"skill precision (devel)", skillK["devel"].precision(), 0.84},
		{"skill recall (blind)", skillK["blind"].recall(), 0.88},
		{"skill precision (blind)", skillK["blind"].precision(), 0.80},
		{"skill recall (blind2)", skillK["blind2"].recall(), 0.88},
		{"skill precision (blind2)", skillK["blind2"].precision(), 0.83},
		{"skill recall (blind3)", skillK["blind3"].recall(), 0.84},
		{"skill precision (blind3)", skillK["blind3"].precision(), 0.78},
		{"tool recall (held-out)", toolK["heldout"].recall(), 0.86},
		{"tool precision (held-out)", toolK["heldout"].precision(), 0.70},
		{"tool recall (fresh)", toolK["fresh"].recall(), 0.78},
		{"tool precision (fresh)", toolK["fresh"].precision(), 0.80},
		{"tool recall (final)", toolK["final"].recall(), 0.74},
		{"tool precision (final)", toolK["final"].precision(), 0.60},
	}
	for _, f := range floors {
		if f.got < f.floor {
			t.Errorf("%s = %.3f, below the floor %.2f", f.name, f.got, f.floor)
		}
	}
	// Over-grants: none on any set. The blind sets were measured blind
	// first (README.md); their over-grants were fixed afterwards, so they
	// hold to the same rule now.
	for _, set := range evalSets {
		if over[set] != 0 {
			t.Errorf("%d over-grants on the %s set", over[set], set)
		}
	}
}

// TestDraftNameOnly drafts every description from the skills and tool
// names alone (no tools/list metadata), as before an upstream was ever
// reached. Precision and recall drop; the hard rule must still hold.
func TestDraftNameOnly(t *testing.T) {
	c := loadCatalog(t)
	ix, err := persona.NewIndex(c.skills, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tools counts
	blindOver := 0
	for _, tc := range loadCases(t) {
		asked, err := persona.ParseAbility(strings.Join(tc.Abilities, "+"))
		if err != nil {
			t.Fatal(err)
		}
		allowed := asked | persona.Read
		var want []string
		for _, name := range tc.Skills {
			for _, id := range c.toolsOf(c.byName[name]) {
				if allowed.Has(c.truth[id]) && !slices.Contains(want, id) {
					want = append(want, id)
				}
			}
		}
		p, err := ix.Draft(tc.Description)
		if err != nil {
			t.Fatalf("%s: %v", tc.ID, err)
		}
		var got []string
		for _, ps := range p.Skills {
			for _, id := range ps.Tools {
				if !slices.Contains(got, id) {
					got = append(got, id)
				}
				if extra := c.truth[id] &^ allowed; extra != 0 {
					if slices.Contains(blindSets, tc.Set) { // counted, as in TestDraftQuality
						blindOver++
						t.Logf("%s: names only: proposed %s which can %s; asked only %s", tc.ID, id, extra, allowed)
						continue
					}
					t.Errorf("%s: HARD RULE (names only): proposed %s which can %s; asked only %s", tc.ID, id, extra, allowed)
				}
			}
		}
		tools.add(got, want)
	}
	t.Logf("names only, all descriptions, tool level: %s; over-grants on the blind set: %d", tools, blindOver)
	if blindOver != 0 {
		t.Errorf("names only: %d over-grants on the blind sets", blindOver)
	}
	if tools.recall() < 0.5 {
		t.Errorf("names-only tool recall %.3f is below 0.5", tools.recall())
	}
}

// checkApplies renders the proposal, parses it as `portcullis apply` does,
// compiles the policy with the catalog and checks that the persona's role
// allows exactly the proposed tools.
func checkApplies(t *testing.T, id string, c *catalog, p *persona.Proposal, gotTools []string) {
	t.Helper()
	y, err := p.YAML()
	if err != nil {
		t.Errorf("%s: render: %v", id, err)
		return
	}
	objs, err := state.ParseDocuments(id+".yaml", y)
	if err != nil {
		t.Errorf("%s: drafted YAML does not parse: %v\n%s", id, err, y)
		return
	}
	snap := &state.Snapshot{Upstreams: map[string]*state.Upstream{}, Skills: map[string]*state.Skill{}, Personas: map[string]*state.Persona{}, Agents: map[string]*state.Agent{}}
	for _, u := range c.upstreams {
		snap.Upstreams[u.Name] = u
	}
	for _, s := range c.skills {
		snap.Skills[s.Name] = s
	}
	var name string
	for _, o := range objs {
		switch x := o.(type) {
		case *state.Skill:
			if c.byName[x.Name] != nil {
				t.Errorf("%s: drafted skill %s overwrites a registry skill", id, x.Name)
			}
			snap.Skills[x.Name] = x
		case *state.Persona:
			snap.Personas[x.Name] = x
			name = x.Name
		}
	}
	role := policy.Compile(snap).Role(name)
	if role == nil {
		t.Errorf("%s: persona %q from the drafted YAML has no role", id, name)
		return
	}
	for tool := range c.tools {
		up, tn, _ := strings.Cut(tool, "/")
		if allowed, want := role.ToolVisible(up, tn), slices.Contains(gotTools, tool); allowed != want {
			t.Errorf("%s: applied role allows %s = %v, proposal says %v", id, tool, allowed, want)
		}
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestToolClassification compares the drafter's reading of every catalog
// tool with the ground truth. Missing a dangerous ability is an error;
// seeing more than there is only costs recall and is reported.
func TestToolClassification(t *testing.T) {
	c := loadCatalog(t)
	exact, over := 0, 0
	var lines []string
	for _, id := range sortedIDs(c.tools) {
		info := c.tools[id]
		got := persona.ClassifyTool(id, &info).Abilities
		want := c.truth[id]
		switch {
		case got == want || got == want|persona.Read && want&persona.Mutating != 0:
			exact++
		case got.Has(want &^ persona.Read):
			over++
			lines = append(lines, fmt.Sprintf("over  %-32s got %-22s want %s", id, got, want))
		default:
			t.Errorf("%s: classified %s, but it can %s", id, got, want)
		}
	}
	t.Logf("tool classification: %d exact, %d over-cautious, of %d\n%s", exact, over, len(c.tools), strings.Join(lines, "\n"))
	// From the name alone (no tools/list yet) a tool may look more dangerous
	// than it is, never less.
	missed := 0
	for _, id := range sortedIDs(c.tools) {
		got := persona.ClassifyTool(id, nil).Abilities
		if want := c.truth[id] &^ persona.Read; !got.Has(want) {
			missed++
			t.Errorf("%s from its name alone: classified %s, but it can %s", id, got, c.truth[id])
		}
	}
}

func sortedIDs(m map[string]persona.ToolInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// BenchmarkDraft drafts every evaluation description against the catalog
// with a prepared Index (what the API does per request), and reports the
// time per description. BenchmarkNewIndex is the one-off cost per registry
// snapshot.
func BenchmarkDraft(b *testing.B) {
	c := loadCatalog(b)
	cases := loadCases(b)
	ix, err := persona.NewIndex(c.skills, c.tools)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := ix.Draft(cases[n%len(cases)].Description); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func BenchmarkNewIndex(b *testing.B) {
	c := loadCatalog(b)
	b.ReportMetric(float64(len(c.tools)), "tools")
	b.ReportMetric(float64(len(c.skills)), "skills")
	for b.Loop() {
		if _, err := persona.NewIndex(c.skills, c.tools); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDraftPrefersNarrowedParts: a narrowed copy of a wildcard skill
// (helpdesk-superuser without its send and admin tools) gives way to the
// registry skills that grant its kept tools, whole or narrowed by the same
// abilities (helpdesk-admin without set_agent_role).
func TestDraftPrefersNarrowedParts(t *testing.T) {
	c := loadCatalog(t)
	ix, err := persona.NewIndex(c.skills, c.tools)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ix.Draft("Helpdesk clean-up: merges duplicate tickets, retags them and permanently deletes spam tickets. It never answers customers.")
	if err != nil {
		t.Fatal(err)
	}
	var from, tools []string
	for _, ps := range p.Skills {
		from = append(from, ps.From)
		tools = append(tools, ps.Tools...)
	}
	if slices.Contains(from, "helpdesk-superuser") || !slices.Contains(from, "helpdesk-admin") || !slices.Contains(from, "helpdesk-triage") {
		t.Errorf("skills from %v, want helpdesk-triage and helpdesk-admin (narrowed), no narrowed helpdesk-superuser", from)
	}
	if !slices.Contains(tools, "helpdesk/delete_ticket") || slices.Contains(tools, "helpdesk/set_agent_role") || slices.Contains(tools, "helpdesk/reply_to_ticket") {
		t.Errorf("tools %v", tools)
	}
}
