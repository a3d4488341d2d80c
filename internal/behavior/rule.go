package behavior

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// CEL cost bounds of a rule's condition. MaxConditionCost is what the
// checker's worst-case estimate may reach when the rule is applied (with
// every string, list and map of the call assumed at most
// assumedInputSize); the same figure is the runtime limit, so a condition
// that got past the estimate still stops at it (and then does not fire).
const (
	MaxConditionCost = 10_000
	assumedInputSize = 256
)

// rule is one compiled SequenceRule.
type rule struct {
	id       uint64 // name and revision: an unchanged rule keeps its counts
	spec     *state.SequenceRule
	personas []string // nil: every persona
	session  bool     // counted per session, not per agent
	skills   []string
	after    []glob
	then     []glob
	egress   string
	within   time.Duration
	cond     cel.Program
}

var ruleSeed = maphash.MakeSeed()

// celEnv declares what a condition sees: call (a map: tool, upstream,
// skill, args, egress, agent, persona, session) and count (the calls
// matching after in the window).
var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("call", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("count", cel.IntType),
	)
	if err != nil {
		panic(err) // a fixed declaration: cannot fail
	}
	return env
}()

// compileCondition parses, type-checks and cost-checks a CEL condition.
func compileCondition(src string) (cel.Program, error) {
	ast, iss := celEnv.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("does not compile: %s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("must be a boolean expression, not %s", ast.OutputType())
	}
	est, err := celEnv.EstimateCost(ast, sizeBound{})
	if err != nil {
		return nil, fmt.Errorf("cost cannot be estimated: %v", err)
	}
	if est.Max > MaxConditionCost {
		return nil, fmt.Errorf("too expensive: its worst-case cost is %d, the limit %d (avoid nested comprehensions over call.args)", est.Max, MaxConditionCost)
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(MaxConditionCost), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("does not compile: %v", err)
	}
	return prg, nil
}

// sizeBound tells the cost estimator how large a call's values may be.
type sizeBound struct{}

func (sizeBound) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.ComputedSize() != nil {
		return nil
	}
	return &cost.SizeEstimate{Min: 0, Max: assumedInputSize}
}

func (sizeBound) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// compileRule builds r's matcher. Its errors name the field; state
// validated the rest.
func compileRule(r *state.SequenceRule) (*rule, *state.FieldError) {
	out := &rule{spec: r, session: r.Scope == "session", skills: r.After.Skills,
		egress: r.Then.Egress, within: time.Duration(r.After.Within)}
	if len(r.Personas) > 0 {
		out.personas = r.Personas
	}
	var h maphash.Hash
	h.SetSeed(ruleSeed)
	fmt.Fprintf(&h, "%s\x00%d", r.Name, r.Revision)
	out.id = h.Sum64()
	for _, t := range r.After.Tools {
		out.after = append(out.after, glob(t))
	}
	for _, t := range r.Then.Tools {
		out.then = append(out.then, glob(t))
	}
	if r.Condition != "" {
		prg, err := compileCondition(r.Condition)
		if err != nil {
			return nil, &state.FieldError{Field: "spec.condition", Msg: err.Error()}
		}
		out.cond = prg
	}
	return out, nil
}

// ValidateRule is the admin API's extra check of an applied object (the
// state machine cannot compile CEL): a SequenceRule's condition must
// compile, be boolean and stay under MaxConditionCost.
func ValidateRule(o state.Object) []*state.FieldError {
	r, ok := o.(*state.SequenceRule)
	if !ok || r.Condition == "" {
		return nil
	}
	if _, fe := compileRule(r); fe != nil {
		return []*state.FieldError{fe}
	}
	return nil
}

func (r *rule) watches(persona string) bool {
	return r.personas == nil || slices.Contains(r.personas, persona)
}

// counts reports whether a passed call feeds the rule's window.
func (r *rule) counts(upstream, tool, skill string) bool {
	if len(r.skills) > 0 {
		return skill != "" && slices.Contains(r.skills, skill)
	}
	return matchAny(r.after, upstream, tool)
}

// judges reports whether the rule judges a call to upstream/tool.
func (r *rule) judges(upstream, tool, egress string) bool {
	if r.egress != "" {
		return egress == r.egress || (r.egress == "internal" && egress == "")
	}
	return matchAny(r.then, upstream, tool)
}

// glob is a tool identity pattern "<upstream>/<tool>", '*' matching any
// run of characters.
type glob string

func matchAny(gs []glob, upstream, tool string) bool {
	for _, g := range gs {
		if g.match(upstream, tool) {
			return true
		}
	}
	return false
}

func (g glob) match(upstream, tool string) bool {
	up, name, _ := strings.Cut(string(g), "/")
	return wildcard(up, upstream) && wildcard(name, tool)
}

// wildcard matches s against p where '*' matches any run of characters
// (linear time: the classic greedy match with one backtrack point).
func wildcard(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
