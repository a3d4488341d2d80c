package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/persona"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// draftAnswer is the body of POST /v1/personas/draft.
type draftAnswer struct {
	Proposal *persona.Proposal `json:"proposal"`
	// YAML is the proposal as annotated documents that apply accepts.
	YAML string `json:"yaml"`
}

// draftPersona backs the admin API's draft route: the Skill Registry comes
// from the state snapshot, tool metadata (descriptions, annotations) from
// the upstream tool lists the gateway caches (gateway.UpstreamTools), so
// the drafter can judge what a tool does without dialing an upstream of
// its own. An upstream whose list is unavailable only costs its metadata;
// it becomes a warning.
// With a language model configured (Config.PersonaModel) the model chooses
// among the skills and the drafter's rules decide their tools; a model that
// fails leaves the offline draft, with a warning.
func (a *Appliance) draftPersona(ctx context.Context, description string, snap *state.Snapshot) (any, error) {
	skills := make([]*state.Skill, 0, len(snap.Skills))
	for _, o := range snap.List(state.KindSkill) {
		skills = append(skills, o.(*state.Skill))
	}
	tools, warnings := a.listTools(ctx)
	var p *persona.Proposal
	var err error
	if a.advisor != nil {
		p, err = persona.DraftAdvised(ctx, description, skills, tools, a.advisor)
	} else {
		p, err = persona.Draft(description, skills, tools)
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "persona draft: ")
		return nil, &api.Error{Status: http.StatusUnprocessableEntity, Code: api.CodeInvalid, Message: "cannot draft a persona: " + msg}
	}
	p.Warnings = append(p.Warnings, warnings...)
	avoidReplacing(p, snap)
	y, err := p.YAML()
	if err != nil {
		return nil, fmt.Errorf("render draft: %w", err)
	}
	return draftAnswer{Proposal: p, YAML: string(y)}, nil
}

// draftListWait bounds how long a draft waits for upstream tool lists the
// gateway has not cached yet.
const draftListWait = 10 * time.Second

// listTools returns the gateway's upstream tools by stable identity
// "<upstream>/<tool>", and a warning per upstream whose list is missing.
func (a *Appliance) listTools(ctx context.Context) (map[string]persona.ToolInfo, []string) {
	ctx, cancel := context.WithTimeout(ctx, draftListWait)
	defer cancel()
	cat := a.gw.UpstreamTools(ctx)
	tools := make(map[string]persona.ToolInfo, len(cat.Tools))
	for _, t := range cat.Tools {
		var info persona.ToolInfo
		if err := json.Unmarshal(t.Definition, &info); err != nil {
			a.log.Warn("persona draft: tool definition ignored", "tool", t.ID(), "err", err)
		}
		tools[t.ID()] = info
	}
	warnings := make([]string, 0, len(cat.Unavailable))
	for name, err := range cat.Unavailable {
		a.log.Warn("persona draft: upstream tools unavailable", "upstream", name, "err", err)
		warnings = append(warnings, fmt.Sprintf("could not list the tools of upstream %s, so its tools were judged by name only", name))
	}
	slices.Sort(warnings)
	return tools, warnings
}

// avoidReplacing renames a drafted persona, and narrowed skills, whose
// names already exist in the state (with other content), so that applying
// a draft can never silently replace what an admin made.
func avoidReplacing(p *persona.Proposal, snap *state.Snapshot) {
	free := func(base string, taken func(string) bool) string {
		for i := 2; ; i++ {
			if n := fmt.Sprintf("%s-%d", base, i); !taken(n) && state.ValidateName(n) == nil {
				return n
			}
		}
	}
	for _, sk := range p.NewSkills {
		old := snap.Skills[sk.Name]
		if old == nil || (old.Description == sk.Description && fmt.Sprint(old.Tools) == fmt.Sprint(sk.Tools)) {
			continue
		}
		name := free(sk.Name, func(n string) bool { return snap.Skills[n] != nil })
		p.Warnings = append(p.Warnings, fmt.Sprintf("a different skill named %s already exists; the narrowed skill is named %s", sk.Name, name))
		for i, s := range p.Persona.Skills {
			if s == sk.Name {
				p.Persona.Skills[i] = name
			}
		}
		sk.Name = name
	}
	if name := p.Persona.Name; snap.Personas[name] != nil {
		p.Persona.Name = free(name, func(n string) bool { return snap.Personas[n] != nil })
		p.Warnings = append(p.Warnings, fmt.Sprintf("a persona named %s already exists; the draft is named %s so that applying it cannot replace it", name, p.Persona.Name))
	}
}
