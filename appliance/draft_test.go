package appliance

import (
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/persona"
	"github.com/portcullis-gw/portcullis/internal/state"
)

func TestDraftNeverReplacesExistingObjects(t *testing.T) {
	snap := &state.Snapshot{
		Personas: map[string]*state.Persona{"support": {}, "support-2": {}},
		Skills: map[string]*state.Skill{
			"tickets-read": {Description: "made by an admin", Tools: []state.ToolGrant{{Tool: "helpdesk/delete_ticket"}}},
		},
	}
	p := &persona.Proposal{
		Persona:   &state.Persona{Meta: state.Meta{Name: "support"}, Skills: []string{"tickets-read", "kb"}},
		NewSkills: []*state.Skill{{Meta: state.Meta{Name: "tickets-read"}, Description: "narrowed", Tools: []state.ToolGrant{{Tool: "helpdesk/get_ticket"}}}},
	}
	avoidReplacing(p, snap)
	if p.Persona.Name != "support-3" {
		t.Errorf("persona named %q, want support-3", p.Persona.Name)
	}
	if p.NewSkills[0].Name != "tickets-read-2" || p.Persona.Skills[0] != "tickets-read-2" || p.Persona.Skills[1] != "kb" {
		t.Errorf("skills: new %q, persona %v", p.NewSkills[0].Name, p.Persona.Skills)
	}
	if w := strings.Join(p.Warnings, "\n"); !strings.Contains(w, "a persona named support already exists") || !strings.Contains(w, "narrowed skill is named tickets-read-2") {
		t.Errorf("warnings: %s", w)
	}
}
