package state

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Behaviour state (command format V3): the SequenceRule kind, which admins
// apply like any other document, and two tables that internal/behavior
// writes when it acts on an agent, both rare and small enough for raft:
//
//   - Quarantines: agents refused on every node until an admin releases
//     them (`portcullis agent release AGENT`).
//   - Approvals: calls held for a human decision
//     (`portcullis approvals list|approve ID|deny ID`); the node that holds
//     the call watches its approval until it is decided or expires.

// KindSequenceRule matches an order of calls over a time window, e.g. 200
// reads of support tickets followed by an external-egress tool.
const KindSequenceRule Kind = "SequenceRule"

// Behaviour operations (format V3).
const (
	OpAgentQuarantine Op = "agent.quarantine" // add Quarantine (unchanged if present)
	OpAgentRelease    Op = "agent.release"    // remove the quarantine of agent Name
	OpApprovalPut     Op = "approval.put"     // add a pending Approval (its ID must be new)
	// OpApprovalDecide sets the State (approved, denied, expired) of the
	// pending approval Approval.ID; refused when it is no longer pending.
	OpApprovalDecide Op = "approval.decide"
)

// V3 adds the behaviour kind and operations; Prepare proposes V3 only for
// them, so a node not yet upgraded keeps applying everything else.
const V3 = 3

func behaviourOp(op Op) bool {
	switch op {
	case OpAgentQuarantine, OpAgentRelease, OpApprovalPut, OpApprovalDecide:
		return true
	}
	return false
}

// Sequence rule vocabulary.
var (
	SequenceActions = []string{"block", "hold", "stop", "quarantine"}
	SequenceScopes  = []string{"agent", "session"}
)

// Bounds of a sequence rule (a window must fit the per-agent counters).
const (
	MaxSequenceCount  = 1_000_000
	MaxSequenceWindow = 7 * 24 * time.Hour
	MaxHoldTimeout    = time.Hour
	MaxConditionBytes = 4096
	maxRulePatterns   = 64
)

// SequenceRule: when a call matching Then arrives and, within After.Within
// before it, at least After.Count calls matching After passed (per agent,
// or per session with scope: session), and Condition (CEL) holds, Action
// is taken on the call.
type SequenceRule struct {
	Meta        `json:"-"`
	Description string `json:"description,omitempty"`
	// Personas the rule watches; empty: every persona.
	Personas []string `json:"personas,omitempty"`
	// Scope counts per "agent" (default, across its sessions) or "session".
	Scope string        `json:"scope,omitempty"`
	After SequenceAfter `json:"after"`
	Then  SequenceThen  `json:"then"`
	// Condition is an optional CEL expression over call (tool, upstream,
	// skill, args, egress, agent, persona, session) and count (the calls
	// matching After in the window); the rule fires only when it is true.
	Condition string `json:"condition,omitempty"`
	// Action is block, hold (for a human approval), stop (the session) or
	// quarantine (the agent, cluster-wide).
	Action string `json:"action"`
	// HoldTimeout bounds a hold (default 5m); an undecided call is denied.
	HoldTimeout Duration `json:"holdTimeout,omitzero"`
}

// SequenceAfter is what must have happened before: Count calls to tools of
// one of Skills (the skill whose grant allowed the call), or to tools
// matching Tools ("<upstream>/<tool>", * wildcards), within Within.
type SequenceAfter struct {
	Skills []string `json:"skills,omitempty"`
	Tools  []string `json:"tools,omitempty"`
	Count  int      `json:"count"`
	Within Duration `json:"within"`
}

// SequenceThen is the call the rule judges: a tool matching Tools, or any
// tool of an upstream whose egress is Egress ("external").
type SequenceThen struct {
	Tools  []string `json:"tools,omitempty"`
	Egress string   `json:"egress,omitempty"`
}

// Kind implements Object.
func (r *SequenceRule) Kind() Kind { return KindSequenceRule }

// WindowText renders the rule's After part for people: "200 calls to skill
// read-tickets within 10m0s".
func (r *SequenceRule) WindowText(count int) string {
	what := "skill"
	list := r.After.Skills
	if len(list) == 0 {
		what, list = "tool", r.After.Tools
	}
	if len(list) > 1 {
		what += "s"
	}
	return fmt.Sprintf("%d calls to %s %s within %s", count, what, strings.Join(list, ", "), time.Duration(r.After.Within))
}

// ThenText renders the rule's Then part: "an external-egress tool".
func (r *SequenceRule) ThenText() string {
	if r.Then.Egress != "" {
		return "an " + r.Then.Egress + "-egress tool"
	}
	return "tool " + strings.Join(r.Then.Tools, ", ")
}

// Quarantine is an agent refused on every node until released.
type Quarantine struct {
	Agent  string    `json:"agent"`
	Reason string    `json:"reason"`
	Rule   string    `json:"rule,omitempty"` // the rule or default protection that acted
	Node   string    `json:"node,omitempty"` // the node that saw it
	Since  time.Time `json:"since,omitzero"` // set by the FSM
}

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
)

// Approval is one held call awaiting a human decision.
type Approval struct {
	ID      string    `json:"id"`
	Agent   string    `json:"agent"`
	Persona string    `json:"persona,omitempty"`
	Session string    `json:"session,omitempty"`
	Tool    string    `json:"tool"` // "<upstream>/<tool>"
	Rule    string    `json:"rule"`
	Reason  string    `json:"reason"`
	Node    string    `json:"node,omitempty"` // the node holding the call
	Created time.Time `json:"created,omitzero"`
	Expires time.Time `json:"expires"`
	State   string    `json:"state"`
	// DecidedBy says who decided ("admin", "timeout").
	DecidedBy string    `json:"decidedBy,omitempty"`
	Decided   time.Time `json:"decided,omitzero"`
}

// approvalGrace keeps decided and expired approvals listed this long.
const approvalGrace = time.Hour

func validateSequenceRule(errs *errList, o *SequenceRule) {
	if len(o.Description) > 4096 {
		errs.add("spec.description", "longer than 4096 characters")
	}
	for i, p := range o.Personas {
		if err := ValidateName(p); err != nil {
			errs.add(fmt.Sprintf("spec.personas[%d]", i), "%v", err)
		}
	}
	if o.Scope != "" && !slices.Contains(SequenceScopes, o.Scope) {
		errs.add("spec.scope", "unknown scope %q (want agent or session)", o.Scope)
	}
	a := o.After
	switch {
	case len(a.Skills) == 0 && len(a.Tools) == 0:
		errs.add("spec.after", "name the skills or the tools whose calls are counted")
	case len(a.Skills) > 0 && len(a.Tools) > 0:
		errs.add("spec.after", "set skills or tools, not both")
	case len(a.Skills)+len(a.Tools) > maxRulePatterns:
		errs.add("spec.after", "at most %d skills or tools", maxRulePatterns)
	}
	for i, s := range a.Skills {
		if err := ValidateName(s); err != nil {
			errs.add(fmt.Sprintf("spec.after.skills[%d]", i), "%v", err)
		}
	}
	for i, t := range a.Tools {
		if err := validateIdentity(t, "tool"); err != nil {
			errs.add(fmt.Sprintf("spec.after.tools[%d]", i), "%v", err)
		}
	}
	switch {
	case a.Count < 1:
		errs.add("spec.after.count", "must be at least 1")
	case a.Count > MaxSequenceCount:
		errs.add("spec.after.count", "%d overflows the per-agent counters; at most %d", a.Count, MaxSequenceCount)
	}
	switch w := time.Duration(a.Within); {
	case w <= 0:
		errs.add("spec.after.within", "required: a window such as 10m")
	case w < time.Second:
		errs.add("spec.after.within", "%s is shorter than the counters' resolution; at least 1s", w)
	case w > MaxSequenceWindow:
		errs.add("spec.after.within", "%s overflows the counters' window; at most %s (7 days)", w, MaxSequenceWindow)
	}
	t := o.Then
	switch {
	case len(t.Tools) == 0 && t.Egress == "":
		errs.add("spec.then", "name the tools or the egress (external) of the calls the rule judges")
	case len(t.Tools) > 0 && t.Egress != "":
		errs.add("spec.then", "set tools or egress, not both")
	case len(t.Tools) > maxRulePatterns:
		errs.add("spec.then.tools", "at most %d tools", maxRulePatterns)
	}
	for i, tl := range t.Tools {
		if err := validateIdentity(tl, "tool"); err != nil {
			errs.add(fmt.Sprintf("spec.then.tools[%d]", i), "%v", err)
		}
	}
	switch t.Egress {
	case "", "external", "internal":
	default:
		errs.add("spec.then.egress", "unknown egress %q (want external or internal)", t.Egress)
	}
	if len(o.Condition) > MaxConditionBytes {
		errs.add("spec.condition", "longer than %d bytes", MaxConditionBytes)
	}
	if !slices.Contains(SequenceActions, o.Action) {
		errs.add("spec.action", "unknown action %q (want one of %s)", o.Action, strings.Join(SequenceActions, ", "))
	}
	if h := time.Duration(o.HoldTimeout); h != 0 {
		switch {
		case o.Action != "hold":
			errs.add("spec.holdTimeout", "applies only to action hold")
		case h < time.Second || h > MaxHoldTimeout:
			errs.add("spec.holdTimeout", "%s: want between 1s and %s", h, MaxHoldTimeout)
		}
	}
}

// checkSequenceRefs reports the personas, skills and upstreams a rule
// names that s does not hold.
func checkSequenceRefs(s *Snapshot, o *SequenceRule, errs *errList) {
	for i, p := range o.Personas {
		if s.Personas[p] == nil {
			errs.add(fmt.Sprintf("spec.personas[%d]", i), "persona %q does not exist", p)
		}
	}
	for i, sk := range o.After.Skills {
		if s.Skills[sk] == nil {
			errs.add(fmt.Sprintf("spec.after.skills[%d]", i), "skill %q does not exist", sk)
		}
	}
	for _, l := range []struct {
		p     string
		tools []string
	}{{"spec.after.tools", o.After.Tools}, {"spec.then.tools", o.Then.Tools}} {
		for i, t := range l.tools {
			up, _, _ := strings.Cut(t, "/")
			if s.Upstreams[up] == nil {
				errs.add(fmt.Sprintf("%s[%d]", l.p, i), "upstream %q does not exist", up)
			}
		}
	}
}

// sequenceReferrers lists the rules of s that name kind/name.
func sequenceReferrers(s *Snapshot, kind Kind, name string) []string {
	var out []string
	for _, r := range s.SequenceRules {
		uses := false
		switch kind {
		case KindPersona:
			uses = slices.Contains(r.Personas, name)
		case KindSkill:
			uses = slices.Contains(r.After.Skills, name)
		case KindUpstream:
			for _, t := range slices.Concat(r.After.Tools, r.Then.Tools) {
				up, _, _ := strings.Cut(t, "/")
				uses = uses || up == name
			}
		}
		if uses {
			out = append(out, "SequenceRule "+r.Name)
		}
	}
	return out
}

func validateBehaviourCommand(cmd *Command) error {
	switch cmd.Op {
	case OpAgentQuarantine:
		q := cmd.Quarantine
		if q == nil || ValidateName(q.Agent) != nil || q.Reason == "" || len(q.Reason) > 4096 {
			return malformed("agent.quarantine: a quarantine needs an agent name and a reason (at most 4096 bytes)")
		}
	case OpAgentRelease:
		if ValidateName(cmd.Name) != nil {
			return &ValidationError{Errors: []*FieldError{{Field: "agent", Msg: fmt.Sprintf("%q is not an agent name", cmd.Name)}}}
		}
	case OpApprovalPut:
		a := cmd.Approval
		if a == nil || !validApprovalID(a.ID) || a.Agent == "" || a.Tool == "" || a.Rule == "" || a.Expires.IsZero() || a.State != ApprovalPending || len(a.Reason) > 4096 {
			return malformed("approval.put: an approval needs an id, agent, tool, rule, expiry and the pending state")
		}
	case OpApprovalDecide:
		a := cmd.Approval
		if a == nil || !validApprovalID(a.ID) {
			return malformed("approval.decide: malformed approval id")
		}
		switch a.State {
		case ApprovalApproved, ApprovalDenied, ApprovalExpired:
		default:
			return malformed("approval.decide: state %q (want approved, denied or expired)", a.State)
		}
	}
	return nil
}

func validApprovalID(id string) bool {
	if len(id) < 4 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// applyBehaviour applies a V3 behaviour command.
func applyBehaviour(cur *Snapshot, cmd *Command, index uint64) (*Snapshot, *Result, error) {
	next := cur.clone()
	next.Index = index
	switch cmd.Op {
	case OpAgentQuarantine:
		if cur.Quarantines[cmd.Quarantine.Agent] != nil {
			return cur, changed(index, "Quarantine", cmd.Quarantine.Agent, "unchanged"), nil
		}
		q := *cmd.Quarantine
		q.Since = cmd.Time
		next.Quarantines[q.Agent] = &q
		return next, changed(index, "Quarantine", q.Agent, "created"), nil
	case OpAgentRelease:
		if cur.Quarantines[cmd.Name] == nil {
			return nil, nil, fmt.Errorf("agent %q is not quarantined: %w", cmd.Name, ErrNotFound)
		}
		delete(next.Quarantines, cmd.Name)
		return next, changed(index, "Quarantine", cmd.Name, "deleted"), nil
	case OpApprovalPut:
		if cur.Approvals[cmd.Approval.ID] != nil {
			return nil, nil, fmt.Errorf("approval %q: %w", cmd.Approval.ID, ErrConflict)
		}
		pruneApprovals(next, cmd.Time)
		a := *cmd.Approval
		a.Created = cmd.Time
		next.Approvals[a.ID] = &a
		return next, changed(index, "Approval", a.ID, "created"), nil
	case OpApprovalDecide:
		old := cur.Approvals[cmd.Approval.ID]
		switch {
		case old == nil:
			return nil, nil, fmt.Errorf("approval %q: %w", cmd.Approval.ID, ErrNotFound)
		case old.State != ApprovalPending:
			return nil, nil, fmt.Errorf("approval %q was already %s: %w", old.ID, old.State, ErrConflict)
		case cmd.Approval.State != ApprovalExpired && !cmd.Time.Before(old.Expires):
			return nil, nil, fmt.Errorf("approval %q expired at %s (the call was denied): %w", old.ID, old.Expires.UTC().Format(time.RFC3339), ErrConflict)
		}
		pruneApprovals(next, cmd.Time)
		a := *old
		a.State, a.DecidedBy, a.Decided = cmd.Approval.State, cmd.Approval.DecidedBy, cmd.Time
		next.Approvals[a.ID] = &a
		return next, changed(index, "Approval", a.ID, "updated"), nil
	}
	return nil, nil, fmt.Errorf("command format %d: operation %q: %w", cmd.V, cmd.Op, ErrUnsupported)
}

// pruneApprovals drops approvals that expired more than approvalGrace
// before now (deterministically: now is the command's time).
func pruneApprovals(s *Snapshot, now time.Time) {
	for id, a := range s.Approvals {
		if now.Sub(a.Expires) > approvalGrace {
			delete(s.Approvals, id)
		}
	}
}
