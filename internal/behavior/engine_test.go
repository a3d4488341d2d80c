package behavior

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// fsm is a real state.Store applied to directly (one node, no network):
// propose prepares and applies the command as raft would.
type fsm struct {
	*state.Store
	mu  sync.Mutex
	idx uint64
}

func newFSM(t testing.TB, yaml string) *fsm {
	f := &fsm{Store: state.NewStore(nil)}
	if yaml != "" {
		objs, err := state.ParseDocuments("t.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		cmd := &state.Command{Op: state.OpApply, Time: time.Now().UTC()}
		for _, o := range objs {
			cmd.Documents = append(cmd.Documents, state.EncodeDocument(o))
		}
		if err := f.propose(context.Background(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fsm) propose(_ context.Context, cmd *state.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _, err := f.Prepare(cmd, state.Node{})
	if err != nil {
		return err
	}
	b, err := p.Encode()
	if err != nil {
		return err
	}
	f.idx++
	if err, ok := f.Apply(&raft.Log{Index: f.idx, Type: raft.LogCommand, Data: b}).(error); ok {
		return err
	}
	return nil
}

const world = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "http://h", egress: internal}
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: mail}
spec: {url: "http://m", egress: external}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec: {tools: [{tool: helpdesk/get_ticket}]}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: email}
spec: {tools: [{tool: mail/send}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support}
spec: {skills: [read-tickets, email]}
`

func ruleYAML(name, action, extra string) string {
	return "---\napiVersion: portcullis/v1\nkind: SequenceRule\nmetadata: {name: " + name + "}\nspec:\n  personas: [support]\n" +
		"  after: {skills: [read-tickets], count: 200, within: 10m}\n  then: {egress: external}\n  action: " + action + "\n" + extra
}

func newEngine(t testing.TB, f *fsm) *Engine {
	e, err := New(Config{State: f, Propose: f.propose, Node: "n1", HoldTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func read(agent string, i int) *gateway.BehaviourCall {
	return &gateway.BehaviourCall{Agent: agent, Persona: "support", Session: "s-" + agent, Method: "tools/call",
		Upstream: "helpdesk", Tool: "get_ticket", Skill: "read-tickets", Egress: "internal", Args: map[string]any{"id": fmt.Sprint(i)}}
}

func email(agent string) *gateway.BehaviourCall {
	return &gateway.BehaviourCall{Agent: agent, Persona: "support", Session: "s-" + agent, Method: "tools/call",
		Upstream: "mail", Tool: "send", Skill: "email", Egress: "external", Args: map[string]any{"to": "x@example.com"}}
}

// call judges c and, if it passes, observes it as allowed (ok result).
func call(e *Engine, c *gateway.BehaviourCall) gateway.BehaviourVerdict {
	v := e.Judge(context.Background(), c)
	d := &gateway.Decision{Decision: gateway.Allow}
	if v.Deny {
		d = &gateway.Decision{Decision: gateway.Deny, Verdicts: []gateway.Verdict{{Stage: gateway.StageBehaviour, Outcome: gateway.Deny}}}
	}
	e.Observe(c, d, json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`), false)
	return v
}

func TestReadThenExfiltrateBlocked(t *testing.T) {
	f := newFSM(t, world+ruleYAML("read-then-email", "block", ""))
	e := newEngine(t, f)
	for i := range 199 {
		if v := call(e, read("bot", i)); v.Deny {
			t.Fatalf("read %d refused: %s", i, v.Reason)
		}
	}
	if v := call(e, email("bot")); v.Deny {
		t.Fatalf("email after 199 reads refused: %s", v.Reason)
	}
	if v := call(e, read("bot", 199)); v.Deny {
		t.Fatalf("read 200 refused: %s", v.Reason)
	}
	v := call(e, email("bot"))
	want := "refused by sequence rule read-then-email: 200 calls to skill read-tickets within 10m0s, then an external-egress tool"
	if !v.Deny || v.Reason != want {
		t.Fatalf("email after 200 reads: %+v\nwant %q", v, want)
	}
	if v := call(e, read("bot", 201)); v.Deny {
		t.Fatalf("a read after the refusal refused: %s", v.Reason)
	}
	// Another agent of the same persona has its own count.
	if v := call(e, email("other")); v.Deny {
		t.Fatalf("another agent refused: %s", v.Reason)
	}
}

func TestQuarantineRuleIsClusterWideAndReleased(t *testing.T) {
	f := newFSM(t, world+ruleYAML("read-then-email", "quarantine", ""))
	e := newEngine(t, f)
	for i := range 200 {
		call(e, read("bot", i))
	}
	v := call(e, email("bot"))
	if !v.Deny || !strings.Contains(v.Reason, "the agent is quarantined") {
		t.Fatalf("email: %+v", v)
	}
	waitFor(t, func() bool { return f.Current().Quarantines["bot"] != nil })
	// A second node's engine on the same state refuses the agent too.
	other := newEngine(t, f)
	if v := other.Judge(context.Background(), read("bot", 1)); !v.Deny || !strings.Contains(v.Reason, "portcullis agent release bot") {
		t.Fatalf("other node: %+v", v)
	}
	if err := f.propose(context.Background(), &state.Command{Op: state.OpAgentRelease, Time: time.Now().UTC(), Name: "bot"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !e.Judge(context.Background(), read("bot", 1)).Deny })
}

func TestHoldApprovedDeniedAndTimedOut(t *testing.T) {
	f := newFSM(t, world+ruleYAML("read-then-email", "hold", "  holdTimeout: 1s\n"))
	e := newEngine(t, f)
	for i := range 200 {
		call(e, read("bot", i))
	}
	decide := func(st string) {
		waitFor(t, func() bool { return pending(f) != "" })
		id := pending(f)
		if err := f.propose(context.Background(), &state.Command{Op: state.OpApprovalDecide, Time: time.Now().UTC(), Approval: &state.Approval{ID: id, State: st, DecidedBy: "admin"}}); err != nil {
			t.Error(err)
		}
	}
	go decide(state.ApprovalApproved)
	if v := e.Judge(context.Background(), email("bot")); v.Deny || !strings.Contains(v.Reason, "held by sequence rule read-then-email") || !strings.Contains(v.Reason, "approved") {
		t.Fatalf("approved hold: %+v", v)
	}
	go decide(state.ApprovalDenied)
	if v := e.Judge(context.Background(), email("bot")); !v.Deny || !strings.Contains(v.Reason, "denied by an admin") {
		t.Fatalf("denied hold: %+v", v)
	}
	v := e.Judge(context.Background(), email("bot"))
	if !v.Deny || !strings.Contains(v.Reason, "not approved within 1s") {
		t.Fatalf("undecided hold: %+v", v)
	}
}

func TestStopEndsOnlyTheSession(t *testing.T) {
	f := newFSM(t, world+ruleYAML("read-then-email", "stop", "  scope: session\n"))
	e := newEngine(t, f)
	for i := range 200 {
		call(e, read("bot", i))
	}
	v := call(e, email("bot"))
	if !v.Deny || !v.EndSession || !strings.Contains(v.Reason, "the session is ended") {
		t.Fatalf("email: %+v", v)
	}
	if v := call(e, read("bot", 1)); !v.Deny || !strings.Contains(v.Reason, "session was stopped") {
		t.Fatalf("the stopped session's next call: %+v", v)
	}
	fresh := read("bot", 1)
	fresh.Session = "s-new"
	if v := call(e, fresh); v.Deny {
		t.Fatalf("a new session of the agent refused: %s", v.Reason)
	}
	fresh = email("bot")
	fresh.Session = "s-new"
	if v := call(e, fresh); v.Deny {
		t.Fatalf("the new session's count starts over, yet refused: %s", v.Reason)
	}
}

func pending(f *fsm) string {
	for id, a := range f.Current().Approvals {
		if a.State == state.ApprovalPending {
			return id
		}
	}
	return ""
}

func TestConditionNarrowsRule(t *testing.T) {
	f := newFSM(t, world+ruleYAML("big-mail", "block", "  condition: \"count >= 200 && call.args.to.endsWith('@example.com')\"\n"))
	e := newEngine(t, f)
	for i := range 250 {
		call(e, read("bot", i))
	}
	c := email("bot")
	c.Args = map[string]any{"to": "boss@corp.internal"}
	if v := call(e, c); v.Deny {
		t.Fatalf("condition false, still refused: %s", v.Reason)
	}
	if v := call(e, email("bot")); !v.Deny {
		t.Fatal("condition true, not refused")
	}
}

func TestValidateRuleCEL(t *testing.T) {
	for _, c := range []struct{ cond, want string }{
		{"count >", "spec.condition: does not compile"},
		{"count + 1", "spec.condition: must be a boolean expression"},
		{"call.args.all(a, call.args.all(b, call.args.all(c, call.args.all(d, true))))", "spec.condition: too expensive"},
		{"nosuchvar == 1", "spec.condition: does not compile"},
	} {
		r := &state.SequenceRule{Condition: c.cond}
		errs := ValidateRule(r)
		if len(errs) != 1 || !strings.Contains(errs[0].Field+": "+errs[0].Msg, c.want) {
			t.Errorf("%q: %v, want %q", c.cond, errs, c.want)
		}
	}
	if errs := ValidateRule(&state.SequenceRule{Condition: "count > 3 && call.tool.startsWith('mail/')"}); errs != nil {
		t.Errorf("good condition refused: %v", errs[0].Msg)
	}
}

// runawayCall is a failing call with a fabricated path.
func runawayCall(i int) *gateway.BehaviourCall {
	return &gateway.BehaviourCall{Agent: "coder", Persona: "support", Session: "s-coder", Method: "tools/call",
		Upstream: "helpdesk", Tool: "get_ticket", Skill: "read-tickets",
		Args: map[string]any{"path": fmt.Sprintf("/src/pkg%d/file_%x.go", i%97, i*7919), "sha": fmt.Sprintf("%040x", i*104729)}}
}

func TestRunawayQuarantinedWithin1000Calls(t *testing.T) {
	f := newFSM(t, world)
	e := newEngine(t, f)
	stopped := 0
	var reason string
	for i := 1; i <= 5000; i++ {
		c := runawayCall(i)
		v := e.Judge(context.Background(), c)
		if v.Deny {
			stopped, reason = i, v.Reason
			break
		}
		e.Observe(c, &gateway.Decision{Decision: gateway.Allow, UpstreamStatus: "ok"}, json.RawMessage(`{"content":[{"type":"text","text":"no such file"}],"isError":true}`), true)
	}
	if stopped == 0 || stopped > 1000 {
		t.Fatalf("runaway not stopped within 1000 calls (stopped at %d)", stopped)
	}
	if !strings.Contains(reason, "runaway: error-retry storm") || !strings.Contains(reason, "expected under 90%") {
		t.Fatalf("reason does not explain the signal: %s", reason)
	}
	t.Logf("stopped at call %d: %s", stopped, reason)
	waitFor(t, func() bool { return f.Current().Quarantines["coder"] != nil })
	if err := f.propose(context.Background(), &state.Command{Op: state.OpAgentRelease, Time: time.Now().UTC(), Name: "coder"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !e.Judge(context.Background(), runawayCall(1)).Deny })
}

func TestNormalRetriesNotQuarantined(t *testing.T) {
	f := newFSM(t, world)
	e := newEngine(t, f)
	// An agent that fails one call in five and retries each failure once,
	// with ids it read from results: never a storm.
	for i := range 3000 {
		c := read("steady", i)
		fail := i%5 == 0
		res := json.RawMessage(fmt.Sprintf(`{"content":[{"type":"text","text":"ticket T-%d next T-%d"}]}`, i, i+1))
		if v := e.Judge(context.Background(), c); v.Deny {
			t.Fatalf("call %d refused: %s", i, v.Reason)
		}
		e.Observe(c, &gateway.Decision{Decision: gateway.Allow}, res, fail)
		if fail {
			e.Observe(c, &gateway.Decision{Decision: gateway.Allow}, res, false)
		}
	}
}

func TestUpstreamOutageIsNotTheAgentsFault(t *testing.T) {
	f := newFSM(t, world)
	e := newEngine(t, f)
	for i := range 2000 {
		c := runawayCall(i)
		c.Agent = "batch"
		if v := e.Judge(context.Background(), c); v.Deny {
			t.Fatalf("call %d of an agent whose upstream is down refused: %s", i, v.Reason)
		}
		e.Observe(c, &gateway.Decision{Decision: gateway.Fail, UpstreamStatus: "unavailable"}, nil, true)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FuzzCondition: any condition text is either refused with a message or
// compiles to a program that evaluates within the cost limit, never panics.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{"count > 3", "call.args.all(a, call.args.all(b, true))", "call.tool.matches('^mail/.*')", "count >", "[1,2,3].map(x, x*2).size() > 2", "'a' * 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		errs := ValidateRule(&state.SequenceRule{Condition: src})
		if len(errs) > 0 {
			if errs[0].Field != "spec.condition" || errs[0].Msg == "" {
				t.Fatalf("refusal without field or message: %+v", errs[0])
			}
			return
		}
		if src == "" {
			return
		}
		r, fe := compileRule(&state.SequenceRule{Condition: src})
		if fe != nil {
			t.Fatalf("validated condition does not compile: %v", fe.Msg)
		}
		e := &Engine{log: slog.New(slog.DiscardHandler)}
		e.condition(r, email("bot"), 7)
	})
}
