package appliance

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/persona"
	"github.com/portcullis-gw/portcullis/internal/persona/personallm"
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

// syncBuffer collects a node's log lines from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node configured with a persona model asks it which skills fit, keeps
// only what the ability rules allow, sends the API key to the model and
// nowhere else, and drafts offline (with a warning) when the model is
// gone. The model is a stand-in HTTP server answering canned chat
// completions: no language model runs on this machine.
func TestDraftAsksTheConfiguredModel(t *testing.T) {
	const key = "sk-node-test-5b1e-never-logged"
	var mu sync.Mutex
	var auth []string
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		// A hostile answer: the admin skill besides the right one, and a
		// skill that does not exist.
		content := `{"skills": [{"name": "tickets-read", "reason": "reads tickets"}, {"name": "tickets-admin"}, {"name": "root"}]}`
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{
			"finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": content}}}})
	}))
	defer model.Close()

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "model-key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cfg := testConfig(t, filepath.Join(dir, "node"))
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.PersonaModel = personallm.Config{URL: model.URL + "/v1", Model: "stand-in", APIKeyFile: keyFile, Timeout: 5 * time.Second}
	a, _ := start(t, cfg)
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	tok, _ := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	call := func(path, ctype, body string) []byte {
		t.Helper()
		req, _ := http.NewRequest("POST", admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	call("/v1/apply", "application/yaml", `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "http://127.0.0.1:9/mcp"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: tickets-read}
spec: {description: Look up support tickets., tools: [{tool: helpdesk/get_ticket}, {tool: helpdesk/search_tickets}]}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: tickets-admin}
spec: {description: Delete tickets., tools: [{tool: helpdesk/delete_ticket}]}
`)
	draft := func() (persona.Proposal, string) {
		t.Helper()
		var ans struct {
			Proposal persona.Proposal `json:"proposal"`
			YAML     string           `json:"yaml"`
		}
		b := call("/v1/personas/draft", "application/json", `{"description": "Reads support tickets and summarises them for the team lead. It never deletes anything."}`)
		if err := json.Unmarshal(b, &ans); err != nil {
			t.Fatalf("draft answer: %v: %s", err, b)
		}
		return ans.Proposal, ans.YAML
	}

	p, y := draft()
	if p.Advice == nil || !strings.Contains(p.Advice.Source, "stand-in") || p.Advice.Error != "" {
		t.Fatalf("the draft did not use the model: %+v", p.Advice)
	}
	if !slices.Contains(p.Advice.Granted, "tickets-read") || slices.Contains(p.Advice.Granted, "tickets-admin") {
		t.Errorf("advice granted %v, want tickets-read and not tickets-admin", p.Advice.Granted)
	}
	granted := func(p persona.Proposal) (skills, tools []string) {
		for _, ps := range p.Skills {
			skills = append(skills, ps.From)
			tools = append(tools, ps.Tools...)
		}
		return skills, tools
	}
	if sk, tl := granted(p); !slices.Equal(sk, []string{"tickets-read"}) || slices.Contains(tl, "helpdesk/delete_ticket") || !strings.Contains(y, "- tickets-read") {
		t.Errorf("the draft grants skills %v, tools %v, want tickets-read only:\n%s", sk, tl, y)
	}
	if !strings.Contains(y, "# Skills proposed by model stand-in (chat)") {
		t.Errorf("the drafted YAML does not say a model chose the skills:\n%s", y)
	}
	mu.Lock()
	if len(auth) == 0 || auth[0] != "Bearer "+key {
		t.Errorf("the model got Authorization %q", auth)
	}
	mu.Unlock()

	// The model is gone: the draft is the offline one, and says so.
	model.Close()
	p, y = draft()
	if p.Advice == nil || p.Advice.Error == "" || !strings.Contains(strings.Join(p.Warnings, "\n"), "offline draft") {
		t.Errorf("without the model: advice %+v, warnings %v", p.Advice, p.Warnings)
	}
	if !strings.Contains(y, "# Warning: the language model was not used, this is the offline draft") {
		t.Errorf("the drafted YAML does not warn that the model was not used:\n%s", y)
	}
	if sk, tl := granted(p); !slices.Equal(sk, []string{"tickets-read"}) || slices.Contains(tl, "helpdesk/delete_ticket") {
		t.Errorf("the offline draft grants skills %v, tools %v, want tickets-read only:\n%s", sk, tl, y)
	}
	if strings.Contains(logs.String(), key) || strings.Contains(y, key) || strings.Contains(strings.Join(p.Warnings, ""), key) {
		t.Error("the API key appears in the node's log or the draft")
	}
	if !strings.Contains(logs.String(), "persona model call") {
		t.Error("the node logged no model call")
	}
}
