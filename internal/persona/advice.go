package persona

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Advisor proposes which registry skills fit a job description: an
// optional on-premises language model (see package personallm), asked
// instead of, or besides, the lexical relevance ranking.
//
// An Advisor only ever chooses skills. What a chosen skill may do is
// decided by the drafter's own rules from the description, exactly as for
// a skill the ranking found: a tool that can write, delete, send, execute
// or administer is granted only when the description asks for that
// ability, and a skill name that is not in the registry is dropped. So an
// Advisor that is wrong, or hostile, can cost precision or recall, never
// grant an unrequested ability.
//
// Advise is called once per draft, on the caller's goroutine; it may block
// (it usually calls a server) and must return when ctx is done. It must be
// safe for concurrent use.
type Advisor interface {
	Advise(ctx context.Context, description string, skills []SkillCard) (*Advice, error)
}

// SkillCard describes one registry skill to an Advisor.
type SkillCard struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Tools are the tool identities the skill grants, each with its
	// description when tools/list gave one ("crm/get_account: Get one
	// account by id.").
	Tools []string `json:"tools"`
}

// Text is the card as one line of text (for prompts and embeddings).
func (c SkillCard) Text() string {
	return c.Name + ": " + c.Description + " Tools: " + strings.Join(c.Tools, "; ")
}

// Advice is an Advisor's answer.
type Advice struct {
	// Source names the advisor in explanations ("model qwen2.5 at
	// http://10.0.0.5:8000/v1").
	Source string
	// Skills are the proposed skill names with the advisor's reason.
	Skills []AdvisedSkill
	// Exclusive: only the advised skills may be proposed (a chat model
	// chose them); otherwise they are added to the ranking's candidates
	// (an embedding model found them similar).
	Exclusive bool
}

// AdvisedSkill is one skill an Advisor proposes.
type AdvisedSkill struct {
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
}

// AdviceReport is what the proposal says about the advice it used.
type AdviceReport struct {
	Source string `json:"source"`
	// Proposed are the skills the advisor proposed that exist; Granted
	// those that are in the proposal (whole or narrowed).
	Proposed []string `json:"proposed,omitempty"`
	Granted  []string `json:"granted,omitempty"`
	// Rejected are the advised skills the rules left out, with why.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Error is set when the advisor failed and the draft fell back to the
	// offline ranking alone.
	Error string `json:"error,omitempty"`
}

// Rejection is an advised skill that was not granted.
type Rejection struct {
	Skill  string `json:"skill"`
	Reason string `json:"reason"`
}

// maxAdvisedSkills bounds what one Advice may name.
const maxAdvisedSkills = 64

// advised is an Advice checked against the registry.
type advised struct {
	source    string
	exclusive bool
	names     map[string]string // registry skill → reason
	order     []string
	rejected  []Rejection
}

func (a *advised) has(name string) bool {
	if a == nil {
		return false
	}
	_, ok := a.names[name]
	return ok
}

// report says which advised skills the proposal kept.
func (a *advised) report(p *Proposal) *AdviceReport {
	r := &AdviceReport{Source: a.source, Proposed: a.order, Rejected: slices.Clone(a.rejected)}
	granted := map[string]bool{}
	for _, ps := range p.Skills {
		granted[ps.From] = true
	}
	for _, name := range a.order {
		if granted[name] {
			r.Granted = append(r.Granted, name)
			continue
		}
		why := "not needed: the other skills already grant what it would"
		for _, ex := range p.Excluded {
			if ex.Skill == name {
				why = ex.Reason
				break
			}
		}
		r.Rejected = append(r.Rejected, Rejection{Skill: name, Reason: why})
	}
	return r
}

// Cards describes the registry's skills for an Advisor, in registry order.
func (ix *Index) Cards() []SkillCard {
	out := make([]SkillCard, 0, len(ix.skills))
	for _, sd := range ix.skills {
		c := SkillCard{Name: sd.s.Name, Description: sd.s.Description}
		for _, g := range sd.tools {
			t := g.tool.id
			if d := strings.TrimSpace(g.tool.info.Description); d != "" {
				t += ": " + d
			}
			c.Tools = append(c.Tools, t)
		}
		for _, pat := range sd.unmatched {
			c.Tools = append(c.Tools, pat)
		}
		out = append(out, c)
	}
	return out
}

// check validates an Advice against the registry: unknown, duplicate and
// excess names are rejected, never trusted.
func (ix *Index) check(a *Advice) *advised {
	src := strings.TrimSpace(a.Source)
	if src == "" {
		src = "the advisor"
	}
	out := &advised{source: src, exclusive: a.Exclusive, names: map[string]string{}}
	for i, s := range a.Skills {
		name := strings.TrimSpace(s.Name)
		switch {
		case i >= maxAdvisedSkills:
			out.rejected = append(out.rejected, Rejection{Skill: clip(name, 80), Reason: fmt.Sprintf("more than %d skills proposed; the rest are ignored", maxAdvisedSkills)})
		case !ix.names[name]:
			out.rejected = append(out.rejected, Rejection{Skill: clip(name, 80), Reason: "no such skill in the registry"})
		case out.has(name):
		default:
			out.names[name] = clip(strings.TrimSpace(s.Reason), 300)
			out.order = append(out.order, name)
		}
		if i >= maxAdvisedSkills {
			break
		}
	}
	sort.SliceStable(out.rejected, func(i, j int) bool { return out.rejected[i].Skill < out.rejected[j].Skill })
	return out
}

// clip shortens untrusted text for a report.
func clip(s string, n int) string {
	s = strings.Map(printable, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ErrNoAdvisor is returned by DraftAdvised without an Advisor.
var ErrNoAdvisor = errors.New("persona draft: no advisor given")

// DraftAdvised drafts a role like Draft, with the skills an Advisor
// proposes. The Advisor's choice only replaces or extends the relevance
// ranking; every ability rule still applies. When the Advisor fails, the
// draft is the offline one, and Advice.Error and a warning say why.
func (ix *Index) DraftAdvised(ctx context.Context, desc string, a Advisor) (*Proposal, error) {
	if a == nil {
		return nil, ErrNoAdvisor
	}
	clean := cleanDescription(desc)
	if err := checkDescription(clean); err != nil {
		return nil, err
	}
	advice, err := a.Advise(ctx, clean, ix.Cards())
	if err == nil && advice == nil {
		err = errors.New("the advisor returned no advice")
	}
	if err != nil {
		p, derr := ix.draft(desc, nil)
		if derr != nil {
			return nil, derr
		}
		msg := clip(err.Error(), 500)
		p.Advice = &AdviceReport{Source: "advisor", Error: msg}
		p.Warnings = append(p.Warnings, "the language model was not used, this is the offline draft: "+msg)
		return p, nil
	}
	return ix.draft(desc, ix.check(advice))
}

// DraftAdvised prepares an Index and drafts with an Advisor; see
// Index.DraftAdvised.
func DraftAdvised(ctx context.Context, desc string, skills []*state.Skill, tools map[string]ToolInfo, a Advisor) (*Proposal, error) {
	ix, err := NewIndex(skills, tools)
	if err != nil {
		return nil, err
	}
	return ix.DraftAdvised(ctx, desc, a)
}
