package state

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const ruleBase = "apiVersion: portcullis/v1\nkind: SequenceRule\nmetadata: {name: r}\nspec:\n"

func TestSequenceRuleValidates(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"no after", "  then: {egress: external}\n  action: block\n", "spec.after: name the skills or the tools"},
		{"both after", "  after: {skills: [a], tools: [u/x], count: 2, within: 1m}\n  then: {egress: external}\n  action: block\n", "spec.after: set skills or tools, not both"},
		{"count overflow", "  after: {skills: [a], count: 2000000, within: 1m}\n  then: {egress: external}\n  action: block\n", "spec.after.count: 2000000 overflows the per-agent counters"},
		{"window overflow", "  after: {skills: [a], count: 2, within: 200h}\n  then: {egress: external}\n  action: block\n", "spec.after.within: 200h0m0s overflows the counters' window"},
		{"no window", "  after: {skills: [a], count: 2}\n  then: {egress: external}\n  action: block\n", "spec.after.within: required"},
		{"bad duration", "  after: {skills: [a], count: 2, within: ten}\n  then: {egress: external}\n  action: block\n", "spec.after.within"},
		{"bad tool", "  after: {tools: [nourl], count: 2, within: 1m}\n  then: {egress: external}\n  action: block\n", "spec.after.tools[0]: \"nourl\" must be \"<upstream>/<tool>\""},
		{"bad skill", "  after: {skills: [Bad Skill], count: 2, within: 1m}\n  then: {egress: external}\n  action: block\n", "spec.after.skills[0]"},
		{"egress", "  after: {skills: [a], count: 2, within: 1m}\n  then: {egress: space}\n  action: block\n", "spec.then.egress: unknown egress \"space\""},
		{"then both", "  after: {skills: [a], count: 2, within: 1m}\n  then: {egress: external, tools: [u/x]}\n  action: block\n", "spec.then: set tools or egress, not both"},
		{"action", "  after: {skills: [a], count: 2, within: 1m}\n  then: {egress: external}\n  action: explode\n", "spec.action: unknown action \"explode\""},
		{"hold timeout", "  after: {skills: [a], count: 2, within: 1m}\n  then: {egress: external}\n  action: block\n  holdTimeout: 1m\n", "spec.holdTimeout: applies only to action hold"},
		{"scope", "  after: {skills: [a], count: 2, within: 1m}\n  then: {egress: external}\n  action: block\n  scope: galaxy\n", "spec.scope: unknown scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDocuments("r.yaml", []byte(ruleBase+c.spec))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestSequenceRuleReferencesAndReplication(t *testing.T) {
	s := NewStore(nil)
	objs, err := ParseDocuments("f.yaml", []byte(`apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec: {url: "http://h"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec: {tools: [{tool: helpdesk/get_ticket}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support}
spec: {skills: [read-tickets]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := applyObjs(t, s, 1, objs...); err != nil {
		t.Fatal(err)
	}
	rule := func(persona, skill string) []Object {
		o, err := ParseDocuments("r.yaml", []byte(ruleBase+"  personas: ["+persona+"]\n  after: {skills: ["+skill+"], count: 200, within: 10m}\n  then: {egress: external}\n  action: block\n"))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if _, err := applyObjs(t, s, 2, rule("sales", "read-tickets")...); err == nil || !strings.Contains(err.Error(), `spec.personas[0]: persona "sales" does not exist`) {
		t.Fatalf("unknown persona: %v", err)
	}
	if _, err := applyObjs(t, s, 3, rule("support", "write-tickets")...); err == nil || !strings.Contains(err.Error(), `spec.after.skills[0]: skill "write-tickets" does not exist`) {
		t.Fatalf("unknown skill: %v", err)
	}
	if _, err := applyObjs(t, s, 4, rule("support", "read-tickets")...); err != nil {
		t.Fatal(err)
	}
	if r := s.Current().SequenceRules["r"]; r == nil || r.After.Count != 200 || time.Duration(r.After.Within) != 10*time.Minute {
		t.Fatalf("rule not stored: %+v", r)
	}
	if _, err := applyCmd(t, s, 5, &Command{Op: OpDelete, Kind: KindPersona, Name: "support"}); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "SequenceRule r") {
		t.Fatalf("delete referenced persona: %v", err)
	}

	now := time.Unix(1700000000, 0).UTC()
	q := &Command{Op: OpAgentQuarantine, Time: now, Quarantine: &Quarantine{Agent: "bot", Reason: "runaway", Rule: "default:storm", Node: "n1"}}
	if _, err := applyCmd(t, s, 6, q); err != nil {
		t.Fatal(err)
	}
	ap := &Approval{ID: "abcd1234", Agent: "bot", Tool: "mail/send", Rule: "r", Reason: "x", Expires: now.Add(time.Minute), State: ApprovalPending}
	if _, err := applyCmd(t, s, 7, &Command{Op: OpApprovalPut, Time: now, Approval: ap}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 8, &Command{Op: OpApprovalDecide, Time: now.Add(2 * time.Minute), Approval: &Approval{ID: "abcd1234", State: ApprovalApproved}}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("late approval: %v", err)
	}
	if _, err := applyCmd(t, s, 9, &Command{Op: OpApprovalDecide, Time: now.Add(time.Second), Approval: &Approval{ID: "abcd1234", State: ApprovalDenied, DecidedBy: "admin"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 10, &Command{Op: OpApprovalDecide, Time: now.Add(2 * time.Second), Approval: &Approval{ID: "abcd1234", State: ApprovalApproved}}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already denied") {
		t.Fatalf("second decision: %v", err)
	}

	// A snapshot carries the rule, the quarantine and the approval.
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	s2 := NewStore(nil)
	if err := s2.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	c2 := s2.Current()
	if c2.SequenceRules["r"] == nil || c2.Quarantines["bot"] == nil || c2.Quarantines["bot"].Since != now || c2.Approvals["abcd1234"].State != ApprovalDenied {
		t.Fatalf("restored: rules %v quarantines %v approvals %v", c2.SequenceRules, c2.Quarantines, c2.Approvals)
	}

	if _, err := applyCmd(t, s, 11, &Command{Op: OpAgentRelease, Name: "bot"}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 12, &Command{Op: OpAgentRelease, Name: "bot"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second release: %v", err)
	}
	// Decided approvals are pruned an hour after they expired.
	ap2 := *ap
	ap2.ID, ap2.Expires = "efgh5678", now.Add(3*time.Hour)
	if _, err := applyCmd(t, s, 13, &Command{Op: OpApprovalPut, Time: now.Add(2 * time.Hour), Approval: &ap2}); err != nil {
		t.Fatal(err)
	}
	if s.Current().Approvals["abcd1234"] != nil {
		t.Fatal("an approval expired two hours ago is still listed")
	}
	_ = raft.Log{}
}

func FuzzSequenceRule(f *testing.F) {
	f.Add(ruleBase + "  after: {skills: [a], count: 200, within: 10m}\n  then: {egress: external}\n  action: block\n")
	f.Add(ruleBase + "  after: {tools: [\"u/*\"], count: 1, within: 1s}\n  then: {tools: [\"m/send_*\"]}\n  action: hold\n  holdTimeout: 30s\n  condition: \"count > 3\"\n")
	f.Add(ruleBase + "  after: {skills: [a], count: -1, within: -5m}\n  then: {}\n  action: \"\"\n")
	f.Fuzz(func(t *testing.T, doc string) {
		objs, err := ParseDocuments("f.yaml", []byte(doc))
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("error is not a ValidationError with problems: %v", err)
			}
			return
		}
		for _, o := range objs {
			r, ok := o.(*SequenceRule)
			if !ok {
				continue
			}
			if r.After.Count < 1 || r.After.Count > MaxSequenceCount || time.Duration(r.After.Within) < time.Second || time.Duration(r.After.Within) > MaxSequenceWindow {
				t.Fatalf("accepted a rule with an out-of-range window: %+v", r.After)
			}
			// What is accepted round-trips through its document.
			if _, err := DecodeDocument(mustJSON(t, EncodeDocument(o))); err != nil {
				t.Fatalf("accepted rule does not decode again: %v", err)
			}
		}
	})
}

func mustJSON(t *testing.T, d Document) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
