package persona

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/portcullis-gw/portcullis/internal/policy"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Errors returned for unusable input.
var (
	ErrEmptyDescription = errors.New("persona draft: the job description is empty")
	ErrNoSkills         = errors.New("persona draft: the Skill Registry has no skills to draft from")
)

// MaxDescription is the longest job description Draft accepts, in bytes.
const MaxDescription = 16 << 10

// Proposal is a drafted role: a Persona over registry skills (and narrowed
// copies of registry skills), with the reason for every choice.
type Proposal struct {
	// Persona is ready to apply; Skills lists Skills[i].Name in order.
	Persona *state.Persona `json:"persona"`
	// NewSkills are narrowed copies of registry skills that Persona uses;
	// they must be applied before it.
	NewSkills []*state.Skill `json:"newSkills,omitempty"`
	// Skills explains every skill of Persona.
	Skills []*ProposedSkill `json:"skills"`
	// Excluded explains the relevant skills that were left out.
	Excluded []*Exclusion `json:"excluded,omitempty"`
	// Asked and Forbidden are the abilities the description asks for and
	// forbids outright; Requests is the evidence.
	Asked     Ability   `json:"asked"`
	Forbidden Ability   `json:"forbidden"`
	Requests  []Request `json:"requests,omitempty"`
	// Warnings are things the admin should look at (contradicting hints,
	// tools without metadata).
	Warnings []string `json:"warnings,omitempty"`
	// Unmet are the requests for a change (write, delete, send, execute,
	// admin) that no proposed tool fulfils: nothing in the registry does
	// that to what the request names. Each also has a warning.
	Unmet []Request `json:"unmet,omitempty"`
	// Advice reports what an Advisor (a language model) proposed and what
	// the ability rules kept of it; nil when the draft used none.
	Advice *AdviceReport `json:"advice,omitempty"`
}

// MarshalJSON renders the Persona and the new skills as documents in the
// API's form (apiVersion, kind, metadata, spec), so a client can apply
// them as they are.
func (p *Proposal) MarshalJSON() ([]byte, error) {
	type plain Proposal
	out := struct {
		Persona   *state.Document  `json:"persona"`
		NewSkills []state.Document `json:"newSkills,omitempty"`
		*plain
	}{plain: (*plain)(p)}
	if p.Persona != nil {
		d := state.EncodeDocument(p.Persona)
		out.Persona = &d
	}
	for _, s := range p.NewSkills {
		out.NewSkills = append(out.NewSkills, state.EncodeDocument(s))
	}
	return json.Marshal(out)
}

// ProposedSkill is one skill of the drafted Persona.
type ProposedSkill struct {
	Name      string        `json:"name"` // the skill to grant
	From      string        `json:"from"` // the registry skill it is or narrows
	Narrowed  bool          `json:"narrowed,omitempty"`
	Score     float64       `json:"score"`
	Matched   []string      `json:"matched"` // description terms that matched it
	Abilities Ability       `json:"abilities"`
	Tools     []string      `json:"tools"` // tool identities granted
	Dropped   []DroppedTool `json:"dropped,omitempty"`
	Reason    string        `json:"reason"`
}

// DroppedTool is a tool of a registry skill left out of its narrowed copy.
type DroppedTool struct {
	Tool      string  `json:"tool"`
	Abilities Ability `json:"abilities"`
	Reason    string  `json:"reason"`
}

// Exclusion is a relevant registry skill the draft leaves out.
type Exclusion struct {
	Skill     string   `json:"skill"`
	Score     float64  `json:"score"`
	Matched   []string `json:"matched,omitempty"`
	Abilities Ability  `json:"abilities"`
	Reason    string   `json:"reason"`
}

// Scoring parameters (BM25F over the fields of a skill). Tuned on the
// tuning half of qa/persona; see that package for the figures.
const (
	k1 = 1.2
	bl = 0.5
	// A skill is relevant when its score reaches minScore and relFrac of
	// the best score.
	minScore    = 1.6
	floorSkills = 45
	relFrac     = 0.28
	// companionFrac of the threshold lets a read-only skill in as the
	// companion of a chosen write-only skill of the same upstream.
	companionFrac = 0.25
	// Excluded lists skills down to this fraction of the threshold.
	nearMissFrac = 0.6
	// coveredWeight discounts terms a chosen skill already explains.
	coveredWeight = 0.25
	// narrowFrac of the threshold is what a skill narrowed to its read
	// tools must score on those tools alone.
	narrowFrac  = 0.35
	maxExcluded = 12
)

const (
	fieldName = iota
	fieldDesc
	fieldUpstream
	fieldToolName
	fieldToolDesc
	numFields
)

var fieldWeight = [numFields]float64{3, 2, 2, 1, 0.5}

type toolDoc struct {
	id       string
	upstream string
	known    bool // metadata from tools/list
	info     ToolInfo
	class    ToolClass
	words    map[string]bool
	nameStem []string
	descStem []string
	// ownNames are the stems of its name that no other tool of its
	// upstream has in its name ("collaborator" in manage_collaborators).
	ownNames map[string]bool
}

type grantRef struct {
	tool  *toolDoc
	grant state.ToolGrant // the grant it comes from (its Args apply)
}

type skillDoc struct {
	s         *state.Skill
	tools     []grantRef
	wildcard  bool
	unmatched []string // patterns that match no known tool
	ab        Ability
	tf        [numFields]map[string]float64
	flen      [numFields]float64
	core      map[string]bool // stems of name, description and upstreams
	vocab     map[string]bool // core plus the tools' text
}

// Index is a Skill Registry prepared for drafting. It is immutable and safe
// for concurrent use; build one per registry snapshot.
type Index struct {
	skills   []*skillDoc
	vocab    map[string]bool // every skill's vocabulary
	ups      map[string]bool // the stems of upstream names
	idf      map[string]float64
	avg      [numFields]float64
	names    map[string]bool
	warnings []string
}

// Draft proposes a role for a job description from a Skill Registry and
// the tools' metadata (keyed by "<upstream>/<tool>"; may be nil). It is
// deterministic, offline and never proposes a tool whose ability the
// description does not ask for.
func Draft(desc string, skills []*state.Skill, tools map[string]ToolInfo) (*Proposal, error) {
	ix, err := NewIndex(skills, tools)
	if err != nil {
		return nil, err
	}
	return ix.Draft(desc)
}

// NewIndex prepares skills and tool metadata for drafting.
func NewIndex(skills []*state.Skill, tools map[string]ToolInfo) (*Index, error) {
	ix := &Index{idf: map[string]float64{}, names: map[string]bool{}}
	docs := map[string]*toolDoc{}
	toolDocFor := func(id string, info *ToolInfo) *toolDoc {
		if d, ok := docs[id]; ok {
			return d
		}
		d := &toolDoc{id: id, known: info != nil, words: map[string]bool{}}
		d.upstream, _, _ = strings.Cut(id, "/")
		if info != nil {
			d.info = *info
		}
		d.class = ClassifyTool(id, info)
		_, name, _ := strings.Cut(id, "/")
		d.nameStem = stems(splitIdent(name))
		d.descStem = stems(d.info.Description + " " + schemaWords(d.info.InputSchema))
		for _, s := range append(d.nameStem, d.descStem...) {
			d.words[s] = true
		}
		docs[id] = d
		return d
	}
	known := sortedKeys(tools)
	for _, id := range known {
		info := tools[id]
		toolDocFor(id, &info)
	}
	for _, s := range skills {
		if s == nil || s.Name == "" || ix.names[s.Name] {
			continue
		}
		ix.names[s.Name] = true
		sd := &skillDoc{s: s, core: map[string]bool{}, vocab: map[string]bool{}}
		seen := map[string]bool{}
		ups := map[string]bool{}
		for _, g := range s.Tools {
			up, pat, ok := strings.Cut(g.Tool, "/")
			if !ok {
				continue
			}
			ups[up] = true
			if !strings.Contains(pat, "*") {
				if !seen[g.Tool] {
					seen[g.Tool] = true
					var info *ToolInfo
					if ti, ok := tools[g.Tool]; ok {
						info = &ti
					}
					sd.tools = append(sd.tools, grantRef{toolDocFor(g.Tool, info), g})
				}
				continue
			}
			sd.wildcard = true
			n := 0
			for _, id := range known {
				if policy.Match(g.Tool, id) {
					n++
					if !seen[id] {
						seen[id] = true
						sd.tools = append(sd.tools, grantRef{docs[id], g})
					}
				}
			}
			if n == 0 {
				sd.unmatched = append(sd.unmatched, g.Tool)
			}
		}
		sort.Slice(sd.tools, func(i, j int) bool { return sd.tools[i].tool.id < sd.tools[j].tool.id })
		for _, g := range sd.tools {
			sd.ab |= g.tool.class.Abilities
		}
		if len(sd.unmatched) > 0 {
			sd.ab |= Mutating
		}
		texts := [numFields][]string{
			fieldName:     stems(splitIdent(s.Name)),
			fieldDesc:     stems(s.Description),
			fieldUpstream: stems(strings.Join(sortedKeys(ups), " ")),
		}
		for _, g := range sd.tools {
			texts[fieldToolName] = append(texts[fieldToolName], g.tool.nameStem...)
			texts[fieldToolDesc] = append(texts[fieldToolDesc], g.tool.descStem...)
		}
		for f := range numFields {
			sd.tf[f] = map[string]float64{}
			for _, w := range texts[f] {
				sd.tf[f][w]++
				sd.vocab[w] = true
				if f <= fieldUpstream {
					sd.core[w] = true
				}
			}
			sd.flen[f] = float64(len(texts[f]))
			ix.avg[f] += sd.flen[f]
		}
		ix.skills = append(ix.skills, sd)
	}
	if len(ix.skills) == 0 {
		return nil, ErrNoSkills
	}
	named := map[[2]string]int{} // (upstream, stem) → tools of the upstream with it in their names
	for _, d := range docs {
		for _, w := range dedupe(slices.Clone(d.nameStem)) {
			named[[2]string{d.upstream, w}]++
		}
	}
	for _, d := range docs {
		d.ownNames = map[string]bool{}
		for _, w := range d.nameStem {
			if named[[2]string{d.upstream, w}] == 1 {
				d.ownNames[w] = true
			}
		}
	}
	ix.vocab, ix.ups = map[string]bool{}, map[string]bool{}
	for _, sd := range ix.skills {
		for w := range sd.tf[fieldUpstream] {
			ix.ups[w] = true
		}
		for w := range sd.vocab {
			ix.vocab[w] = true
		}
	}
	df := map[string]int{}
	for _, sd := range ix.skills {
		for w := range sd.vocab {
			df[w]++
		}
	}
	n := float64(len(ix.skills))
	for w, d := range df {
		ix.idf[w] = math.Log(1 + (n-float64(d)+0.5)/(float64(d)+0.5))
	}
	for f := range numFields {
		ix.avg[f] /= n
		if ix.avg[f] == 0 {
			ix.avg[f] = 1
		}
	}
	for _, id := range sortedKeys(docs) {
		d := docs[id]
		if !d.known {
			ix.warnings = append(ix.warnings, fmt.Sprintf("no tools/list metadata for %s: judged by its name alone", id))
		}
		for _, why := range d.class.Why {
			if strings.HasPrefix(why, "readOnlyHint is true but") {
				ix.warnings = append(ix.warnings, fmt.Sprintf("%s: %s", id, why))
			}
		}
	}
	return ix, nil
}

type scored struct {
	sd      *skillDoc
	score   float64
	matched []string
}

// score is the BM25F relevance of a skill to the description's terms.
// Terms in covered (already explained by a chosen skill) count at
// coveredWeight. It returns the terms that contributed, best first.
func (ix *Index) score(sd *skillDoc, terms map[string]float64, covered map[string]bool) (float64, []string) {
	var tf [numFields]map[string]float64
	copy(tf[:], sd.tf[:])
	return ix.bm25(tf, sd.flen, terms, covered)
}

// scoreTools is the relevance of a set of tools alone (their names and
// descriptions), used to check that a narrowed skill's remaining tools are
// themselves what the description is about.
func (ix *Index) scoreTools(tools []*toolDoc, terms map[string]float64) float64 {
	var tf [numFields]map[string]float64
	var flen [numFields]float64
	tf[fieldToolName], tf[fieldToolDesc] = map[string]float64{}, map[string]float64{}
	for _, t := range tools {
		for _, w := range t.nameStem {
			tf[fieldToolName][w]++
		}
		for _, w := range t.descStem {
			tf[fieldToolDesc][w]++
		}
		flen[fieldToolName] += float64(len(t.nameStem))
		flen[fieldToolDesc] += float64(len(t.descStem))
	}
	s, _ := ix.bm25(tf, flen, terms, nil)
	return s
}

func (ix *Index) bm25(tf [numFields]map[string]float64, flen [numFields]float64, terms map[string]float64, covered map[string]bool) (float64, []string) {
	type contrib struct {
		term string
		v    float64
	}
	var cs []contrib
	total := 0.0
	for term, qw := range terms {
		x := 0.0
		for f := range numFields {
			if c := tf[f][term]; c > 0 {
				x += fieldWeight[f] * c / (1 - bl + bl*flen[f]/ix.avg[f])
			}
		}
		if x == 0 {
			continue
		}
		v := qw * ix.idf[term] * x * (k1 + 1) / (x + k1)
		if covered[term] {
			v *= coveredWeight
		}
		total += v
		cs = append(cs, contrib{term, v})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].v != cs[j].v {
			return cs[i].v > cs[j].v
		}
		return cs[i].term < cs[j].term
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.term
	}
	return total, out
}

// shown filters matched terms to those the description itself says (not
// only related expansions).
func shown(matched []string, terms map[string]float64) []string {
	var out []string
	for _, t := range matched {
		if terms[t] >= weightTerm*weightNegated {
			out = append(out, t)
		}
	}
	return out
}

// Draft proposes a role for one job description.
func (ix *Index) Draft(desc string) (*Proposal, error) {
	return ix.draft(desc, nil)
}

// draft is Draft, with the skills an Advisor proposed (adv may be nil).
func (ix *Index) draft(desc string, adv *advised) (*Proposal, error) {
	desc = cleanDescription(desc)
	if err := checkDescription(desc); err != nil {
		return nil, err
	}
	in := ParseIntent(desc)
	for k := range in.Requests {
		r := &in.Requests[k]
		// "posts on Twitter", "pages through PagerDuty": a proper name no
		// skill knows is a system outside the registry.
		r.Outside = !r.Negated && slices.ContainsFunc(r.names, func(n string) bool { return !ix.vocab[n] })
		// "set the status page component to degraded": the head noun and
		// all that follows it are words no skill knows, so the known
		// modifiers ("page") do not make the request one for that skill.
		if !r.Negated && r.Ability&Mutating != 0 && len(r.head) > 1 && len(r.tail) > 0 && ix.vocab[r.head[len(r.head)-2]] &&
			!slices.ContainsFunc(r.tail, func(o string) bool { return ix.vocab[o] || !isAlpha(o) }) {
			r.Outside = true
		}
		// "shares the room calendars", "invites members to the channel":
		// when the tool that does exactly this act administers access, the
		// request asks for that, not for what the verb usually means.
		head := ""
		if len(r.head) > 0 {
			head = r.head[len(r.head)-1] // "answer the scheduling emails": about mail
		}
		for _, d := range append(slices.Clone(r.dest), r.topic, head) {
			// "emails the candidate the details": a verb that names an
			// upstream ("email" and mail) says where the request goes.
			if d != "" && ix.ups[d] && !slices.Contains(r.destUps, d) {
				r.destUps = append(r.destUps, d)
			}
		}
		if !r.Negated && !r.Outside && r.Ability&Mutating != 0 && r.Ability&Admin == 0 && ix.adminAct(*r, in) {
			r.Ability, r.Generic = Admin, false
		}
	}
	// What an outside request names ("create their Okta account") says
	// nothing about which registry skill the role needs.
	for _, r := range in.Requests {
		if r.Outside {
			for _, o := range append(slices.Clone(r.Objects), r.names...) {
				if w, ok := in.Terms[o]; ok {
					in.Terms[o] = w * weightRelated
				}
			}
		}
	}
	p := &Proposal{Asked: in.Asked, Forbidden: in.Forbidden, Requests: in.Requests, Warnings: slices.Clone(ix.warnings)}

	var all []scored
	top := 0.0
	for _, sd := range ix.skills {
		s, m := ix.score(sd, in.Terms, nil)
		all = append(all, scored{sd, s, m})
		top = max(top, s)
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].score != all[j].score {
			return all[i].score > all[j].score
		}
		return all[i].sd.s.Name < all[j].sd.s.Name
	})
	// The floor is calibrated on a registry of about 45 skills; term
	// weights (idf) are smaller in a smaller registry, and so is the floor.
	floor := minScore * min(1, math.Log(1+float64(len(ix.skills)))/math.Log(1+floorSkills))
	threshold := max(floor, relFrac*top)

	var (
		chosen  []*ProposedSkill
		cands   []scored
		covered = map[string]bool{}
	)
	serving := map[*skillDoc]bool{}
	for _, c := range all {
		byAdvisor := adv.has(c.sd.s.Name)
		switch {
		case adv != nil && adv.exclusive && !byAdvisor:
			if c.score >= threshold {
				p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: shown(c.matched, in.Terms), Abilities: c.sd.ab,
					Reason: "relevant, but " + adv.source + " did not propose it"})
			}
		case c.score >= threshold || byAdvisor || c.score >= nearMissFrac*threshold && readsNamed(c.sd, in):
			// An advised skill is a candidate whatever its score; the
			// ability rules below still decide which of its tools it keeps.
			serving[c.sd] = byAdvisor || servesRequest(c.sd, in)
			cands = append(cands, c)
		case c.score >= nearMissFrac*threshold && c.score > 0:
			p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: shown(c.matched, in.Terms), Abilities: c.sd.ab,
				Reason: fmt.Sprintf("not relevant enough: score %.2f is below the threshold %.2f", c.score, threshold)})
		}
	}
	// Greedy: take the candidate that adds most beyond what the chosen
	// skills already explain, until none adds enough.
	for len(cands) > 0 {
		best, bestScore := 0, -1.0
		for k, c := range cands {
			m := c.score
			switch {
			case serving[c.sd]:
				// It does exactly what a request asks: the topic words it
				// shares with chosen skills still count in full.
			case !readOnlyNeighbour(c.sd, chosen) || ix.announcesOnly(c.sd, chosen) && !readAsked(c.sd, in):
				m, _ = ix.score(c.sd, in.Terms, covered)
			}
			if adv.has(c.sd.s.Name) || readsNamed(c.sd, in) {
				m = max(m, threshold)
			}
			if m > bestScore {
				best, bestScore = k, m
			}
		}
		c := cands[best]
		cands = append(cands[:best], cands[best+1:]...)
		if bestScore < threshold {
			p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: shown(c.matched, in.Terms), Abilities: c.sd.ab,
				Reason: fmt.Sprintf("adds too little: what it matches (%s) the chosen skills already cover", strings.Join(firstN(shown(c.matched, in.Terms), 4), ", "))})
			continue
		}
		ps, ex := ix.decide(c, in)
		if ex != nil {
			p.Excluded = append(p.Excluded, ex)
			continue
		}
		if m := shown(c.matched, in.Terms); ps.Abilities&Mutating == 0 && len(m) > 0 && !slices.ContainsFunc(m, func(t string) bool { return !in.verbal[t] }) && !readsNamed(c.sd, in) && !adv.has(c.sd.s.Name) {
			// "page the on-call engineer" says nothing about wiki pages,
			// "merged pull requests" nothing about merging accounts.
			p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: m, Abilities: c.sd.ab,
				Reason: fmt.Sprintf("the description uses %s only as verbs", strings.Join(m, ", "))})
			continue
		}
		if m := shown(c.matched, in.Terms); ps.Abilities&Mutating == 0 && len(m) == 1 && in.modifiers[m[0]] && !readsNamed(c.sd, in) && !readAsked(c.sd, in) && !adv.has(c.sd.s.Name) {
			// "approves employee expense reports" says nothing about the
			// employee directory: one word, and only as a modifier.
			p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: m, Abilities: c.sd.ab,
				Reason: fmt.Sprintf("the description names %s only as a modifier of another noun", m[0])})
			continue
		}
		if m := shown(c.matched, in.Terms); ps.Abilities&Mutating == 0 && len(m) > 0 && !slices.ContainsFunc(m, func(t string) bool { return !in.created[t] }) && !readsNamed(c.sd, in) && !adv.has(c.sd.s.Name) {
			// "opens an issue in the repository" says nothing about
			// reading the issue tracker.
			p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: m, Abilities: c.sd.ab,
				Reason: fmt.Sprintf("the description names %s only as what it creates", strings.Join(m, ", "))})
			continue
		}
		if m := shown(c.matched, in.Terms); ps.Abilities&Mutating != 0 && !enoughEvidence(c.sd, m) && !serving[c.sd] && !namesObject(c.sd, in) && !adv.has(c.sd.s.Name) {
			// One shared word ("page", "status") is too little evidence
			// to let a skill change things.
			p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: m, Abilities: c.sd.ab,
				Reason: fmt.Sprintf("it would change things, and the description shares only %q with it", strings.Join(m, ", "))})
			continue
		}
		if ps.Narrowed && ps.Abilities&Mutating == 0 {
			var kept []*toolDoc
			for _, g := range c.sd.tools {
				if slices.Contains(ps.Tools, g.tool.id) {
					kept = append(kept, g.tool)
				}
			}
			if ts := ix.scoreTools(kept, in.Terms); ts < narrowFrac*threshold {
				p.Excluded = append(p.Excluded, &Exclusion{Skill: c.sd.s.Name, Score: round(c.score), Matched: ps.Matched, Abilities: c.sd.ab,
					Reason: fmt.Sprintf("only its read tools are allowed, and they do not match the description by themselves (score %.2f)", ts)})
				continue
			}
		}
		chosen = append(chosen, ps)
		for _, t := range c.matched {
			covered[t] = true
		}
	}
	chosen = ix.dropUnread(chosen, in, p)
	chosen = ix.addCompanions(chosen, all, in, threshold)
	chosen, redundant := dropRedundant(chosen)
	p.Excluded = append(p.Excluded, redundant...)
	// A skill that came in as a companion is not also "left out".
	taken := map[string]bool{}
	for _, ps := range chosen {
		taken[ps.From] = true
	}
	p.Excluded = slices.DeleteFunc(p.Excluded, func(e *Exclusion) bool { return taken[e.Skill] })
	sort.SliceStable(p.Excluded, func(i, j int) bool { return p.Excluded[i].Score > p.Excluded[j].Score })
	if len(p.Excluded) > maxExcluded {
		p.Excluded = p.Excluded[:maxExcluded]
	}

	chosen = ix.preferWhole(chosen, all, in)
	if adv == nil || !adv.exclusive {
		chosen = ix.fulfil(chosen, all, in, threshold)
	}
	p.Unmet = ix.unmet(chosen, in)
	for _, ps := range chosen {
		p.Asked |= ps.Abilities // an exact act may ask for another ability than its verb's
	}
	for _, r := range p.Unmet {
		p.Warnings = append(p.Warnings, fmt.Sprintf("unmet request: the description asks to %s, and no proposed skill has a tool that can %s on that; grant it by hand if the registry has one, or add a skill", r.String(), r.Ability&^Read))
	}

	p.Persona = &state.Persona{Description: desc, Skills: []string{}}
	p.Persona.Name = suggestName(desc, chosen)
	used := map[string]bool{}
	for n := range ix.names {
		used[n] = true
	}
	for _, ps := range chosen {
		if ps.Narrowed {
			ps.Name = uniqueName(ps.From+"-"+strings.Join(ps.Abilities.Names(), "-"), used)
			sd := ix.skillNamed(ps.From)
			p.NewSkills = append(p.NewSkills, narrowedSkill(ps, sd))
		}
		p.Skills = append(p.Skills, ps)
		p.Persona.Skills = append(p.Persona.Skills, ps.Name)
	}
	if p.Persona.Name != "" {
		p.Persona.Name = uniqueName(p.Persona.Name, map[string]bool{})
	}
	if adv != nil {
		p.Advice = adv.report(p)
	}
	return p, nil
}

// unmet returns the requests for a change that no chosen skill fulfils:
// none of its kept tools has the ability, or the request's objects do not
// fit the skill.
func (ix *Index) unmet(chosen []*ProposedSkill, in *Intent) []Request {
	var out []Request
	for _, r := range in.Requests {
		if r.Negated || r.Ability&Mutating == 0 {
			continue
		}
		met := false
		for _, ps := range chosen {
			sd := ix.skillNamed(ps.From)
			if sd == nil || !matches(r, sd.vocab) {
				continue
			}
			for _, g := range sd.tools {
				if (g.tool.class.Abilities&r.Ability&^Read != 0 || slices.Contains(g.tool.class.Verbs, r.Verb)) && slices.Contains(ps.Tools, g.tool.id) {
					met = true
					break
				}
			}
			if met {
				break
			}
		}
		if !met {
			out = append(out, r)
		}
	}
	return out
}

// fulfil adds, for a request for a change that no chosen skill fulfils,
// the most relevant registry skill that does (through the same rules as
// every other skill): "message the owner on chat" must be able to post
// even when chat-read scored higher than chat-post.
func (ix *Index) fulfil(chosen []*ProposedSkill, all []scored, in *Intent, threshold float64) []*ProposedSkill {
	have := map[string]bool{}
	for _, ps := range chosen {
		have[ps.From] = true
	}
	for _, r := range ix.unmet(chosen, in) {
		// The request is about the domain of the chosen skill that fits
		// most of its objects ("reconcile the bank balance" and
		// finance-read): a skill that fits fewer of them ("balances" of
		// time off) is another domain.
		fits := map[string]int{} // per upstream, the most objects a chosen skill there fits
		for _, ps := range chosen {
			if sd := ix.skillNamed(ps.From); sd != nil {
				for _, g := range sd.tools {
					fits[g.tool.upstream] = max(fits[g.tool.upstream], objectsIn(r, sd.vocab))
				}
			}
		}
		for _, c := range all {
			fit := 0 // on other upstreams than the candidate's
			for up, n := range fits {
				if !slices.ContainsFunc(c.sd.tools, func(g grantRef) bool { return g.tool.upstream == up }) {
					fit = max(fit, n)
				}
			}
			// A topical verb names the upstream it needs ("emails the
			// newsletter" and mail): that skill qualifies however little
			// else of the description it matches.
			named := r.topic != "" && r.cued && c.sd.tf[fieldUpstream][r.topic] > 0 ||
				slices.ContainsFunc(r.dest, func(d string) bool { return ix.ups[d] }) && destFits(r, c.sd) // "shares it by email"
			if c.score < companionFrac*threshold && !named || c.score == 0 {
				continue
			}
			if have[c.sd.s.Name] || c.sd.wildcard || !matches(r, c.sd.core) || !named && objectsIn(r, c.sd.vocab) < fit || !enoughEvidence(c.sd, shown(c.matched, in.Terms)) {
				continue
			}
			cp, ex := ix.decide(c, in)
			if ex != nil {
				continue
			}
			if len(ix.unmet([]*ProposedSkill{cp}, &Intent{Requests: []Request{r}})) > 0 {
				continue
			}
			cp.Reason = fmt.Sprintf("does what %s asks (%s)", r.String(), cp.Reason)
			have[cp.From] = true
			chosen = append(chosen, cp)
			break
		}
	}
	chosen, _ = dropRedundant(chosen)
	return chosen
}

// namesObject reports a request for a change whose whole first noun
// phrase is the skill's vocabulary ("books meetings" and
// calendar-schedule); "keeps the status page up to date" names a status
// page, which the wiki's pages are not.
func namesObject(sd *skillDoc, in *Intent) bool {
	for _, r := range in.Requests {
		if !r.Negated && !r.Outside && r.Ability&sd.ab&Mutating != 0 && len(r.head) > 0 &&
			!slices.ContainsFunc(r.head, func(o string) bool { return !sd.vocab[o] }) {
			return true
		}
	}
	return false
}

// enoughEvidence reports that the description terms a skill matches are
// enough to let it change things: two of them, or the name of its upstream
// ("puts the trip in their calendar"). One shared word ("page", "status")
// is not.
func enoughEvidence(sd *skillDoc, matched []string) bool {
	return len(matched) >= 2 || len(matched) == 1 && sd.tf[fieldUpstream][matched[0]] > 0
}

// destFits reports that a request naming an upstream as where it goes
// ("writes the postmortem in the wiki", "message the owner on chat") is
// about that upstream's skill; one naming none fits any.
func destFits(r Request, sd *skillDoc) bool {
	if len(r.destUps) == 0 {
		return true
	}
	for _, u := range r.destUps {
		if sd.tf[fieldUpstream][u] > 0 {
			return true
		}
	}
	// A tool named for what a topical verb sends ("emails the invoices"
	// and send_invoice) does it from its own upstream; "in the wiki" names
	// the place outright.
	if r.topic == "" || !slices.Contains(r.destUps, r.topic) || slices.ContainsFunc(r.dest, func(d string) bool { return slices.Contains(r.destUps, d) }) {
		return false
	}
	for _, g := range sd.tools {
		if g.tool.class.Abilities&r.Ability&Mutating != 0 && slices.ContainsFunc(r.Objects, func(o string) bool {
			return o != r.topic && !slices.Contains(r.destUps, o) && slices.Contains(g.tool.nameStem, o)
		}) {
			return true
		}
	}
	return false
}

// objectsIn counts the objects of r (its topic aside) in vocab.
func objectsIn(r Request, vocab map[string]bool) int {
	n := 0
	for _, o := range r.Objects {
		if o != r.topic && vocab[o] {
			n++
		}
	}
	return n
}

// readsNamed reports a read-only skill whose name is what a request to
// read names ("reads incoming emails" and mail-read): relevant even when
// another domain dominates the description.
func readsNamed(sd *skillDoc, in *Intent) bool {
	if sd.ab&Mutating != 0 || len(sd.tools) == 0 {
		return false
	}
	for _, r := range in.Requests {
		if r.Negated || r.Ability&^Read != 0 || r.Verb == "read-only" {
			continue
		}
		for _, o := range r.Objects {
			if sd.tf[fieldName][o] > 0 && o != "read" {
				return true
			}
		}
	}
	return false
}

// preferWhole replaces a narrowed wildcard skill ("everything the helpdesk
// offers", limited to read and send) by registry skills that grant exactly
// its kept tools, whole or narrowed by the same abilities: an admin would
// rather grant helpdesk-read and helpdesk-respond (or helpdesk-admin
// without its admin tool) than a drafted copy of helpdesk-superuser.
func (ix *Index) preferWhole(chosen []*ProposedSkill, all []scored, in *Intent) []*ProposedSkill {
	var out []*ProposedSkill
	have := map[string]bool{}
	for _, ps := range chosen {
		have[ps.From] = true
	}
	for _, ps := range chosen {
		sd := ix.skillNamed(ps.From)
		if !ps.Narrowed || sd == nil || !sd.wildcard {
			out = append(out, ps)
			continue
		}
		kept := map[string]bool{}
		for _, id := range ps.Tools {
			kept[id] = true
		}
		var parts []*ProposedSkill
		got := map[string]bool{}
		for _, c := range all {
			if c.sd == sd || c.sd.wildcard || len(c.sd.tools) == 0 || have[c.sd.s.Name] {
				continue
			}
			// a part grants only kept tools, whole or narrowed by the same
			// abilities ("helpdesk-admin" without its admin tool)
			cp, ex := ix.decide(c, in)
			if ex != nil || len(cp.Tools) == 0 {
				continue
			}
			inside := true
			for _, id := range cp.Tools {
				inside = inside && kept[id]
			}
			if !inside {
				continue
			}
			parts = append(parts, cp)
			for _, id := range cp.Tools {
				got[id] = true
			}
		}
		if len(got) != len(kept) {
			out = append(out, ps)
			continue
		}
		for _, cp := range parts {
			cp.Reason = fmt.Sprintf("instead of a narrowed copy of %s (%s)", ps.From, cp.Reason)
			have[cp.From] = true
			out = append(out, cp)
		}
	}
	out, _ = dropRedundant(out)
	return out
}

// cleanDescription makes a description printable, valid UTF-8 with single
// spaces.
func cleanDescription(desc string) string {
	return strings.Join(strings.Fields(strings.Map(printable, strings.ToValidUTF8(desc, " "))), " ")
}

func checkDescription(desc string) error {
	if desc == "" {
		return ErrEmptyDescription
	}
	if len(desc) > MaxDescription {
		return fmt.Errorf("persona draft: the job description is %d bytes; the limit is %d", len(desc), MaxDescription)
	}
	return nil
}

// servesRequest reports whether a skill has a tool that does exactly what
// a request for a change asks: the same verb (or, for a generic verb, a
// generic verb of the same ability) on something the request names.
func servesRequest(sd *skillDoc, in *Intent) bool {
	for _, r := range in.Requests {
		if r.Negated || r.Outside || r.Ability&Mutating == 0 {
			continue
		}
		for _, g := range sd.tools {
			t := g.tool
			if t.class.Abilities&r.Ability == 0 || !verbMatch(r, t) {
				continue
			}
			for _, o := range r.Objects {
				if o != r.topic && t.words[o] {
					return true
				}
			}
		}
	}
	return false
}

func verbMatch(r Request, t *toolDoc) bool {
	for _, v := range t.class.Verbs {
		if v == r.Verb {
			return true
		}
		if e := lexicon[v]; r.Generic && e != nil && e.generic && e.ab&r.Ability != 0 {
			return true
		}
	}
	return false
}

// readOnlyNeighbour reports a read-only skill on an upstream a chosen skill
// already uses: reading where the role already works needs no evidence of
// its own beyond relevance, so the terms it shares with that skill are not
// discounted.
func readOnlyNeighbour(sd *skillDoc, chosen []*ProposedSkill) bool {
	if sd.ab&Mutating != 0 || sd.wildcard {
		return false
	}
	for _, ps := range chosen {
		for _, id := range ps.Tools {
			for _, g := range sd.tools {
				if g.tool.upstream == upstreamOf(id) {
					return true
				}
			}
		}
	}
	return false
}

// dropUnread removes a read-only skill chosen before the announcing skill
// of its upstream ("chat-read" before "chat-post" for "message the #dba
// channel") when nothing asks to read there and the others explain every
// term it matches.
func (ix *Index) dropUnread(chosen []*ProposedSkill, in *Intent, p *Proposal) []*ProposedSkill {
	var out []*ProposedSkill
	for k, ps := range chosen {
		sd := ix.skillNamed(ps.From)
		if sd == nil || ps.Abilities&Mutating != 0 || readAsked(sd, in) || readsNamed(sd, in) {
			out = append(out, ps)
			continue
		}
		others := append(append([]*ProposedSkill(nil), out...), chosen[k+1:]...)
		explained := map[string]bool{}
		for _, o := range others {
			for _, m := range o.Matched {
				explained[m] = true
			}
		}
		if !readOnlyNeighbour(sd, others) || !ix.announcesOnly(sd, others) || slices.ContainsFunc(ps.Matched, func(m string) bool { return !explained[m] }) {
			out = append(out, ps)
			continue
		}
		p.Excluded = append(p.Excluded, &Exclusion{Skill: ps.From, Score: ps.Score, Matched: ps.Matched, Abilities: ps.Abilities,
			Reason: "the role only posts there, and nothing asks to read it"})
	}
	return out
}

// announcesOnly reports that the chosen skills on the read-only skill's
// upstream are announcing skills (chat-post: post, message, react): unlike
// one that replies or keeps records, they need nothing read there.
func (ix *Index) announcesOnly(sd *skillDoc, chosen []*ProposedSkill) bool {
	ups := map[string]bool{}
	for _, g := range sd.tools {
		ups[g.tool.upstream] = true
	}
	for _, ps := range chosen {
		from := ix.skillNamed(ps.From)
		if from == nil || !slices.ContainsFunc(ps.Tools, func(id string) bool { return ups[upstreamOf(id)] }) {
			continue
		}
		if from.ab&Send == 0 || from.ab&(Delete|Execute|Admin) != 0 {
			return false
		}
		for _, g := range from.tools {
			if slices.ContainsFunc(g.tool.class.Verbs, func(v string) bool { return replyVerbs[v] }) {
				return false
			}
		}
	}
	return true
}

// replyVerbs answer something, which must be read first.
var replyVerbs = setOf(`reply respond answer forward comment`)

// readAsked reports a request to read (watch, follow, look up …) what
// the skill's own text names: "follows the #incident channel" for
// chat-read. Posting to a channel alone does not ask to read it.
func readAsked(sd *skillDoc, in *Intent) bool {
	for _, r := range in.Requests {
		if !r.Negated && r.Ability == Read && r.Verb != "read-only" && slices.ContainsFunc(r.head, func(o string) bool { return sd.core[o] }) {
			return true
		}
	}
	return false
}

func upstreamOf(id string) string {
	up, _, _ := strings.Cut(id, "/")
	return up
}

// printable keeps a rune that can stand in a YAML document; others become
// spaces.
func printable(r rune) rune {
	if unicode.IsPrint(r) {
		return r
	}
	return ' '
}

func (ix *Index) skillNamed(name string) *skillDoc {
	for _, sd := range ix.skills {
		if sd.s.Name == name {
			return sd
		}
	}
	return nil
}

// matches reports whether a request's objects fit a vocabulary. A request
// without objects fits everything.
func matches(r Request, vocab map[string]bool) bool {
	if r.Outside {
		return false
	}
	if len(r.Objects) == 0 {
		return true
	}
	for _, o := range r.Objects {
		if vocab[o] {
			return true
		}
	}
	return false
}

// decide applies the ability rules to one relevant skill: keep it whole,
// narrow it to the tools the description allows, or exclude it.
func (ix *Index) decide(c scored, in *Intent) (*ProposedSkill, *Exclusion) {
	sd := c.sd
	allowed := Read
	because := map[Ability]string{}
	for _, a := range []Ability{Write, Delete, Send, Execute, Admin} {
		if sd.ab&a == 0 {
			continue
		}
		for _, r := range in.Requests {
			if !r.Negated && r.Ability&a != 0 && matches(r, sd.vocab) && destFits(r, sd) {
				allowed |= a
				because[a] = r.String()
				break
			}
		}
	}
	forbidBy := map[Ability]string{}
	// A generic negation whose objects are in the names of some of the
	// skill's tools ("must not change collaborator access") forbids those
	// tools; one
	// whose objects only fit the skill as a whole forbids the ability.
	toolForbid := map[string]string{}
	for _, r := range in.Requests {
		if !r.Negated || !r.Generic {
			continue
		}
		hit := false
		if len(r.Objects) > 0 {
			for _, g := range sd.tools {
				if g.tool.class.Abilities&r.Ability&^Read != 0 && slices.ContainsFunc(r.Objects, func(o string) bool { return slices.Contains(g.tool.nameStem, o) }) {
					hit = true
					if toolForbid[g.tool.id] == "" {
						toolForbid[g.tool.id] = r.String()
					}
				}
			}
		}
		if !hit && matches(r, sd.core) {
			for _, a := range []Ability{Write, Delete, Send, Execute, Admin} {
				if r.Ability&a != 0 && forbidBy[a] == "" {
					forbidBy[a] = r.String()
				}
			}
			allowed &^= r.Ability &^ Read
		}
	}
	// Paying is sending of another kind: a request to email or post never
	// lets a tool that moves money in.
	moneyAsked := false
	for _, r := range in.Requests {
		if !r.Negated && moneyVerbs[r.Verb] && matches(r, sd.vocab) {
			moneyAsked = true
		}
	}
	ps := &ProposedSkill{Name: sd.s.Name, From: sd.s.Name, Score: round(c.score), Matched: shown(c.matched, in.Terms)}
	for _, g := range sd.tools {
		t := g.tool
		extra := t.class.Abilities &^ allowed
		if r, ok := exactAct(t, sd, in); ok && extra != 0 && extra&forbiddenBy(forbidBy) == 0 && extra&(Delete|Execute) == 0 && (extra&Admin == 0 || namesAdmin(r, t)) {
			// "share the room calendars": the tool does exactly the act
			// the description asks for, though not with the ability the
			// verb usually has (share_calendar administers access).
			extra = 0
			for _, a := range []Ability{Write, Delete, Send, Execute, Admin} {
				if t.class.Abilities&a != 0 && because[a] == "" {
					because[a] = r.String()
				}
			}
		}
		if extra != 0 {
			ps.Dropped = append(ps.Dropped, DroppedTool{Tool: t.id, Abilities: t.class.Abilities, Reason: denyReason(extra, forbidBy)})
			continue
		}
		if !moneyAsked && slices.ContainsFunc(t.class.Verbs, func(v string) bool { return moneyVerbs[v] }) {
			ps.Dropped = append(ps.Dropped, DroppedTool{Tool: t.id, Abilities: t.class.Abilities, Reason: "moves money, which the description does not ask for"})
			continue
		}
		if r := toolForbid[t.id]; r != "" {
			ps.Dropped = append(ps.Dropped, DroppedTool{Tool: t.id, Abilities: t.class.Abilities, Reason: fmt.Sprintf("the description says %s", r)})
			continue
		}
		if r, ok := negatedSight(t, sd, in); ok {
			ps.Dropped = append(ps.Dropped, DroppedTool{Tool: t.id, Abilities: t.class.Abilities, Reason: fmt.Sprintf("the description says %s", r)})
			continue
		}
		if r, ok := negatedVerb(t, sd, in); ok {
			ps.Dropped = append(ps.Dropped, DroppedTool{Tool: t.id, Abilities: t.class.Abilities, Reason: fmt.Sprintf("the description says %s", r)})
			continue
		}
		ps.Tools = append(ps.Tools, t.id)
		ps.Abilities |= t.class.Abilities
	}
	for _, pat := range sd.unmatched {
		ps.Dropped = append(ps.Dropped, DroppedTool{Tool: pat, Abilities: Mutating, Reason: "the pattern matches no tool with known metadata, so what it grants cannot be judged"})
	}
	if len(ps.Tools) == 0 {
		reason := "every tool it grants needs an ability the description does not allow"
		if len(ps.Dropped) > 0 {
			reason += ": " + ps.Dropped[0].Tool + " " + ps.Dropped[0].Reason
		}
		return nil, &Exclusion{Skill: sd.s.Name, Score: round(c.score), Matched: shown(c.matched, in.Terms), Abilities: sd.ab, Reason: reason}
	}
	ps.Narrowed = len(ps.Dropped) > 0 || sd.wildcard
	var why []string
	if len(ps.Matched) > 0 {
		why = append(why, "matches "+strings.Join(firstN(ps.Matched, 5), ", "))
	}
	for _, a := range []Ability{Write, Delete, Send, Execute, Admin} {
		if ps.Abilities&a != 0 {
			why = append(why, fmt.Sprintf("%s asked by %s", a, because[a]))
		}
	}
	if ps.Abilities&Mutating == 0 {
		why = append(why, "read only")
	}
	if ps.Narrowed {
		if sd.wildcard {
			why = append(why, fmt.Sprintf("wildcard grants pinned to the %d tools known now", len(ps.Tools)))
		}
		if len(ps.Dropped) > 0 {
			why = append(why, fmt.Sprintf("narrowed: %d of its tools left out", len(ps.Dropped)))
		}
	}
	ps.Reason = strings.Join(why, "; ")
	return ps, nil
}

// exactAct finds a request whose verb is what tool t does, on what t
// names, when the verb's usual ability is not the tool's: the description
// asks for that very act ("shares the calendar" for share_calendar, an
// admin tool; "invites members" for invite_to_channel; "scales groups"
// for scale_group, which also writes its size). Delete and execute are
// never let in this way: a merge that also deletes still needs delete
// asked.
func exactAct(t *toolDoc, sd *skillDoc, in *Intent) (Request, bool) {
	for _, r := range in.Requests {
		if !r.Negated && !r.Outside && r.Ability&Mutating != 0 && destFits(r, sd) && isAct(r, t, in) {
			return r, true
		}
	}
	return Request{}, false
}

// isAct reports that tool t does what r asks: its name starts with r's
// verb and r names what it acts on, or its description uses r's verb and
// r names what only its name names ("add them as a collaborator" and
// manage_collaborators).
func isAct(r Request, t *toolDoc, in *Intent) bool {
	if !slices.Contains(t.class.Verbs, r.Verb) {
		return false
	}
	if nameVerb(t, r.Verb) && fitsAct(r, t, in) {
		return true
	}
	return slices.ContainsFunc(r.Objects, func(o string) bool { return o != r.topic && t.ownNames[o] })
}

// namesAdmin reports that r's verb or one of its objects is what makes t's
// name an admin one: "share" in share_calendar, "collaborators" in
// manage_collaborators; not "set" and "page" in set_page_permissions.
func namesAdmin(r Request, t *toolDoc) bool {
	_, name, _ := strings.Cut(t.id, "/")
	for _, w := range strings.Fields(strings.ToLower(splitIdent(name))) {
		if adminNameWords[w] && (lexicon[w] != nil && lexicon[w].lemma == r.Verb || slices.Contains(r.Objects, normWord(w))) {
			return true
		}
	}
	return false
}

// fitsAct reports that request r names what tool t acts on: one of its
// objects is in the tool's words, or its topic is in the tool's name and
// the description names the tool's upstream.
func fitsAct(r Request, t *toolDoc, in *Intent) bool {
	if slices.ContainsFunc(r.Objects, func(o string) bool { return o != r.topic && t.words[o] }) {
		return true
	}
	return r.topic != "" && slices.Contains(t.nameStem, r.topic) && in.Terms[normWord(t.upstream)] >= weightTerm*weightNegated
}

// adminAct reports a registry tool that administers access and does
// exactly what r asks.
func (ix *Index) adminAct(r Request, in *Intent) bool {
	for _, sd := range ix.skills {
		for _, g := range sd.tools {
			if t := g.tool; t.class.Abilities&Admin != 0 && isAct(r, t, in) && namesAdmin(r, t) {
				return true
			}
		}
	}
	return false
}

// nameVerb reports that verb is the first word of t's name: what the tool
// is for, not a word of its description.
func nameVerb(t *toolDoc, verb string) bool {
	_, name, _ := strings.Cut(t.id, "/")
	first, _, _ := strings.Cut(splitIdent(name), " ")
	v := lexicon[strings.ToLower(first)]
	return v != nil && v.lemma == verb
}

// firstNameStem is the stem of the first word of t's name.
func firstNameStem(t *toolDoc) string {
	_, name, _ := strings.Cut(t.id, "/")
	first, _, _ := strings.Cut(strings.ToLower(splitIdent(name)), " ")
	return normWord(first)
}

func forbiddenBy(forbidBy map[Ability]string) Ability {
	var out Ability
	for a := range forbidBy {
		out |= a
	}
	return out
}

// negatedSight finds a negation of seeing ("cannot see salaries", "salary
// figures are none of its business") that names what the read-only tool t
// shows.
func negatedSight(t *toolDoc, sd *skillDoc, in *Intent) (string, bool) {
	if t.class.Abilities&Mutating != 0 {
		return "", false
	}
	for _, r := range in.Requests {
		if !r.Negated || r.Ability != Read || r.Verb == "read-only" {
			continue
		}
		// A clause without a verb ("pipeline settings are off limits")
		// rules out a part of a skill, not what the skill is about.
		if slices.ContainsFunc(r.Objects, func(o string) bool { return o != r.topic && t.words[o] && (r.Verb != "access" || !sd.core[o]) }) {
			return r.String(), true
		}
	}
	return "", false
}

// moneyVerbs move money rather than messages.
var moneyVerbs = setOf(`pay refund transfer wire reimburse`)

func denyReason(extra Ability, forbidBy map[Ability]string) string {
	for _, a := range []Ability{Write, Delete, Send, Execute, Admin} {
		if extra&a != 0 && forbidBy[a] != "" {
			return fmt.Sprintf("can %s, which the description forbids (%s)", a, forbidBy[a])
		}
	}
	return fmt.Sprintf("can %s, which the description does not ask for", extra)
}

// negatedVerb finds a negated specific verb ("never merges") that names
// what tool t does.
func negatedVerb(t *toolDoc, sd *skillDoc, in *Intent) (string, bool) {
	for _, r := range in.Requests {
		if !r.Negated || r.Generic {
			continue // generic negations were applied per ability
		}
		for _, v := range t.class.Verbs {
			if v == r.Verb && (len(r.Objects) == 0 || matches(r, sd.core) || matches(r, t.words)) {
				return r.String(), true
			}
		}
		// "may not approve": a tool whose own description says it
		// approves ("a review that approves it") does what is forbidden.
		// "never ships new versions" and deploy_release: the verbs are
		// synonyms, and the tool's name starts with its.
		if s := normWord(r.Verb); s != "" && s == firstNameStem(t) && t.class.Abilities&r.Ability&^Read != 0 {
			return r.String(), true
		}
		if s := normWord(r.Verb); s != "" && s == stem(r.Verb) && t.words[s] && t.class.Abilities&r.Ability&^Read != 0 && (len(r.Objects) == 0 || matches(r, t.words)) {
			return r.String(), true
		}
	}
	return "", false
}

// addCompanions gives every chosen skill that only changes things the
// read-only skill of its upstream that best matches the description:
// an agent that may update tickets must be able to see them.
func (ix *Index) addCompanions(chosen []*ProposedSkill, all []scored, in *Intent, threshold float64) []*ProposedSkill {
	have := map[string]bool{}
	for _, ps := range chosen {
		have[ps.From] = true
	}
	var extra []*ProposedSkill
	for _, ps := range chosen {
		if ps.Abilities&Read != 0 || ps.Abilities&(Write|Delete) == 0 {
			continue // it sees what it changes, or it only sends or runs things
		}
		ups := map[string]bool{}
		for _, id := range ps.Tools {
			ups[upstreamOf(id)] = true
		}
		for _, o := range append(chosen, extra...) {
			if o.Abilities&Read != 0 {
				for _, id := range o.Tools {
					delete(ups, upstreamOf(id)) // it already sees that upstream
				}
			}
		}
		if len(ups) == 0 {
			continue
		}
		for _, c := range all {
			if have[c.sd.s.Name] || c.score < companionFrac*threshold || c.sd.ab&Mutating != 0 || c.sd.wildcard || len(c.sd.tools) == 0 {
				continue
			}
			same := false
			for _, g := range c.sd.tools {
				same = same || ups[g.tool.upstream]
			}
			if !same {
				continue
			}
			cp, ex := ix.decide(c, in)
			if ex != nil {
				continue
			}
			cp.Reason = fmt.Sprintf("read access that %s needs (%s)", ps.Name, cp.Reason)
			have[c.sd.s.Name] = true
			extra = append(extra, cp)
			break
		}
	}
	out := append(chosen, extra...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

// dropRedundant removes skills whose tools the other chosen skills already
// grant, narrowed copies first, then the least relevant.
func dropRedundant(chosen []*ProposedSkill) ([]*ProposedSkill, []*Exclusion) {
	order := make([]*ProposedSkill, len(chosen))
	copy(order, chosen)
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].Narrowed != order[j].Narrowed {
			return order[i].Narrowed
		}
		return order[i].Score < order[j].Score
	})
	removed := map[*ProposedSkill]bool{}
	var ex []*Exclusion
	for _, ps := range order {
		covered := map[string]string{}
		for _, o := range chosen {
			if o == ps || removed[o] {
				continue
			}
			for _, id := range o.Tools {
				if covered[id] == "" {
					covered[id] = o.Name
				}
			}
		}
		by := map[string]bool{}
		all := true
		for _, id := range ps.Tools {
			if covered[id] == "" {
				all = false
				break
			}
			by[covered[id]] = true
		}
		if all {
			removed[ps] = true
			ex = append(ex, &Exclusion{Skill: ps.From, Score: ps.Score, Matched: ps.Matched, Abilities: ps.Abilities,
				Reason: "redundant: " + strings.Join(sortedKeys(by), " and ") + " already grant what it would"})
		}
	}
	var out []*ProposedSkill
	for _, ps := range chosen {
		if !removed[ps] {
			out = append(out, ps)
		}
	}
	return out, ex
}

// narrowedSkill builds the registry copy of a narrowed skill: only the kept
// tools, each with the arguments constraints of the grant it came from.
func narrowedSkill(ps *ProposedSkill, sd *skillDoc) *state.Skill {
	keep := map[string]bool{}
	for _, id := range ps.Tools {
		keep[id] = true
	}
	s := &state.Skill{Meta: state.Meta{Name: ps.Name}}
	s.Description = strings.TrimSpace(fmt.Sprintf("%s (drafted from skill %s, limited to %s)", strings.TrimRight(sd.s.Description, "."), sd.s.Name, strings.Join(ps.Abilities.Names(), ", ")))
	for _, g := range sd.tools {
		if keep[g.tool.id] {
			s.Tools = append(s.Tools, state.ToolGrant{Tool: g.tool.id, Args: g.grant.Args})
		}
	}
	s.Resources = append(s.Resources, sd.s.Resources...)
	s.Prompts = append(s.Prompts, sd.s.Prompts...)
	return s
}

// suggestName makes a persona name from the description's opening noun
// phrase ("Tier-1 support agent." → tier-1-support-agent), or from the
// chosen skills.
func suggestName(desc string, chosen []*ProposedSkill) string {
	head := desc
	if i := strings.IndexAny(head, ".:;,!?()—–"); i >= 0 {
		head = head[:i]
	}
	for _, cut := range []string{" that ", " who ", " which ", " for ", " - ", " with ", " in "} {
		if i := strings.Index(strings.ToLower(head), cut); i > 0 {
			head = head[:i]
		}
	}
	words := strings.Fields(strings.ToLower(head))
	for len(words) > 0 && (words[0] == "a" || words[0] == "an" || words[0] == "the" || words[0] == "you" || words[0] == "are" || words[0] == "i" || words[0] == "am" || words[0] == "we" || words[0] == "need") {
		words = words[1:]
	}
	if len(words) >= 1 && len(words) <= 5 && lexicon[words[0]] == nil {
		if n := slug(strings.Join(words, " ")); n != "" {
			return n
		}
	}
	ups := map[string]bool{}
	var parts []string
	for _, ps := range chosen {
		for _, id := range ps.Tools {
			up, _, _ := strings.Cut(id, "/")
			if !ups[up] && len(parts) < 3 {
				ups[up] = true
				parts = append(parts, up)
			}
		}
	}
	if len(parts) == 0 {
		return "drafted-persona"
	}
	return slug(strings.Join(parts, " ") + " agent")
}

// slug turns text into a valid object name.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 50 {
			break
		}
	}
	return strings.Trim(b.String(), "-_")
}

// uniqueName makes name valid and distinct from the names in used.
func uniqueName(name string, used map[string]bool) string {
	name = slug(name)
	if name == "" {
		name = "drafted"
	}
	if len(name) > 56 {
		name = strings.Trim(name[:56], "-")
	}
	out := name
	for i := 2; used[out]; i++ {
		out = fmt.Sprintf("%s-%d", name, i)
	}
	used[out] = true
	return out
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func round(f float64) float64 { return math.Round(f*100) / 100 }
