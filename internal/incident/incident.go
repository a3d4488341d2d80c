// Package incident writes incident reports from the audit trail: for one
// agent and a time window, what it did (a timeline of what changed, the
// sequence of its calls grouped into runs, with the rule, limit or
// refusal that fired), what data it touched (DLP detectors and counts,
// never values), what the gateway did about it, the policy in force, and
// a root-cause summary a person reads first. A Report renders as JSON,
// as a self-contained HTML page, and as PDF (headless Chromium prints the
// HTML: PrintPDF).
//
// Build is pure: it reads the records it is given (internal/audit) and the
// persona's current definition; the admin API and `portcullis incident
// report` feed it.
package incident

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// ToolError is a Run's outcome for allowed calls whose tool answered with
// an error result.
const ToolError = "tool-error"

// Input is what a report is built from.
type Input struct {
	Agent        string
	Since, Until time.Time
	// Records are the agent's audit records in the window, oldest first
	// (from every node that has them).
	Records []audit.Record
	// Persona and Skills are the agent's persona as the control state has
	// it now, and the skills it names (nil when deleted since).
	Persona *state.Persona
	Skills  map[string]*state.Skill
	// StateIndex is the control state's index now.
	StateIndex uint64
	// Trigger says why the report was made ("on demand", an anomaly, a
	// quarantine, ...).
	Trigger   string
	Generated time.Time
}

// Report is one incident report.
type Report struct {
	Agent     string    `json:"agent"`
	Personas  []string  `json:"personas"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Generated time.Time `json:"generated"`
	Trigger   string    `json:"trigger"`
	// RootCause is the summary: a few sentences, most important first.
	RootCause []string   `json:"rootCause"`
	Totals    Totals     `json:"totals"`
	Timeline  []Event    `json:"timeline"`
	Sequence  []Run      `json:"sequence"`
	Data      []Data     `json:"data"`
	Actions   []Action   `json:"actions"`
	Policy    PolicyNote `json:"policy"`

	failStreak   int // longest run of failed calls in a row, whatever the tool
	failStreakAt time.Time
}

// Totals count the window's calls by outcome.
type Totals struct {
	Calls, Allowed, Denied, Failed, Modified int
	// ToolErrors are allowed calls whose tool answered isError.
	ToolErrors                        int
	Sessions, Tools, Nodes, ClientIPs int
	First, Last                       time.Time `json:",omitzero"`
	// PeakPerMinute is the most calls in one minute, and when.
	PeakPerMinute int       `json:"peakPerMinute"`
	PeakAt        time.Time `json:"peakAt,omitzero"`
}

// Event is one moment worth a line in the timeline.
type Event struct {
	Time time.Time `json:"time"`
	What string    `json:"what"`
	Seq  uint64    `json:"seq,omitempty"` // the audit record it points at
	Node string    `json:"node,omitempty"`
}

// Run is consecutive calls to one tool with one outcome.
type Run struct {
	Tool     string    `json:"tool"`
	Decision string    `json:"decision"`
	Count    int       `json:"count"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Reason is the refusal or failure (the first of the run's), with the
	// stage that decided.
	Reason string `json:"reason,omitempty"`
	Stage  string `json:"stage,omitempty"`
}

// Data is what DLP found of one detector across the window.
type Data struct {
	Detector string   `json:"detector"`
	Category string   `json:"category"`
	Count    int      `json:"count"`
	Tools    []string `json:"tools"`
}

// Action is one thing the gateway did, with how often.
type Action struct {
	Stage  string `json:"stage"`
	What   string `json:"what"` // refused, failed, modified
	Reason string `json:"reason"`
	Count  int    `json:"count"`
	First  time.Time
	Last   time.Time
}

// PolicyNote is the agent's persona as it stands, and the state indexes
// the window's decisions were made under.
type PolicyNote struct {
	Persona     string          `json:"persona"`
	Description string          `json:"description,omitempty"`
	Skills      []SkillNote     `json:"skills"`
	Limits      *state.Limits   `json:"limits,omitempty"`
	DLP         []state.DLPRule `json:"dlp,omitempty"`
	StateIndex  uint64          `json:"stateIndex"`
	Deleted     bool            `json:"deleted"`
}

// SkillNote is one skill of the persona and the tools it grants.
type SkillNote struct {
	Name  string   `json:"name"`
	Tools []string `json:"tools"`
}

// maxRuns and maxEvents bound a report (a runaway of millions of calls
// still reads as a few pages): the longest runs and the first events.
const (
	maxRuns   = 200
	maxEvents = 100
)

// Build makes the report of in.
func Build(in Input) *Report {
	r := &Report{Agent: in.Agent, Since: in.Since, Until: in.Until, Generated: in.Generated, Trigger: in.Trigger}
	if r.Trigger == "" {
		r.Trigger = "on demand"
	}
	recs := in.Records
	sessions, tools, nodes, ips, personas := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	data := map[string]*Data{}
	actions := map[string]*Action{}
	perMinute := map[int64]int{}
	var runs []Run
	streak := 0
	var streakAt time.Time
	for i := range recs {
		rec := &recs[i]
		t := &r.Totals
		t.Calls++
		if t.First.IsZero() || rec.Time.Before(t.First) {
			t.First = rec.Time
		}
		if rec.Time.After(t.Last) {
			t.Last = rec.Time
		}
		if rec.Decision == gateway.Fail || rec.ToolError {
			if streak == 0 {
				streakAt = rec.Time
			}
			if streak++; streak > r.failStreak {
				r.failStreak, r.failStreakAt = streak, streakAt
			}
		} else {
			streak = 0
		}
		switch rec.Decision {
		case gateway.Deny:
			t.Denied++
		case gateway.Fail:
			t.Failed++
		default:
			t.Allowed++
			if rec.ToolError {
				t.ToolErrors++
			}
		}
		modified := rec.DLPRequest == "modify" || rec.DLPResponse == "modify"
		if modified {
			t.Modified++
		}
		sessions[rec.Session], tools[rec.Tool], nodes[rec.Node], ips[rec.ClientIP], personas[rec.Persona] = true, true, true, true, true
		perMinute[rec.Time.Unix()/60]++
		for id, n := range rec.DLPFindings {
			d := data[id]
			if d == nil {
				d = &Data{Detector: id, Category: categoryOf(id)}
				data[id] = d
			}
			d.Count += n
			if !slices.Contains(d.Tools, rec.Tool) {
				d.Tools = append(d.Tools, rec.Tool)
			}
		}
		stage := decidingStage(rec)
		if rec.Decision == gateway.Deny || rec.Decision == gateway.Fail || modified {
			what := map[string]string{gateway.Deny: "refused", gateway.Fail: "failed"}[rec.Decision]
			reason := rec.Reason
			if what == "" {
				what, reason, stage = "modified", "DLP altered the data ("+strings.Join(sortedKeys(rec.DLPFindings), ", ")+")", modifyingStage(rec)
			}
			k := stage + "\x00" + what + "\x00" + reason
			a := actions[k]
			if a == nil {
				a = &Action{Stage: stage, What: what, Reason: reason, First: rec.Time}
				actions[k] = a
				if len(r.Timeline) < maxEvents {
					r.Timeline = append(r.Timeline, Event{Time: rec.Time, Seq: rec.Seq, Node: rec.Node,
						What: fmt.Sprintf("first %s call to %s (%s: %s)", what, rec.Tool, stage, reason)})
				}
			}
			a.Count++
			a.Last = rec.Time
		}
		outcome := rec.Decision
		if rec.ToolError && outcome == gateway.Allow {
			outcome = ToolError
		}
		if n := len(runs); n > 0 && runs[n-1].Tool == rec.Tool && runs[n-1].Decision == outcome {
			runs[n-1].Count++
			runs[n-1].To = rec.Time
		} else {
			run := Run{Tool: rec.Tool, Decision: outcome, Count: 1, From: rec.Time, To: rec.Time}
			if rec.Decision != gateway.Allow {
				run.Reason, run.Stage = rec.Reason, stage
			} else if rec.ToolError {
				run.Reason = "the tool answered with an error"
			}
			runs = append(runs, run)
		}
	}
	t := &r.Totals
	t.Sessions, t.Tools, t.Nodes, t.ClientIPs = count(sessions), count(tools), count(nodes), count(ips)
	for m, n := range perMinute {
		if n > t.PeakPerMinute || (n == t.PeakPerMinute && time.Unix(m*60, 0).Before(t.PeakAt)) {
			t.PeakPerMinute, t.PeakAt = n, time.Unix(m*60, 0).UTC()
		}
	}
	r.Personas = sortedKeys(personas)
	if len(recs) > 0 {
		r.Timeline = append([]Event{{Time: t.First, Seq: recs[0].Seq, Node: recs[0].Node, What: fmt.Sprintf("first call in the window: %s", recs[0].Tool)}}, r.Timeline...)
		last := recs[len(recs)-1]
		r.Timeline = append(r.Timeline, Event{Time: t.Last, Seq: last.Seq, Node: last.Node, What: fmt.Sprintf("last call in the window: %s (%s)", last.Tool, last.Decision)})
	}
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].Time.Before(r.Timeline[j].Time) })
	r.Sequence = boundRuns(runs)
	for _, d := range data {
		sort.Strings(d.Tools)
		r.Data = append(r.Data, *d)
	}
	sort.Slice(r.Data, func(i, j int) bool {
		if r.Data[i].Count != r.Data[j].Count {
			return r.Data[i].Count > r.Data[j].Count
		}
		return r.Data[i].Detector < r.Data[j].Detector
	})
	for _, a := range actions {
		r.Actions = append(r.Actions, *a)
	}
	// Refusals first, then failures, then alterations; most calls first.
	severity := map[string]int{"refused": 0, "failed": 1, "modified": 2}
	sort.Slice(r.Actions, func(i, j int) bool {
		a, b := r.Actions[i], r.Actions[j]
		if severity[a.What] != severity[b.What] {
			return severity[a.What] < severity[b.What]
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.First.Before(b.First)
	})
	r.Policy = policyNote(in)
	r.RootCause = rootCause(r, runs)
	return r
}

// decidingStage is the stage of a record's last verdict.
func decidingStage(rec *audit.Record) string {
	if n := len(rec.Verdicts); n > 0 {
		return rec.Verdicts[n-1].Stage
	}
	return ""
}

// modifyingStage is the stage whose verdict altered a record's data.
func modifyingStage(rec *audit.Record) string {
	for i := len(rec.Verdicts) - 1; i >= 0; i-- {
		if rec.Verdicts[i].Outcome == "modify" {
			return rec.Verdicts[i].Stage
		}
	}
	return "dlp"
}

// boundRuns keeps every run when there are few, else the first and last
// ones and the longest in between, in order, with a marker run for what
// was left out.
func boundRuns(runs []Run) []Run {
	if len(runs) <= maxRuns {
		return runs
	}
	keep := make([]bool, len(runs))
	for i := 0; i < 20; i++ {
		keep[i], keep[len(runs)-1-i] = true, true
	}
	idx := make([]int, len(runs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return runs[idx[a]].Count > runs[idx[b]].Count })
	for _, i := range idx[:maxRuns-40] {
		keep[i] = true
	}
	var out []Run
	skipped, calls := 0, 0
	for i, run := range runs {
		if keep[i] {
			if skipped > 0 {
				out = append(out, Run{Tool: "…", Decision: fmt.Sprintf("%d shorter runs (%d calls) left out", skipped, calls)})
				skipped, calls = 0, 0
			}
			out = append(out, run)
			continue
		}
		skipped++
		calls += run.Count
	}
	return out
}

func policyNote(in Input) PolicyNote {
	p := PolicyNote{StateIndex: in.StateIndex}
	if in.Persona == nil {
		p.Deleted = true
		return p
	}
	p.Persona, p.Description, p.Limits, p.DLP = in.Persona.Name, in.Persona.Description, in.Persona.Limits, in.Persona.DLP
	for _, name := range in.Persona.Skills {
		sn := SkillNote{Name: name}
		if sk := in.Skills[name]; sk != nil {
			for _, g := range sk.Tools {
				sn.Tools = append(sn.Tools, g.Tool)
			}
		}
		p.Skills = append(p.Skills, sn)
	}
	return p
}

// rootCause writes the summary: what dominated the refusals, whether the
// agent kept going after failures, what sequence preceded the first
// refusal, what data it received, and how fast it went.
func rootCause(r *Report, runs []Run) []string {
	t := r.Totals
	if t.Calls == 0 {
		return []string{fmt.Sprintf("Agent %s made no governed call between %s and %s.", r.Agent, r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))}
	}
	var out []string
	out = append(out, fmt.Sprintf("Agent %s made %d calls to %d tools between %s and %s: %d allowed, %d refused, %d failed.",
		r.Agent, t.Calls, t.Tools, t.First.Format(time.RFC3339), t.Last.Format(time.RFC3339), t.Allowed, t.Denied, t.Failed))
	if len(r.Actions) > 0 {
		a := r.Actions[0]
		s := fmt.Sprintf("The gateway %s %d calls at the %s stage — %s", a.What, a.Count, a.Stage, a.Reason)
		if len(r.Actions) > 1 {
			b := r.Actions[1]
			s += fmt.Sprintf("; it also %s %d calls at the %s stage — %s", b.What, b.Count, b.Stage, b.Reason)
		}
		out = append(out, s+".")
	}
	// The sequence before the first refusal.
	for i, run := range runs {
		if run.Decision != gateway.Deny {
			continue
		}
		if i > 0 && (runs[i-1].Decision == gateway.Allow || runs[i-1].Decision == ToolError) {
			prev := runs[i-1]
			kind := "allowed"
			if prev.Decision == ToolError {
				kind = "failing (tool error)"
			}
			out = append(out, fmt.Sprintf("The first refusal came right after %d %s calls to %s within %s; the refused call was to %s (%s).",
				prev.Count, kind, prev.Tool, span(prev.To.Sub(prev.From)), run.Tool, run.Reason))
		} else {
			out = append(out, fmt.Sprintf("The first refusal was a call to %s (%s).", run.Tool, run.Reason))
		}
		break
	}
	if failed := t.Failed + t.ToolErrors; failed > 0 && failed*10 >= t.Calls-t.Denied {
		out = append(out, fmt.Sprintf("It kept calling after failures: %d failed calls (%d the upstream's, %d tool errors; %.0f%% of the calls it was let through); the longest streak was %d in a row, from %s.",
			failed, t.Failed, t.ToolErrors, 100*float64(failed)/float64(t.Calls-t.Denied), r.failStreak, r.failStreakAt.Format(time.RFC3339)))
	}
	if len(r.Data) > 0 {
		var parts []string
		total := 0
		for _, d := range r.Data {
			total += d.Count
			if len(parts) < 4 {
				parts = append(parts, fmt.Sprintf("%s %d (%s)", d.Detector, d.Count, d.Category))
			}
		}
		out = append(out, fmt.Sprintf("DLP found %d sensitive values in its calls: %s.", total, strings.Join(parts, ", ")))
	}
	if span := t.Last.Sub(t.First); span > 0 && t.PeakPerMinute > 60 {
		out = append(out, fmt.Sprintf("It peaked at %d calls in the minute from %s.", t.PeakPerMinute, t.PeakAt.Format("15:04")))
	}
	if r.Policy.Deleted {
		out = append(out, "Its persona has been deleted since.")
	}
	return out
}

// span renders a duration for people: milliseconds under a second.
func span(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

func categoryOf(id string) string {
	if d, err := dlp.Lookup(id); err == nil {
		return string(d.Category)
	}
	return "custom"
}

func count(m map[string]bool) int {
	n := 0
	for k := range m {
		if k != "" {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
