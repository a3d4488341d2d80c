package qa

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// TestPersonaDraftWithModel runs the node binary with --persona-model-url
// pointing at an OpenAI-compatible stand-in (canned chat completions over
// real HTTP: no language model runs on this machine). `persona draft` uses
// the model's choice, the drafter's rules still strip what the description
// forbids, and the API key reaches the model only, never the node's log.
func TestPersonaDraftWithModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const key = "sk-e2e-3c9d-never-logged"
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
		content := `{"skills": [{"name": "read-tickets", "reason": "reads tickets"}, {"name": "manage-tickets", "reason": "grant closing too"}]}`
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{
			"finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": content}}}})
	}))
	defer model.Close()
	keyFile := filepath.Join(t.TempDir(), "model-key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	up := startHelpdesk(t)
	n := harness.StartNode(t, "--persona-model-url", model.URL+"/v1", "--persona-model", "stand-in", "--persona-model-key-file", keyFile)
	n.Apply(strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", up.url) + `---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: manage-tickets}
spec:
  description: Close and manage support tickets
  tools: [{tool: helpdesk/close_ticket}, {tool: helpdesk/search_tickets}]
`)
	out := n.MustCLI("persona", "draft", "--description", "Reads and searches customer support tickets to triage them. Must never close tickets.")
	if !strings.Contains(out, "# Skills proposed by model stand-in (chat)") || !strings.Contains(out, "- read-tickets") {
		t.Fatalf("the draft did not use the model:\n%s", out)
	}
	if strings.Contains(out, "- manage-tickets\n") || strings.Contains(out, "- manage-tickets #") || strings.Contains(out, "tool: helpdesk/close_ticket") {
		t.Fatalf("the model's over-grant was not stripped:\n%s", out)
	}
	if res := n.Apply(out); !strings.Contains(res, "created") {
		t.Fatalf("applying the draft printed:\n%s", res)
	}
	mu.Lock()
	if len(auth) == 0 || auth[0] != "Bearer "+key {
		t.Errorf("the model got Authorization %q", auth)
	}
	mu.Unlock()

	// The model is gone: the draft is the offline one and says so.
	model.Close()
	out = n.MustCLI("persona", "draft", "--description", "Reads and searches customer support tickets to triage them. Must never close tickets.")
	if !strings.Contains(out, "# Warning: the language model was not used, this is the offline draft") || strings.Contains(out, "tool: helpdesk/close_ticket") {
		t.Fatalf("without the model:\n%s", out)
	}
	if strings.Contains(n.Logs(), key) || strings.Contains(out, key) {
		t.Error("the API key appears in the node's log or the draft")
	}
}
