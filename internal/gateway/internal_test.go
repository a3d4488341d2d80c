package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestModernResult(t *testing.T) {
	tests := []struct {
		in        string
		cacheable bool
		want      map[string]string
	}{
		{`{}`, false, map[string]string{"resultType": `"complete"`}},
		{`{"content":[]}`, false, map[string]string{"resultType": `"complete"`, "content": `[]`}},
		{`{"resultType":"input_required","requestState":"x"}`, false, map[string]string{"resultType": `"input_required"`}},
		{` { "contents" : [] } `, true, map[string]string{"resultType": `"complete"`, "ttlMs": `0`, "cacheScope": `"private"`}},
		{`{"contents":[],"ttlMs":5000,"cacheScope":"public","resultType":"complete"}`, true, map[string]string{"ttlMs": `5000`, "cacheScope": `"public"`}},
	}
	for _, tt := range tests {
		out := modernResult(json.RawMessage(tt.in), tt.cacheable)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("modernResult(%s) = %s: not JSON: %v", tt.in, out, err)
		}
		for k, v := range tt.want {
			if string(m[k]) != v {
				t.Errorf("modernResult(%s)[%s] = %s, want %s", tt.in, k, m[k], v)
			}
		}
	}
}

func TestNameAssignment(t *testing.T) {
	var a nameAssigner
	long := strings.Repeat("x", 80)
	got := []string{
		a.assign("helpdesk", "helpdesk", "get ticket"),
		a.assign("", "old", "helpdesk_get_ticket"), // collides with the first
		a.assign("svc.v2", "svc", "list/items"),
		a.assign("p", "p", long),
		a.assign("", "e", ""),
	}
	if got[0] != "helpdesk_get_ticket" {
		t.Errorf("clean name = %q", got[0])
	}
	if got[1] == got[0] || !strings.HasPrefix(got[1], "helpdesk_get_ticket_") {
		t.Errorf("collision not resolved: %q", got[1])
	}
	if got[2] != "svc_v2_list_items" {
		t.Errorf("sanitized = %q", got[2])
	}
	for _, n := range got {
		if len(n) == 0 || len(n) > 64 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Errorf("invalid exposed name %q", n)
		}
	}
	// Deterministic: the same offers give the same names.
	var b nameAssigner
	again := []string{
		b.assign("helpdesk", "helpdesk", "get ticket"),
		b.assign("", "old", "helpdesk_get_ticket"),
		b.assign("svc.v2", "svc", "list/items"),
		b.assign("p", "p", long),
		b.assign("", "e", ""),
	}
	for i := range got {
		if got[i] != again[i] {
			t.Errorf("name %d not deterministic: %q vs %q", i, got[i], again[i])
		}
	}
}

func TestSessionSeal(t *testing.T) {
	key := make([]byte, 32)
	key[0] = 1
	s, err := newSealer(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &session{Persona: "p", Agent: "a", KeyID: "k", Rev: "2025-11-25", Nonce: "n", Issued: 1, Caps: json.RawMessage(`{"x":"` + strings.Repeat("y", 5000) + `","elicitation":{}}`)}
	id := s.sealSession(st)
	if len(id) > 1024 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		t.Fatalf("session id %d bytes or not visible ASCII: %q", len(id), id)
	}
	got, err := s.openSession(id)
	if err != nil || got.Persona != "p" || !hasCap(got.Caps, "elicitation") {
		t.Fatalf("open = %+v, %v", got, err)
	}
	// Rotation: a new key still opens handles sealed with the previous one.
	key2 := make([]byte, 32)
	s2, _ := newSealer(key2, [][]byte{key})
	if _, err := s2.openSession(id); err != nil {
		t.Fatalf("previous key: %v", err)
	}
	s3, _ := newSealer(key2, nil)
	if _, err := s3.openSession(id); err == nil {
		t.Fatal("opened with the wrong key")
	}
	for _, bad := range []string{"", "!!!", id[:10], id + "A"} {
		if _, err := s.openSession(bad); err == nil {
			t.Errorf("opened %q", bad)
		}
	}
}

func FuzzOpenSession(f *testing.F) {
	s, _ := newSealer(make([]byte, 32), nil)
	f.Add(s.sealSession(&session{Persona: "p"}))
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, id string) {
		_, _ = s.openSession(id)
	})
}
