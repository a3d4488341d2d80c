package state

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func mustParse(t *testing.T, file string) []Object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseDocuments(file, b)
	if err != nil {
		t.Fatalf("ParseDocuments: %v", err)
	}
	return objs
}

func applyObjs(t *testing.T, s *Store, idx uint64, objs ...Object) (*Result, error) {
	t.Helper()
	cmd := &Command{Op: OpApply, Time: time.Unix(1700000000, 0).UTC()}
	for _, o := range objs {
		cmd.Documents = append(cmd.Documents, EncodeDocument(o))
	}
	return applyCmd(t, s, idx, cmd)
}

// applyCmd proposes cmd as the API does: Prepare validates it against the
// current state, and the prepared command is applied as raft entry idx.
func applyCmd(t *testing.T, s *Store, idx uint64, cmd *Command) (*Result, error) {
	t.Helper()
	prepared, _, err := s.Prepare(cmd, Node{})
	if err != nil {
		return nil, err
	}
	want := map[bool]int{false: V1, true: V2}[clusterOp(cmd.Op)]
	if cmd.Op == OpAuditBatch || behaviourOp(cmd.Op) || hasKind(cmd.Documents, KindSequenceRule) {
		want = V3
	}
	if prepared.V != want {
		t.Fatalf("prepared command has format %d, want %d", prepared.V, want)
	}
	b, err := prepared.Encode()
	if err != nil {
		t.Fatal(err)
	}
	switch r := s.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(type) {
	case *Result:
		return r, nil
	case error:
		return nil, r
	default:
		t.Fatalf("Apply returned %T", r)
	}
	return nil, nil
}

func TestParseExample(t *testing.T) {
	objs := mustParse(t, "testdata/example.yaml")
	if len(objs) != 4 {
		t.Fatalf("got %d objects, want 4", len(objs))
	}
	sk := objs[1].(*Skill)
	if sk.Name != "read-tickets" || len(sk.Tools) != 2 || sk.Tools[1].Args["project"] == nil || len(sk.Tools[1].Args["project"].In) != 2 {
		t.Fatalf("skill decoded wrong: %+v", sk)
	}
	s := NewStore(nil)
	res, err := applyObjs(t, s, 1, objs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 4 || res.Changes[0].Action != "created" {
		t.Fatalf("changes: %+v", res.Changes)
	}
	// Applying the same thing again changes nothing.
	res, err = applyObjs(t, s, 2, objs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Changes {
		if c.Action != "unchanged" {
			t.Fatalf("re-apply: %+v", res.Changes)
		}
	}
	if got := s.Current().Personas["support-triage"].Created; !got.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("created = %v", got)
	}
}

func TestParseErrorsArePrecise(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: a}\nspec:\n  url: http://x/mcp\n  urll: y\n",
			[]string{"f.yaml:6: document 1 (Upstream a): spec.urll: unknown field"}},
		{"bad constraint", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: h}\nspec: {url: http://x}\n---\napiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec:\n  tools:\n    - tool: h/a\n    - tool: h/b\n      args: {project: {in: []}}\n",
			[]string{"document 2 (Skill s): spec.tools[1].args.project.in: must list at least one value"}},
		{"type mismatch", "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: read}\n",
			[]string{"spec.skills: must be a list, got a string"}},
		{"bad regex", "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec:\n  tools: [{tool: h/a, args: {q: {regex: \"(\"}}}]\n",
			[]string{"spec.tools[0].args.q.regex: invalid RE2 expression"}},
		{"bad kind", "apiVersion: portcullis/v1\nkind: Wizard\nmetadata: {name: p}\nspec: {}\n", []string{"f.yaml:2: document 1 (p): kind: unknown kind \"Wizard\""}},
		{"bad version", "apiVersion: v2\nkind: Agent\nmetadata: {name: p}\nspec: {persona: x}\n", []string{"apiVersion: unsupported \"v2\""}},
		{"bad name", "apiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: Bad/Name}\nspec: {persona: x}\n", []string{"metadata.name: \"Bad/Name\" is not a valid name"}},
		{"tool identity", "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec: {tools: [{tool: justatool}]}\n", []string{"spec.tools[0].tool: \"justatool\" must be \"<upstream>/<tool>\""}},
		{"yaml syntax", "apiVersion: portcullis/v1\nkind: [\n", []string{"invalid YAML"}},
		{"duplicate", "apiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: a}\nspec: {persona: x}\n---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: a}\nspec: {persona: y}\n", []string{"document 2 (Agent a): metadata.name: duplicate: document 1"}},
		{"empty", "", []string{"no documents found"}},
		{"scalar doc", "hello\n", []string{"a document must be a mapping"}},
		{"duplicate key", "apiVersion: portcullis/v1\nkind: Agent\nkind: Agent\n", []string{"duplicate key"}},
		{"min NaN", "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec:\n  tools: [{tool: h/a, args: {q: {min: .nan}}}]\n",
			[]string{"f.yaml:5: document 1 (Skill s): spec.tools[0].args.q.min: .nan is not a number (NaN); give a finite number"}},
		{"max out of range", "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec:\n  tools: [{tool: h/a, args: {q: {max: 1e400}}}]\n",
			[]string{"spec.tools[0].args.q.max: 1e400 is out of range (a number must lie within ±1.8e308)"}},
		{"min infinite", "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec:\n  tools: [{tool: h/a, args: {q: {min: -.inf}}}]\n",
			[]string{"spec.tools[0].args.q.min: -.inf is infinite; give a finite number"}},
		{"NaN in a list", "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec:\n  tools: [{tool: h/a, args: {q: {in: [1, .NaN]}}}]\n",
			[]string{"spec.tools[0].args.q.in[1]: .NaN is not a number (NaN)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := ParseDocuments("f.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error; objs=%v", objs)
			}
			if objs != nil {
				t.Fatalf("objects returned with an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestJSONNumberOutOfRange(t *testing.T) {
	_, err := DecodeDocument([]byte(`{"apiVersion":"portcullis/v1","kind":"Skill","metadata":{"name":"s"},"spec":{"tools":[{"tool":"h/a","args":{"q":{"min":-1e400}}}]}}`))
	if err == nil || !strings.Contains(err.Error(), "spec.tools[0].args.q.min: -1e400 is out of range") {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	s := NewStore(nil)
	objs := mustParse(t, "testdata/example.yaml")
	// Without the upstream, the skill's reference is dangling: nothing applies.
	_, err := applyObjs(t, s, 1, objs[1:]...)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	if !strings.Contains(err.Error(), `spec.tools[0].tool: upstream "helpdesk" does not exist`) {
		t.Fatalf("error: %v", err)
	}
	if n := len(s.Current().Skills) + len(s.Current().Personas) + len(s.Current().Agents); n != 0 {
		t.Fatalf("half-applied: %d objects", n)
	}
}

func TestDeleteRefusesReferencedObjects(t *testing.T) {
	s := NewStore(nil)
	if _, err := applyObjs(t, s, 1, mustParse(t, "testdata/example.yaml")...); err != nil {
		t.Fatal(err)
	}
	_, err := applyCmd(t, s, 2, &Command{Op: OpDelete, Kind: KindPersona, Name: "support-triage"})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "Agent triage-bot") {
		t.Fatalf("delete persona in use: %v", err)
	}
	_, err = applyCmd(t, s, 3, &Command{Op: OpDelete, Kind: KindAgent, Name: "nope"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	key := &APIKey{ID: "k1", Agent: "triage-bot", Hash: bytes.Repeat([]byte{1}, 32)}
	if _, err := applyCmd(t, s, 4, &Command{Op: OpKeyCreate, Key: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 5, &Command{Op: OpDelete, Kind: KindAgent, Name: "triage-bot"}); err != nil {
		t.Fatal(err)
	}
	if len(s.Current().Keys) != 0 {
		t.Fatal("deleting an agent must remove its keys")
	}
	if _, err := applyCmd(t, s, 6, &Command{Op: OpDelete, Kind: KindPersona, Name: "support-triage"}); err != nil {
		t.Fatal(err)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { return nil }

func TestSnapshotRoundTrip(t *testing.T) {
	s := NewStore(nil)
	if _, err := applyObjs(t, s, 7, mustParse(t, "testdata/example.yaml")...); err != nil {
		t.Fatal(err)
	}
	key := &APIKey{ID: "k1", Agent: "triage-bot", Hash: bytes.Repeat([]byte{2}, 32), PinIP: "10.0.0.1"}
	if _, err := applyCmd(t, s, 8, &Command{Op: OpKeyCreate, Key: key}); err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	r := NewStore(nil)
	ch, cancel := r.Subscribe()
	defer cancel()
	if err := r.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("restore did not notify subscribers")
	}
	got := r.Current()
	if got.Index != 8 || got.Skills["read-tickets"].Tools[1].Args["project"].In[0] != "SUPPORT" || got.Keys["k1"].PinIP != "10.0.0.1" || got.Agents["triage-bot"].Revision != 7 {
		t.Fatalf("restored state differs: %+v", got)
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"persona": KindPersona, "Personas": KindPersona, "upstreams": KindUpstream, "AGENT": KindAgent} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseKind("wizards"); err == nil {
		t.Error("ParseKind(wizards) succeeded")
	}
}

func FuzzParseDocuments(f *testing.F) {
	b, _ := os.ReadFile("testdata/example.yaml")
	f.Add(b)
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec: {tools: [{tool: h/a, args: {x: {fields: {y: {min: 1, max: 0}}}}}]}\n"))
	f.Add([]byte("{\"apiVersion\": 1}"))
	f.Add([]byte("items: [{apiVersion: portcullis/v1, kind: Agent, metadata: {name: a}, spec: {persona: p}}, ~, *x]\n---\nitems: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := ParseDocuments("fuzz.yaml", data)
		if err != nil && objs != nil {
			t.Fatal("objects returned with an error")
		}
		for _, o := range objs {
			// Whatever parses must survive the round trip through a command.
			s := NewStore(nil)
			cmd := &Command{Op: OpApply, Documents: []Document{EncodeDocument(o)}}
			prepared, _, err := s.Prepare(cmd, Node{})
			if err != nil {
				continue // a reference to a missing object
			}
			b, _ := prepared.Encode()
			if err, ok := s.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: b}).(error); ok {
				t.Fatalf("prepared command refused by Apply: %v", err)
			}
		}
	})
}

// TestParseDocumentsAcceptsItemsList checks that a list as `get KIND -o
// json` prints it ({"items": [...]}) applies again, each item counting as a
// document, with errors located in the item.
func TestParseDocumentsAcceptsItemsList(t *testing.T) {
	list := `{
  "items": [
    {"apiVersion": "portcullis/v1", "kind": "Upstream", "metadata": {"name": "a", "revision": 3}, "spec": {"url": "http://127.0.0.1:1/mcp"}},
    {"apiVersion": "portcullis/v1", "kind": "Upstream", "metadata": {"name": "b"}, "spec": {"url": "http://127.0.0.1:2/mcp"}}
  ]
}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: c}
spec: {persona: p}
`
	objs, err := ParseDocuments("l.json", []byte(list))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, string(o.Kind())+"/"+o.Metadata().Name)
	}
	if strings.Join(names, " ") != "Upstream/a Upstream/b Agent/c" {
		t.Fatalf("objects: %v", names)
	}
	bad := "items:\n  - apiVersion: portcullis/v1\n    kind: Upstream\n    metadata: {name: a}\n    spec: {url: \"http://h/\"}\n  - apiVersion: portcullis/v1\n    kind: Upstream\n    metadata: {name: b}\n    spec: {url: x}\n  - apiVersion: portcullis/v1\n    kind: Upstream\n    metadata: {name: a}\n    spec: {url: \"http://h/\"}\n"
	_, err = ParseDocuments("l.yaml", []byte(bad))
	for _, want := range []string{"l.yaml:9: document 2 (Upstream b): spec.url", "document 3 (Upstream a): metadata.name: duplicate: document 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\n does not contain %q", err, want)
		}
	}
	// A bare JSON list of documents is read the same way.
	arr := `[{"apiVersion": "portcullis/v1", "kind": "Agent", "metadata": {"name": "x"}, "spec": {"persona": "p"}},
 {"apiVersion": "portcullis/v1", "kind": "Agent", "metadata": {"name": "y"}, "spec": {"persona": 7}}]`
	if _, err := ParseDocuments("a.json", []byte(arr)); err == nil || !strings.Contains(err.Error(), "a.json:2: document 2 (Agent y): spec.persona: must be a string") {
		t.Fatalf("bare list: %v", err)
	}
	if objs, err := ParseDocuments("a.json", []byte(strings.Replace(arr, "7", `"p"`, 1))); err != nil || len(objs) != 2 {
		t.Fatalf("bare list: %d objects, %v", len(objs), err)
	}
	// Anything besides items keeps the mapping a document of its own.
	if _, err := ParseDocuments("x.yaml", []byte("items: []\nkind: Agent\n")); err == nil || !strings.Contains(err.Error(), "items: unknown field") {
		t.Fatalf("items beside other keys: %v", err)
	}
}
