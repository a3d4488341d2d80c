package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/mcp"
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
// each upstream's tools/list, so the drafter can judge what a tool does.
// An unreachable upstream only costs its metadata; it becomes a warning.
// With a language model configured (Config.PersonaModel) the model chooses
// among the skills and the drafter's rules decide their tools; a model that
// fails leaves the offline draft, with a warning.
func (a *Appliance) draftPersona(ctx context.Context, description string, snap *state.Snapshot) (any, error) {
	skills := make([]*state.Skill, 0, len(snap.Skills))
	for _, o := range snap.List(state.KindSkill) {
		skills = append(skills, o.(*state.Skill))
	}
	tools, warnings := a.listTools(ctx, snap)
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

// listTools asks every upstream for its tools (with the upstream's
// credential injected, as the gateway does), concurrently and bounded in
// time, and returns them by stable identity "<upstream>/<tool>".
func (a *Appliance) listTools(ctx context.Context, snap *state.Snapshot) (map[string]persona.ToolInfo, []string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		tools    = map[string]persona.ToolInfo{}
		warnings []string
	)
	for name, u := range snap.Upstreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := a.upstreamTools(ctx, u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				a.log.Warn("persona draft: list upstream tools", "upstream", name, "err", err)
				warnings = append(warnings, fmt.Sprintf("could not list the tools of upstream %s, so its tools were judged by name only", name))
				return
			}
			for t, info := range got {
				tools[name+"/"+t] = info
			}
		}()
	}
	wg.Wait()
	slices.Sort(warnings)
	return tools, warnings
}

// maxToolPages bounds tools/list paging against a misbehaving upstream.
const maxToolPages = 50

func (a *Appliance) upstreamTools(ctx context.Context, u *state.Upstream) (map[string]persona.ToolInfo, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	rt, err := a.credentialTransport(u.Name, u.URL, u.Credential, base)
	if err != nil {
		return nil, err
	}
	if c, ok := rt.(io.Closer); ok {
		defer c.Close()
	}
	cfg := mcp.ClientConfig{
		URL:             u.URL,
		HTTPClient:      &http.Client{Transport: rt},
		ProtocolVersion: u.ProtocolVersion,
		ClientInfo:      mcp.Implementation{Name: "portcullis-drafter", Version: "1"},
	}
	var conn mcp.Conn
	if u.Transport == "sse" {
		conn, err = mcp.DialSSE(ctx, cfg)
	} else {
		conn, err = mcp.Dial(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := map[string]persona.ToolInfo{}
	cursor := ""
	for range maxToolPages {
		params := json.RawMessage(`{}`)
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		m, err := conn.Call(ctx, "tools/list", params, nil)
		if err != nil {
			return nil, err
		}
		if m.Error != nil {
			return nil, errors.New(m.Error.Message)
		}
		var page struct {
			Tools []struct {
				Name string `json:"name"`
				persona.ToolInfo
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(m.Result, &page); err != nil {
			return nil, fmt.Errorf("decode tools/list: %w", err)
		}
		for _, t := range page.Tools {
			out[t.Name] = t.ToolInfo
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
	return out, nil
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
