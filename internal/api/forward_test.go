package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// racingCluster is the real raft node with two additions: concurrent
// writes that commit just before the next proposed command (as another
// admin's would), and, with wire set, the leader's outcome carried through
// the state package's wire encoding, as a write forwarded from a follower
// comes back.
type racingCluster struct {
	t      testing.TB
	node   *cluster.Node
	store  *state.Store
	wire   bool
	before []*state.Command
}

func (r *racingCluster) Status() cluster.Status { return r.node.Status() }

func (r *racingCluster) Apply(ctx context.Context, cmd []byte) (any, error) {
	for _, c := range r.before {
		p, _, err := r.store.Prepare(c, state.Node{})
		if err != nil {
			r.t.Fatalf("concurrent write: %v", err)
		}
		b, _ := p.Encode()
		if _, err := r.node.Apply(ctx, b); err != nil {
			r.t.Fatalf("concurrent write: %v", err)
		}
	}
	r.before = nil
	resp, err := r.node.Apply(ctx, cmd)
	if !r.wire {
		return resp, err
	}
	res, _ := resp.(*state.Result)
	b, encErr := state.EncodeOutcome(state.Outcome{Result: res, Err: err})
	if encErr != nil {
		r.t.Fatalf("encode outcome: %v", encErr)
	}
	o, decErr := state.DecodeOutcome(b)
	if decErr != nil {
		r.t.Fatalf("decode outcome: %v", decErr)
	}
	if o.Err != nil {
		return nil, o.Err
	}
	return o.Result, nil
}

// TestForwardedWriteAnswersLikeALocalOne runs the same writes — successes,
// and refusals that only the state machine can give because a concurrent
// write committed first — on a node that applies locally and on one whose
// outcomes cross the wire encoding, and checks that the admin sees the same
// status and body from both.
func TestForwardedWriteAnswersLikeALocalOne(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var answers [2][]string
	for i, wire := range []bool{false, true} {
		rc := &racingCluster{t: t, wire: wire}
		f := newFixture(t, func(c *Config) {
			rc.node, rc.store = c.Cluster.(*cluster.Node), c.Store
			c.Cluster = rc
			c.Now = func() time.Time { return now }
		})
		record := func(r response) { answers[i] = append(answers[i], r.line()) }

		record(f.applyFiles(ApplyFile{Name: "e.yaml", Content: example(t)}))
		// The skill a new persona names is deleted meanwhile: 422, located in the file.
		extra := "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: spare}\nspec: {tools: [{tool: helpdesk/x}]}\n"
		record(f.applyFiles(ApplyFile{Name: "spare.yaml", Content: extra}))
		rc.before = []*state.Command{{Op: state.OpDelete, Time: now, Kind: state.KindSkill, Name: "spare"}}
		record(f.applyFiles(ApplyFile{Name: "p.yaml", Content: "apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: second}\nspec:\n  skills: [read-tickets, spare]\n"}))
		// A skill gets a user meanwhile: 409.
		record(f.applyFiles(ApplyFile{Name: "spare.yaml", Content: extra}))
		docs, err := state.ParseDocuments("x.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: third}\nspec: {skills: [spare]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		rc.before = []*state.Command{{Op: state.OpApply, Time: now, Documents: []state.Document{state.EncodeDocument(docs[0])}}}
		record(f.do(http.MethodDelete, "/v1/skills/spare", "", nil))
		// The agent is deleted meanwhile: 404.
		rc.before = []*state.Command{{Op: state.OpDelete, Time: now, Kind: state.KindAgent, Name: "triage-bot"}}
		record(f.do(http.MethodPost, "/v1/agents/triage-bot/keys", "application/json", nil))
		// The persona starts pinning keys meanwhile: the plain 422.
		record(f.applyFiles(ApplyFile{Name: "e.yaml", Content: example(t)}))
		pinned := strings.Replace(example(t), "skills: [read-tickets]", "skills: [read-tickets]\n  network: {pinTokensToIP: true}", 1)
		pdocs, err := state.ParseDocuments("x.yaml", []byte(pinned))
		if err != nil {
			t.Fatal(err)
		}
		rc.before = []*state.Command{{Op: state.OpApply, Time: now, Documents: []state.Document{state.EncodeDocument(pdocs[2])}}}
		record(f.do(http.MethodPost, "/v1/agents/triage-bot/keys", "application/json", nil))
		// Plain refusals and successes.
		record(f.do(http.MethodDelete, "/v1/personas/nobody", "", nil))
		record(f.do(http.MethodDelete, "/v1/agents/triage-bot", "", nil))
	}
	want := []string{"200", "200", "422", "200", "409", "404", "200", "422", "404", "200"}
	for i := range answers[0] {
		if !strings.HasPrefix(answers[0][i], want[i]+" ") {
			t.Errorf("request %d (local): %s, want status %s", i+1, answers[0][i], want[i])
		}
		if answers[0][i] != answers[1][i] {
			t.Errorf("request %d answers differ:\n local     %s\n forwarded %s", i+1, answers[0][i], answers[1][i])
		}
	}
	if !strings.Contains(answers[0][2], `"file":"p.yaml","document":1,"line":5`) {
		t.Errorf("a reference broken meanwhile is not located in the file: %s", answers[0][2])
	}
	t.Logf("answers: %q", answers[0])
}

// line is the whole answer: status and body.
func (r response) line() string { return strconv.Itoa(r.status) + " " + string(r.raw) }

// TestEndpointThatCannotBindIsRefused checks that the node's facts reach
// validation: a persona endpoint on this node's own gateway port is refused
// with the file and line, and nothing is applied.
func TestEndpointThatCannotBindIsRefused(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Node = state.Node{Listeners: []state.Listener{{Name: "gateway", Addr: "127.0.0.1:8443"}}, LoopbackOnly: true}
	})
	doc := strings.Replace(example(t), "skills: [read-tickets]", "skills: [read-tickets]\n  endpoint: {listen: \"127.0.0.1:8443\"}", 1)
	r := f.applyFiles(ApplyFile{Name: "e.yaml", Content: doc})
	if r.status != 422 || !strings.Contains(string(r.raw), `e.yaml:22: document 3 (Persona support-triage): spec.endpoint.listen: 127.0.0.1:8443 would take this node's gateway listener (127.0.0.1:8443); choose another port`) {
		t.Fatalf("endpoint on the gateway port: %s", r.line())
	}
	doc = strings.Replace(doc, "127.0.0.1:8443", "10.77.0.1:9001", 1)
	if r := f.applyFiles(ApplyFile{Name: "e.yaml", Content: doc}); r.status != 422 || !strings.Contains(string(r.raw), "development node, which serves persona endpoints on loopback only") {
		t.Fatalf("non-loopback endpoint on a dev node: %s", r.line())
	}
	if len(f.store.Current().Personas) != 0 {
		t.Fatal("a refused apply changed the state")
	}
}
