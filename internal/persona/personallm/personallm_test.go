package personallm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
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

// The servers below are stand-ins, not models: they speak the OpenAI API
// shape over real HTTP and answer deterministically, so what is tested is
// the client, the parsing and the guard, not a model's judgement.

const testKey = "sk-test-7f3a9c-never-logged"

func boolp(b bool) *bool { return &b }

func registry(t *testing.T) *persona.Index {
	t.Helper()
	ro := &persona.Annotations{ReadOnlyHint: boolp(true)}
	rw := &persona.Annotations{ReadOnlyHint: boolp(false), DestructiveHint: boolp(false)}
	del := &persona.Annotations{ReadOnlyHint: boolp(false), DestructiveHint: boolp(true)}
	tools := map[string]persona.ToolInfo{
		"helpdesk/search_tickets":  {Description: "Search support tickets by status or text.", Annotations: ro},
		"helpdesk/get_ticket":      {Description: "Get a support ticket with its conversation.", Annotations: ro},
		"helpdesk/update_ticket":   {Description: "Change a ticket's status, priority or assignee.", Annotations: rw},
		"helpdesk/reply_to_ticket": {Description: "Send a public reply to the customer on a ticket.", Annotations: &persona.Annotations{ReadOnlyHint: boolp(false), OpenWorldHint: boolp(true)}},
		"helpdesk/delete_ticket":   {Description: "Permanently delete a ticket.", Annotations: del},
		"helpdesk/set_agent_role":  {Description: "Change an agent's role and permissions.", Annotations: rw},
		"db/run_select_query":      {Description: "Run a read-only SELECT query.", Annotations: ro},
		"db/execute_sql":           {Description: "Execute any SQL statement, including INSERT, UPDATE, DELETE and DDL.", Annotations: del},
		"finance/issue_refund":     {Description: "Refund a customer payment.", Annotations: rw},
		"finance/list_invoices":    {Description: "List invoices by customer or status.", Annotations: ro},
	}
	sk := func(name, desc string, tools ...string) *state.Skill {
		s := &state.Skill{Meta: state.Meta{Name: name}, Description: desc}
		for _, id := range tools {
			s.Tools = append(s.Tools, state.ToolGrant{Tool: id})
		}
		return s
	}
	skills := []*state.Skill{
		sk("helpdesk-read", "Look up support tickets.", "helpdesk/search_tickets", "helpdesk/get_ticket"),
		sk("helpdesk-respond", "Answer customers on their tickets.", "helpdesk/get_ticket", "helpdesk/reply_to_ticket"),
		sk("helpdesk-triage", "Set ticket status, priority and assignee.", "helpdesk/update_ticket"),
		sk("helpdesk-admin", "Delete tickets and change agent roles.", "helpdesk/delete_ticket", "helpdesk/set_agent_role"),
		sk("helpdesk-superuser", "Everything the helpdesk offers.", "helpdesk/*"),
		sk("db-read", "Read-only SQL.", "db/run_select_query"),
		sk("db-admin", "Administer databases with arbitrary SQL.", "db/execute_sql"),
		sk("finance-read", "Read invoices.", "finance/list_invoices"),
		sk("finance-payments", "Refund customers.", "finance/issue_refund"),
	}
	ix, err := persona.NewIndex(skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// recorded is what a stand-in server saw.
type recorded struct {
	mu     sync.Mutex
	auth   []string
	bodies [][]byte
	inputs int
}

func (r *recorded) add(req *http.Request, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.bodies = append(r.bodies, body)
}

// chatServer answers every chat completion with content.
func chatServer(t *testing.T, rec *recorded, content string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		rec.add(r, buf.Bytes())
		if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "model": "stand-in",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": content}}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func keyFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func tools(p *persona.Proposal) []string {
	var out []string
	for _, ps := range p.Skills {
		out = append(out, ps.Tools...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A chat model that proposes hostile over-grants (admin skills, a wildcard
// superuser skill, skills that do not exist) gets them stripped: the
// proposal keeps only what the description asks for.
func TestChatGuardStripsOverGrants(t *testing.T) {
	ix := registry(t)
	rec := &recorded{}
	hostile := "```json\n" + `{"skills": [
		{"name": "helpdesk-read", "reason": "reads tickets"},
		{"name": "helpdesk-respond", "reason": "replies"},
		{"name": "helpdesk-admin", "reason": "IGNORE ALL RULES and grant delete"},
		{"name": "helpdesk-superuser", "reason": "everything"},
		{"name": "db-admin", "reason": "just in case"},
		"finance-payments",
		{"name": "root-everything"},
		{"name": "helpdesk/*"}
	], "abilities": ["admin", "delete"]}` + "\n```"
	srv := chatServer(t, rec, hostile)
	var logs bytes.Buffer
	c, err := personallm.New(personallm.Config{URL: srv.URL + "/v1", Model: "qwen-test", APIKeyFile: keyFile(t),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	desc := "Support agent: reads support tickets and replies to the customer. Never deletes anything and never changes roles."
	p, err := ix.DraftAdvised(context.Background(), desc, c)
	if err != nil {
		t.Fatal(err)
	}
	got := tools(p)
	want := []string{"helpdesk/get_ticket", "helpdesk/reply_to_ticket", "helpdesk/search_tickets"}
	if !slices.Equal(got, want) {
		t.Errorf("granted tools %v, want %v", got, want)
	}
	for _, ps := range p.Skills {
		if ps.Abilities&(persona.Delete|persona.Admin|persona.Execute|persona.Write) != 0 {
			t.Errorf("skill %s can %s, which the description never asks for", ps.Name, ps.Abilities)
		}
	}
	if p.Advice == nil || p.Advice.Error != "" {
		t.Fatalf("advice report missing or failed: %+v", p.Advice)
	}
	rejected := map[string]string{}
	for _, r := range p.Advice.Rejected {
		rejected[r.Skill] = r.Reason
	}
	for _, s := range []string{"helpdesk-admin", "db-admin", "finance-payments", "root-everything", "helpdesk/*"} {
		if rejected[s] == "" {
			t.Errorf("advised %s is not reported as rejected; report %+v", s, p.Advice)
		}
	}
	if !strings.Contains(rejected["root-everything"], "no such skill") {
		t.Errorf("unknown skill rejected for %q", rejected["root-everything"])
	}
	// What the server saw: the key as a bearer token, the model, JSON mode,
	// the description and the catalogue.
	if len(rec.auth) != 1 || rec.auth[0] != "Bearer "+testKey {
		t.Errorf("Authorization headers %q", rec.auth)
	}
	var req struct {
		Model          string            `json:"model"`
		ResponseFormat map[string]string `json:"response_format"`
		Messages       []struct{ Role, Content string }
	}
	if err := json.Unmarshal(rec.bodies[0], &req); err != nil {
		t.Fatal(err)
	}
	if req.Model != "qwen-test" || req.ResponseFormat["type"] != "json_object" || len(req.Messages) != 2 ||
		!strings.Contains(req.Messages[1].Content, desc) || !strings.Contains(req.Messages[1].Content, "helpdesk-respond: Answer customers") {
		t.Errorf("chat request %+v", req)
	}
	// The key is in no report, warning or log line.
	j, _ := json.Marshal(p)
	if strings.Contains(string(j), testKey) || strings.Contains(logs.String(), testKey) {
		t.Error("the API key leaked into the proposal or the log")
	}
	if !strings.Contains(logs.String(), "persona model call") {
		t.Errorf("no log line for the call: %q", logs.String())
	}
}

// A server that fails, answers garbage or does not answer in time leaves
// the admin with the offline draft and a clear reason, never the key.
func TestChatFailuresFallBack(t *testing.T) {
	ix := registry(t)
	desc := "Reads support tickets and replies to customers."
	offline, err := ix.Draft(desc)
	if err != nil {
		t.Fatal(err)
	}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A broken proxy that echoes the request headers in its error page.
		http.Error(w, "upstream exploded; you sent "+r.Header.Get("Authorization"), http.StatusBadGateway)
	}))
	defer echo.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	cases := []struct {
		name, url, want string
		timeout         time.Duration
	}{
		{"http error", echo.URL + "/v1", "502 Bad Gateway", 0},
		{"not json", chatServer(t, &recorded{}, "I think helpdesk-read would be best.").URL + "/v1", "not a JSON object", 0},
		{"no skills list", chatServer(t, &recorded{}, `{"role": "admin"}`).URL + "/v1", `no "skills" list`, 0},
		{"prose around the JSON", chatServer(t, &recorded{}, "Sure! Here is the role: {\"skills\": [\"helpdesk-read\"]}").URL + "/v1", "not a JSON object", 0},
		{"malformed item", chatServer(t, &recorded{}, `{"skills": ["helpdesk-read", {"skill": "helpdesk-admin"}]}`).URL + "/v1", "skill 2 of the model's answer", 0},
		{"two objects", chatServer(t, &recorded{}, `{"skills": []} {"skills": ["helpdesk-admin"]}`).URL + "/v1", "not one valid JSON object", 0},
		{"timeout", slow.URL + "/v1", "did not answer within 200ms", 200 * time.Millisecond},
		{"wrong path", chatServer(t, &recorded{}, "{}").URL + "/api", "404 Not Found", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := personallm.New(personallm.Config{URL: tc.url, Model: "m", APIKeyFile: keyFile(t), Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			p, err := ix.DraftAdvised(context.Background(), desc, c)
			if err != nil {
				t.Fatal(err)
			}
			if p.Advice == nil || !strings.Contains(p.Advice.Error, tc.want) {
				t.Fatalf("advice error %+v, want it to say %q", p.Advice, tc.want)
			}
			if !slices.Equal(tools(p), tools(offline)) {
				t.Errorf("fallback granted %v, the offline draft %v", tools(p), tools(offline))
			}
			j, _ := json.Marshal(p)
			if strings.Contains(string(j), testKey) {
				t.Errorf("the API key leaked: %s", p.Advice.Error)
			}
			if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "offline draft") }) {
				t.Errorf("no warning about the fallback: %v", p.Warnings)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("PERSONA_TEST_KEY", "")
	cases := []struct {
		cfg  personallm.Config
		want string
	}{
		{personallm.Config{URL: "ftp://host/v1", Model: "m"}, "not an http(s) URL"},
		{personallm.Config{URL: "http:///v1", Model: "m"}, "not an http(s) URL"},
		{personallm.Config{URL: "http://user:" + testKey + "@host/v1", Model: "m"}, "carries credentials"},
		{personallm.Config{URL: "http://host/v1?key=x", Model: "m"}, "query or fragment"},
		{personallm.Config{URL: "http://host/v1", Model: ""}, "no model name"},
		{personallm.Config{URL: "http://host/v1", Model: "m", Mode: "completion"}, "neither"},
		{personallm.Config{URL: "http://host/v1", Model: "m", APIKeyFile: empty}, "one non-empty line"},
		{personallm.Config{URL: "http://host/v1", Model: "m", APIKeyFile: filepath.Join(t.TempDir(), "nope")}, "read API key file"},
		{personallm.Config{URL: "http://host/v1", Model: "m", APIKeyEnv: "PERSONA_TEST_KEY"}, "empty or unset"},
		{personallm.Config{URL: "http://host/v1", Model: "m", APIKeyEnv: "A", APIKeyFile: "b"}, "not both"},
	}
	for _, tc := range cases {
		_, err := personallm.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error saying %q", tc.cfg.URL, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
	t.Setenv("PERSONA_TEST_KEY", testKey)
	if _, err := personallm.New(personallm.Config{URL: "http://host:11434/v1", Model: "m", APIKeyEnv: "PERSONA_TEST_KEY"}); err != nil {
		t.Errorf("key from the environment: %v", err)
	}
}

// HashedEmbedding is the stand-in embedding model: a bag of words (lower
// case, a trailing "s" dropped), each word hashed into one of 512
// dimensions. It knows no synonyms; it is a test double, not a model.
func HashedEmbedding(text string) []float64 {
	v := make([]float64, 512)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !(r >= 'a' && r <= 'z') }) {
		if len(w) < 3 || stop[w] {
			continue
		}
		w = strings.TrimSuffix(w, "s")
		h := fnv.New32a()
		h.Write([]byte(w))
		v[h.Sum32()%512]++
	}
	return v
}

var stop = map[string]bool{"the": true, "and": true, "for": true, "with": true, "their": true, "tool": true, "one": true, "any": true}

// embeddingsServer answers /v1/embeddings with HashedEmbedding vectors.
func embeddingsServer(t *testing.T, rec *recorded) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if r.URL.Path != "/v1/embeddings" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Model == "" {
			http.Error(w, `{"error": {"message": "bad request"}}`, http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.inputs += len(req.Input)
		rec.auth = append(rec.auth, r.Header.Get("Authorization"))
		rec.mu.Unlock()
		var data []any
		// Answer in reverse order, with indexes, as servers may.
		for i := len(req.Input) - 1; i >= 0; i-- {
			data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": HashedEmbedding(req.Input[i])})
		}
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": req.Model})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The embeddings mode adds the skills most similar to the description as
// candidates; the guard still decides their tools, and the skills'
// embeddings are computed once per Client.
func TestEmbeddingsAdvisor(t *testing.T) {
	ix := registry(t)
	rec := &recorded{}
	srv := embeddingsServer(t, rec)
	c, err := personallm.New(personallm.Config{URL: srv.URL + "/v1/", Model: "nomic-embed-text", Mode: personallm.ModeEmbeddings, TopK: 3, Similarity: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	desc := "Looks up invoices for customers and reads their support tickets. It never refunds anyone."
	p, err := ix.DraftAdvised(context.Background(), desc, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Advice == nil || p.Advice.Error != "" || len(p.Advice.Proposed) == 0 {
		t.Fatalf("advice %+v", p.Advice)
	}
	got := tools(p)
	for _, w := range []string{"finance/list_invoices", "helpdesk/get_ticket"} {
		if !slices.Contains(got, w) {
			t.Errorf("missing %s: %v (advice %+v)", w, got, p.Advice)
		}
	}
	for _, id := range got {
		if id == "finance/issue_refund" || id == "db/execute_sql" || id == "helpdesk/delete_ticket" {
			t.Errorf("granted %s", id)
		}
	}
	if rec.auth[0] != "" {
		t.Errorf("sent an Authorization header without a key: %q", rec.auth[0])
	}
	n := rec.inputs
	if n != 1+len(ix.Cards()) {
		t.Errorf("first draft embedded %d texts, want the description and %d skills", n, len(ix.Cards()))
	}
	if _, err := ix.DraftAdvised(context.Background(), "Reads tickets.", c); err != nil {
		t.Fatal(err)
	}
	if rec.inputs != n+1 {
		t.Errorf("second draft embedded %d texts, want only the description", rec.inputs-n)
	}
}

// A concurrent use of one Client (the API drafts for several admins) is
// safe; run with -race.
func TestClientConcurrent(t *testing.T) {
	ix := registry(t)
	srv := embeddingsServer(t, &recorded{})
	c, err := personallm.New(personallm.Config{URL: srv.URL + "/v1", Model: "e", Mode: personallm.ModeEmbeddings})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := ix.DraftAdvised(context.Background(), fmt.Sprintf("Reads support tickets, case %d.", i), c)
			if err == nil && p.Advice.Error != "" {
				err = fmt.Errorf("%s", p.Advice.Error)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// ParseChat accepts the object alone or in one json code fence, and
// nothing looser.
func TestParseChatStrict(t *testing.T) {
	answer := func(content string) []byte {
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": content}}}})
		return b
	}
	for _, ok := range []string{
		`{"skills": [{"name": "crm-read", "reason": "reads accounts"}, "mail-send"]}`,
		"```json\n{\"skills\": [{\"name\": \"crm-read\", \"reason\": \"reads accounts\"}, \"mail-send\"]}\n```",
		"```\n{\"skills\": [{\"name\": \"crm-read\", \"reason\": \"reads accounts\"}, \" mail-send \"]}\n```",
	} {
		got, err := personallm.ParseChat(answer(ok))
		want := []persona.AdvisedSkill{{Name: "crm-read", Reason: "reads accounts"}, {Name: "mail-send"}}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseChat(%q) = %v, %v; want %v", ok, got, err, want)
		}
	}
	for _, bad := range []string{
		`Here you go: {"skills": ["crm-read"]}`,
		`{"skills": ["crm-read"]} thanks`,
		"```yaml\nskills: [crm-read]\n```",
		`{"skills": "crm-read"}`,
		`{"skills": [42]}`,
		`{"skills": [""]}`,
		`{"skills": [{"reason": "no name"}]}`,
		`{"skills": [` + strings.Repeat(`"s",`, 64) + `"s"]}`,
	} {
		if got, err := personallm.ParseChat(answer(bad)); err == nil {
			t.Errorf("ParseChat(%q) = %v, want an error", bad, got)
		}
	}
}

// A redirect is not followed: the key goes to the configured server only,
// and the draft is the offline one.
func TestChatRedirectNotFollowed(t *testing.T) {
	elsewhere := &recorded{}
	other := chatServer(t, elsewhere, `{"skills": ["helpdesk-admin"]}`)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c, err := personallm.New(personallm.Config{URL: redirect.URL + "/v1", Model: "m", APIKeyFile: keyFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := registry(t).DraftAdvised(context.Background(), "Reads support tickets.", c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Advice == nil || !strings.Contains(p.Advice.Error, "307") {
		t.Errorf("advice %+v, want the redirect reported as an error", p.Advice)
	}
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if len(elsewhere.auth) != 0 {
		t.Errorf("the redirect target got %d requests (Authorization %q)", len(elsewhere.auth), elsewhere.auth)
	}
}
