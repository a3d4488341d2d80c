package mcp

import (
	"encoding/json"
	"testing"
)

func TestDuplicateKey(t *testing.T) {
	for _, c := range []struct {
		doc, path string
		dup       bool
	}{
		{`{"project":"SUPPORT"}`, "", false},
		{`{"project":"SUPPORT","project":"HR"}`, "project", true},
		{`{"a":{"owner":"me","owner":"you"}}`, "a.owner", true},
		{`{"items":[{"id":1},{"id":2,"id":3}]}`, "items[1].id", true},
		{`{"a":{"x":1},"b":{"x":1}}`, "", false},
		{`[1,2,{"k":1,"k":2}]`, "[2].k", true},
		{`"just a string"`, "", false},
		{`{"broken":`, "", false},
	} {
		p, dup := DuplicateKey([]byte(c.doc))
		if dup != c.dup || p != c.path {
			t.Errorf("DuplicateKey(%s) = %q, %v; want %q, %v", c.doc, p, dup, c.path, c.dup)
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"a":[{"b":{"c":1,"c":1}}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, dup := DuplicateKey(doc)
		var m map[string]any
		if dup && json.Unmarshal(doc, &m) != nil {
			var v any
			if json.Unmarshal(doc, &v) != nil {
				t.Fatalf("duplicate reported in invalid JSON %q", doc)
			}
		}
	})
}
