package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestApplyHaltsOnWhatItCannotRead checks that an entry this binary cannot
// represent exactly stops the store rather than being skipped or applied
// in part: a newer format, an unknown field or operation in a V1 command,
// an unknown field in a V1 document.
func TestApplyHaltsOnWhatItCannotRead(t *testing.T) {
	for _, c := range []struct{ name, data string }{
		{"newer format", `{"v":4,"op":"key.revoke","time":"2026-12-01T00:00:00Z","keyID":"k"}`},
		{"behaviour operation in V2", `{"v":2,"op":"agent.release","time":"2026-12-01T00:00:00Z","name":"a"}`},
		{"sequence rule in V2", `{"v":2,"op":"apply","time":"2026-12-01T00:00:00Z","documents":[{"apiVersion":"portcullis/v1","kind":"SequenceRule","metadata":{"name":"r"},"spec":{}}]}`},
		{"cluster operation in V1", `{"v":1,"op":"cluster.token.use","time":"2026-12-01T00:00:00Z","keyID":"k","name":"n2"}`},
		{"format not a number", `{"v":"1","op":"key.revoke","time":"2026-12-01T00:00:00Z","keyID":"k"}`},
		{"unknown command field", `{"v":1,"op":"key.revoke","time":"2026-12-01T00:00:00Z","keyID":"k","reason":"x"}`},
		{"unknown operation", `{"v":1,"op":"persona.teleport","time":"2026-12-01T00:00:00Z"}`},
		{"unknown spec field", `{"v":1,"op":"apply","time":"2026-12-01T00:00:00Z","documents":[{"apiVersion":"portcullis/v1","kind":"Agent","metadata":{"name":"a"},"spec":{"persona":"p","quota":3}}]}`},
		{"unknown kind", `{"v":1,"op":"apply","time":"2026-12-01T00:00:00Z","documents":[{"apiVersion":"portcullis/v1","kind":"Wizard","metadata":{"name":"a"},"spec":{}}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewStore(nil)
			if _, err := applyCmd(t, s, 1, &Command{Op: OpSecretPut, Secret: &Secret{Name: "tok", Version: 1, Sealed: []byte("fake")}}); err != nil {
				t.Fatal(err)
			}
			before := s.Current()
			err, _ := s.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte(c.data)}).(error)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Apply: %v, want ErrUnsupported", err)
			}
			select {
			case <-s.Halted():
			default:
				t.Fatal("store did not halt")
			}
			if !errors.Is(s.Err(), ErrUnsupported) || !strings.Contains(s.Err().Error(), "raft entry 2") {
				t.Fatalf("Err() = %v", s.Err())
			}
			// Nothing applies any more, not even a valid entry.
			next, _, _ := s.Prepare(&Command{Op: OpSecretDelete, Name: "tok"}, Node{})
			b, _ := next.Encode()
			if _, ok := s.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: b}).(error); !ok || s.Current() != before {
				t.Fatal("a halted store applied an entry")
			}
		})
	}
}

// TestV1AppliesOnlyWhatItWasGiven checks that a V1 entry is applied without
// document validation (a stricter binary must not refuse what was
// committed), while the state-dependent rules still decide.
func TestV1AppliesOnlyWhatItWasGiven(t *testing.T) {
	s := NewStore(nil)
	// The name breaks today's rules; Prepare would refuse it, Apply does not judge.
	data := `{"v":1,"op":"apply","time":"2026-12-01T00:00:00Z","documents":[{"apiVersion":"portcullis/v1","kind":"Upstream","metadata":{"name":"Legacy_Name-"},"spec":{"url":"ftp://old"}}]}`
	if r, ok := s.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte(data)}).(*Result); !ok || r.Changes[0].Action != "created" {
		t.Fatalf("V1 apply: %v", r)
	}
	if s.Current().Upstreams["Legacy_Name-"] == nil {
		t.Fatal("not applied")
	}
	// A reference that does not hold at apply time is still refused.
	data = `{"v":1,"op":"apply","time":"2026-12-01T00:00:00Z","documents":[{"apiVersion":"portcullis/v1","kind":"Agent","metadata":{"name":"a"},"spec":{"persona":"gone"}}]}`
	err, _ := s.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte(data)}).(error)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `persona "gone" does not exist`) {
		t.Fatalf("dangling reference: %v", err)
	}
}

// TestPrepareRefusesWhatApplyWould checks that Prepare stamps the current
// format and refuses, without changing anything, what Apply would refuse.
func TestPrepareRefusesWhatApplyWould(t *testing.T) {
	s := NewStore(nil)
	cmd := &Command{Op: OpKeyCreate, Time: time.Unix(1700000000, 0), Key: &APIKey{ID: "k", Agent: "ghost", Hash: make([]byte, 32)}}
	if _, _, err := s.Prepare(cmd, Node{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key for a missing agent: %v", err)
	}
	if _, _, err := s.Prepare(&Command{Op: "persona.teleport"}, Node{}); !errors.Is(err, ErrMalformed) || err.Error() != `unknown command "persona.teleport"` {
		t.Fatalf("unknown op: %v", err)
	}
	if _, _, err := s.Prepare(&Command{Op: OpGeoIPImport, GeoIP: []byte("nope")}, Node{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad geoip: %v", err)
	}
	if s.Current().Index != 0 {
		t.Fatal("Prepare changed the state")
	}
	p, res, err := s.Prepare(&Command{Op: OpSecretPut, Secret: &Secret{Name: "a", Version: 1, Sealed: []byte("x")}}, Node{})
	if err != nil || p.V != V1 || res.Changes[0].Action != "created" || len(s.Current().Secrets) != 0 {
		t.Fatalf("Prepare: %+v %+v %v", p, res, err)
	}
}

func TestPersonaEndpointMustBeBindable(t *testing.T) {
	node := Node{
		Listeners:    []Listener{{"gateway", "127.0.0.1:8443"}, {"admin", ":9443"}, {"raft", "localhost:9444"}},
		LoopbackOnly: true,
	}
	for _, c := range []struct{ listen, want string }{
		{"127.0.0.1:8443", "127.0.0.1:8443 would take this node's gateway listener (127.0.0.1:8443); choose another port"},
		{"127.0.0.2:9443", "would take this node's admin listener (:9443)"},
		{"[::1]:9444", "would take this node's raft listener (localhost:9444)"},
		{"10.77.0.1:9001", "10.77.0.1:9001: this is a development node, which serves persona endpoints on loopback only (e.g. 127.0.0.1:9001)"},
		{"127.0.0.1:9001", ""},
		{"127.0.0.2:8443", ""}, // another address, same port: binds
	} {
		doc := "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [], endpoint: {listen: \"" + c.listen + "\"}}\n"
		objs, err := ParseDocuments("p.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = NewStore(nil).Prepare(&Command{Op: OpApply, Documents: []Document{EncodeDocument(objs[0])}}, node)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.listen, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Errors[0].Field != "spec.endpoint.listen" || ve.Errors[0].Kind != KindPersona || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant %q", c.listen, err, c.want)
		}
	}
	// Without node facts (the zero Node) nothing node-specific is checked.
	objs, _ := ParseDocuments("p.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [], endpoint: {listen: \"10.77.0.1:8443\"}}\n"))
	if _, _, err := NewStore(nil).Prepare(&Command{Op: OpApply, Documents: []Document{EncodeDocument(objs[0])}}, Node{}); err != nil {
		t.Fatal(err)
	}
}

func TestOutcomeRoundTrip(t *testing.T) {
	s := NewStore(nil)
	if _, err := applyObjs(t, s, 1, mustParse(t, "testdata/example.yaml")...); err != nil {
		t.Fatal(err)
	}
	_, inUse := applyCmd(t, s, 2, &Command{Op: OpDelete, Kind: KindPersona, Name: "support-triage"})
	_, notFound := applyCmd(t, s, 3, &Command{Op: OpDelete, Kind: KindAgent, Name: "nope"})
	_, invalid := applyObjs(t, NewStore(nil), 1, mustParse(t, "testdata/example.yaml")[1:]...)
	_, conflict := applyCmd(t, s, 4, &Command{Op: OpSecretPut, Secret: &Secret{Name: "a", Version: 7, Sealed: []byte("x")}})
	_, bad := applyCmd(t, s, 5, &Command{Op: OpGeoIPImport, GeoIP: []byte("x")})
	for _, err := range []error{inUse, notFound, invalid, conflict, bad} {
		if err == nil {
			t.Fatal("expected a refusal")
		}
		b, encErr := EncodeOutcome(Outcome{Err: err})
		if encErr != nil {
			t.Fatal(encErr)
		}
		got, decErr := DecodeOutcome(b)
		if decErr != nil {
			t.Fatal(decErr)
		}
		if got.Result != nil || got.Err == nil || got.Err.Error() != err.Error() {
			t.Fatalf("%v came back as %+v", err, got)
		}
		for _, sentinel := range []error{ErrNotFound, ErrInUse, ErrConflict, ErrMalformed, ErrUnsupported} {
			if errors.Is(err, sentinel) != errors.Is(got.Err, sentinel) {
				t.Errorf("%v: errors.Is(%v) differs after the round trip", err, sentinel)
			}
		}
		var ve, gve *ValidationError
		if errors.As(err, &ve) != errors.As(got.Err, &gve) || (ve != nil && !reflect.DeepEqual(ve, gve)) {
			t.Errorf("%v: validation error differs after the round trip: %+v", err, gve)
		}
	}
	res, _ := applyCmd(t, s, 6, &Command{Op: OpSecretPut, Secret: &Secret{Name: "a", Version: 1, Sealed: []byte("x")}})
	b, _ := EncodeOutcome(Outcome{Result: res})
	got, err := DecodeOutcome(b)
	if err != nil || got.Err != nil || !reflect.DeepEqual(got.Result, res) {
		t.Fatalf("result came back as %+v, %v", got, err)
	}
	plain, _ := EncodeOutcome(Outcome{Err: errors.New("disk on fire")})
	if got, err := DecodeOutcome(plain); err != nil || got.Err.Error() != "disk on fire" || errors.Is(got.Err, ErrNotFound) {
		t.Fatalf("other error: %+v %v", got, err)
	}
	for _, bad := range []string{``, `{"error":{"code":"nope","message":"x"}}`, `{"error":{"code":"invalid","message":"x"}}`, `{"result":{"index":1},"error":{"code":"conflict","message":"x"}}`} {
		if _, err := DecodeOutcome([]byte(bad)); err == nil {
			t.Errorf("DecodeOutcome(%s) accepted", bad)
		}
	}
}

func FuzzDecodeOutcome(f *testing.F) {
	f.Add([]byte(`{"result":{"index":3,"changes":[{"kind":"Agent","name":"a","action":"created"}]}}`))
	f.Add([]byte(`{"error":{"code":"invalid","message":"m","problems":[{"file":"f","doc":1,"line":2,"kind":"Agent","name":"a","field":"spec","msg":"x"}]}}`))
	f.Add([]byte(`{"error":{"code":"conflict","message":"secret \"a\" changed"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOutcome(b)
		if err != nil {
			return
		}
		// Whatever decodes encodes again to the same outcome.
		again, err := EncodeOutcome(o)
		if err != nil {
			t.Fatal(err)
		}
		o2, err := DecodeOutcome(again)
		if err != nil {
			t.Fatalf("re-encoded outcome does not decode: %v", err)
		}
		if (o.Err == nil) != (o2.Err == nil) || (o.Err != nil && o.Err.Error() != o2.Err.Error()) || !reflect.DeepEqual(o.Result, o2.Result) {
			t.Fatalf("outcome changed: %+v vs %+v", o, o2)
		}
	})
}
