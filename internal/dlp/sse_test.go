package dlp

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSSERewriter(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{
		{Categories: []Category{PCI}, Direction: "response", Action: ActionRedact},
		{Categories: []Category{Secrets}, Direction: "response", Action: ActionBlock},
	}}})
	stream := "event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"card 4111 1111 1111 1111\"}]}}\n\n" +
		": keep-alive comment\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"text\":\"key -----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\"}}\n\n" +
		"data: plain text 5555 5555 5555 4444\n\n"
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 20; round++ {
		var out bytes.Buffer
		var verdicts []Verdict
		w := e.NewSSERewriter(Flow{}, Response, &out, func(v Verdict) { verdicts = append(verdicts, v) })
		for p := 0; p < len(stream); {
			n := min(len(stream)-p, 1+r.IntN(40))
			if _, err := w.Write([]byte(stream[p : p+n])); err != nil {
				t.Fatal(err)
			}
			p += n
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		events := strings.Split(strings.TrimSuffix(out.String(), "\n\n"), "\n\n")
		if len(events) != 4 {
			t.Fatalf("got %d events:\n%s", len(events), out.String())
		}
		if !strings.HasPrefix(events[0], "event: message\nid: 1\ndata: ") || !strings.Contains(events[0], "[REDACTED:card-visa]") || strings.Contains(events[0], "4111") {
			t.Errorf("event 1: %q", events[0])
		}
		if events[1] != ": keep-alive comment" {
			t.Errorf("comment changed: %q", events[1])
		}
		var blocked struct {
			ID    int `json:"id"`
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(events[2], "data: ")), &blocked); err != nil || blocked.ID != 8 || blocked.Error.Code != BlockedCode || !strings.Contains(blocked.Error.Message, "openssh-private-key") {
			t.Errorf("blocked event: %q (%v)", events[2], err)
		}
		if strings.Contains(out.String(), "AAAA") {
			t.Error("blocked key leaked")
		}
		if events[3] != "data: plain text [REDACTED:card-mastercard]" {
			t.Errorf("text event: %q", events[3])
		}
		if len(verdicts) != 3 || verdicts[1].Decision != Block {
			t.Errorf("verdicts: %+v", verdicts)
		}
	}
	// an event that never ends is refused once it passes the limit
	w := e.NewSSERewriter(Flow{}, Response, &bytes.Buffer{}, nil)
	w.max = 1024
	if _, err := w.Write(bytes.Repeat([]byte("data: x"), 300)); err == nil {
		t.Error("oversized event accepted")
	}
}
