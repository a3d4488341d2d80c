package guard

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestScoreTool(t *testing.T) {
	cases := []struct {
		name, def, env, egress string
		level                  string
		reasons                []string // each must appear (substring)
	}{
		{"read-only lookup", `{"name":"get_ticket","description":"Read one ticket.","annotations":{"readOnlyHint":true},"inputSchema":{"type":"object","properties":{"id":{"type":"integer"}}}}`, "", "", RiskLow, nil},
		{"unannotated lookup", `{"name":"get_ticket","inputSchema":{"type":"object"}}`, "", "", RiskLow, []string{"no annotations; MCP assumes destructive"}},
		{"destructive delete", `{"name":"delete_ticket","description":"Delete a ticket for good.","annotations":{"destructiveHint":true}}`, "", "", RiskHigh, []string{"destructive (annotations.destructiveHint)", `deletes ("delete")`}},
		{"shell", `{"name":"runCommand","description":"Run a shell command on the build host","inputSchema":{"type":"object","properties":{"cmd":{"type":"string"}}}}`, "", "", RiskCritical, []string{"runs commands or code", "free-form command argument cmd"}},
		{"constrained command", `{"name":"restart_service","annotations":{"destructiveHint":false},"inputSchema":{"type":"object","properties":{"command":{"type":"string","enum":["restart","status"]}}}}`, "", "", RiskLow, []string{"writes (not readOnlyHint)"}},
		{"email out", `{"name":"send_email","description":"Send an email","annotations":{"destructiveHint":false,"openWorldHint":true},"inputSchema":{"type":"object","properties":{"to":{"type":"string"},"body":{"type":"string"}}}}`, "", "external", RiskHigh, []string{"sends data out", "destination argument to", "external upstream", "reaches outside systems"}},
		{"sql on prod", `{"name":"query_db","description":"Query the database","annotations":{"readOnlyHint":true},"inputSchema":{"type":"object","properties":{"sql":{"type":"string"}}}}`, "prod", "", RiskMedium, []string{"query argument sql", "production upstream"}},
		{"url format", `{"name":"fetch","annotations":{"readOnlyHint":true,"openWorldHint":true},"inputSchema":{"type":"object","properties":{"target":{"type":"string","format":"uri"}}}}`, "", "", RiskMedium, []string{"destination argument target", "reaches outside systems"}},
		{"secrets admin", `{"name":"rotate_api_keys","annotations":{"destructiveHint":true}}`, "", "", RiskHigh, []string{"touches access or secrets"}},
		{"not an object", `[1,2,3]`, "", "", RiskLow, []string{"no annotations"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ScoreTool(json.RawMessage(c.def), c.env, c.egress)
			if r.Level != c.level {
				t.Errorf("level %s (score %d, %v), want %s", r.Level, r.Score, r.Reasons, c.level)
			}
			for _, want := range c.reasons {
				if !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, want) }) {
					t.Errorf("reasons %q lack %q", r.Reasons, want)
				}
			}
			if r.High() != (r.Score >= 60) {
				t.Errorf("High() = %v at score %d", r.High(), r.Score)
			}
		})
	}
}

func FuzzScoreTool(f *testing.F) {
	f.Add([]byte(`{"name":"runCommand","description":"Run.","inputSchema":{"type":"object","properties":{"cmd":{"type":"string"}}},"annotations":{"readOnlyHint":false}}`), "prod", "external")
	f.Add([]byte(`{"name":"x","inputSchema":{"properties":{"a":{"type":["string","null"],"enum":null}}}}`), "", "")
	f.Add([]byte(`null`), "dev", "internal")
	f.Fuzz(func(t *testing.T, def []byte, env, egress string) {
		r := ScoreTool(def, env, egress)
		if r.Score < 0 || r.Score > 100 || r.Level != level(r.Score) {
			t.Fatalf("score %d level %s", r.Score, r.Level)
		}
		if r.Score > 0 && len(r.Reasons) == 0 {
			t.Fatalf("score %d without a reason", r.Score)
		}
	})
}

func TestSeenSensitiveDataRaisesRisk(t *testing.T) {
	g, _ := newGuard(t)
	base := ScoreTool(json.RawMessage(`{"name":"export_tickets","annotations":{"readOnlyHint":true,"openWorldHint":true}}`), "", "external")
	if g.Adjust("helpdesk/export_tickets", base).Score != base.Score {
		t.Fatal("nothing seen yet, yet the score moved")
	}
	g.Saw("helpdesk/export_tickets", map[string]int{"credit-card": 3, "email": 1})
	g.Saw("helpdesk/export_tickets", nil)
	r := g.Adjust("helpdesk/export_tickets", base)
	if r.Score != base.Score+15 || !slices.Contains(r.Reasons, "sensitive data seen in its calls (credit-card, email)") {
		t.Fatalf("after DLP findings: %+v (base %+v)", r, base)
	}
	if len(base.Reasons) == len(r.Reasons) {
		t.Fatal("Adjust changed the base's reasons in place")
	}
	if g.Adjust("helpdesk/get_ticket", base).Score != base.Score {
		t.Fatal("another tool's score moved")
	}
}
