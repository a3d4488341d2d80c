package dlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// Direction says which way data flows through the gateway.
type Direction int

// Directions.
const (
	Request  Direction = iota + 1 // agent → upstream (tool arguments)
	Response                      // upstream → agent (tool results)
)

func (d Direction) String() string {
	switch d {
	case Request:
		return "request"
	case Response:
		return "response"
	}
	return "unknown"
}

// Action is what a rule does with a finding.
type Action string

// Actions, weakest first.
const (
	ActionLog      Action = "log"      // record only
	ActionMask     Action = "mask"     // keep a tail, star the rest
	ActionRedact   Action = "redact"   // [REDACTED:<detector>]
	ActionTokenize Action = "tokenize" // deterministic keyed token
	ActionBlock    Action = "block"    // refuse the call
)

var actionRank = map[Action]int{ActionLog: 1, ActionMask: 2, ActionRedact: 3, ActionTokenize: 4, ActionBlock: 5}

// Rule is one DLP rule of a Persona, e.g.
// {categories: [pci, secrets], direction: both, action: redact}. Its JSON
// form matches the Persona spec (state.DLPRule) field for field.
type Rule struct {
	Categories []Category `json:"categories,omitempty" yaml:"categories,omitempty"`
	Detectors  []string   `json:"detectors,omitempty" yaml:"detectors,omitempty"`
	// Direction is request, response or both ("" means both).
	Direction string `json:"direction,omitempty" yaml:"direction,omitempty"`
	Action    Action `json:"action" yaml:"action"`
	// KeepTail is how many trailing alphanumerics mask leaves visible
	// (nil: 4).
	KeepTail *int `json:"keepTail,omitempty" yaml:"keepTail,omitempty"`
	// Format "ff1" makes tokenize format-preserving (digits stay digits,
	// separators stay in place).
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
	// MinConfidence ignores findings below it (default: the scanner's).
	MinConfidence float64 `json:"minConfidence,omitempty" yaml:"minConfidence,omitempty"`
}

// Policy is the DLP part of a Persona spec.
type Policy struct {
	Rules []Rule `json:"rules" yaml:"rules"`
}

// Errors for policy compilation.
var ErrBadPolicy = errors.New("dlp: bad policy")

// Validate checks a policy without building an engine.
func (p Policy) Validate() error {
	for i, r := range p.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("%w: rule %d: %v", ErrBadPolicy, i+1, err)
		}
	}
	return nil
}

func (r Rule) validate() error {
	if len(r.Categories) == 0 && len(r.Detectors) == 0 {
		return errors.New("names no categories and no detectors")
	}
	for _, c := range r.Categories {
		if !validCategory(c) {
			return fmt.Errorf("unknown category %q", c)
		}
	}
	for _, d := range r.Detectors {
		if _, ok := byID[d]; !ok {
			return fmt.Errorf("unknown detector %q", d)
		}
	}
	switch r.Direction {
	case "", "request", "response", "both":
	default:
		return fmt.Errorf("direction %q is not request, response or both", r.Direction)
	}
	if _, ok := actionRank[r.Action]; !ok {
		return fmt.Errorf("action %q is not log, mask, redact, tokenize or block", r.Action)
	}
	if r.KeepTail != nil && (*r.KeepTail < 0 || *r.KeepTail > 16) {
		return fmt.Errorf("keepTail %d out of range 0..16", *r.KeepTail)
	}
	switch r.Format {
	case "":
	case "ff1":
		if r.Action != ActionTokenize {
			return errors.New("format ff1 applies only to the tokenize action")
		}
	default:
		return fmt.Errorf("format %q is not ff1", r.Format)
	}
	return nil
}

func (r Rule) applies(dir Direction) bool {
	return r.Direction == "" || r.Direction == "both" || r.Direction == dir.String()
}

func (r Rule) matches(d *Detector) bool {
	return slices.Contains(r.Detectors, d.ID) || slices.Contains(r.Categories, d.Category)
}

// Decision is the outcome of Apply.
type Decision int

// Decisions.
const (
	Allow  Decision = iota // nothing changed
	Modify                 // values were masked, redacted or tokenized
	Block                  // the call must be refused
)

func (d Decision) String() string { return [...]string{"allow", "modify", "block"}[d] }

// Verdict explains what Apply did. Reasons never contain the sensitive
// values themselves.
type Verdict struct {
	Decision Decision  `json:"decision"`
	Reasons  []string  `json:"reasons,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	Policy Policy
	// Scanner to use; nil builds one with every detector (taint tracking
	// needs every sensitive value, not only the ones rules act on).
	Scanner *Scanner
	// Tokenizer is required when a rule tokenizes.
	Tokenizer *Tokenizer
	// Taint, when set, records sensitive values leaving upstreams and
	// refuses flows the environment/egress rules forbid (see ApplyFlow).
	Taint  *Taint
	Logger *slog.Logger
}

// Engine applies a compiled Policy. It is immutable and safe for
// concurrent use; build a new one when the policy changes.
type Engine struct {
	sc    *Scanner
	tok   *Tokenizer
	taint *Taint
	log   *slog.Logger
	// per direction: detector → strongest rule
	rules [3]map[string]Rule
}

// NewEngine compiles cfg.Policy.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{sc: cfg.Scanner, tok: cfg.Tokenizer, taint: cfg.Taint, log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.sc == nil {
		sc, err := New(Config{})
		if err != nil {
			return nil, err
		}
		e.sc = sc
	}
	for _, dir := range []Direction{Request, Response} {
		m := map[string]Rule{}
		for _, d := range registry {
			for _, r := range cfg.Policy.Rules {
				if !r.applies(dir) || !r.matches(d) {
					continue
				}
				if cur, ok := m[d.ID]; !ok || actionRank[r.Action] > actionRank[cur.Action] {
					m[d.ID] = r
				}
			}
			// Credentials in tool arguments never reach an upstream or a log.
			if dir == Request && d.Category == Secrets {
				if cur, ok := m[d.ID]; !ok || actionRank[cur.Action] < actionRank[ActionRedact] {
					m[d.ID] = Rule{Direction: "request", Action: ActionRedact, Categories: []Category{Secrets}}
				}
			}
		}
		e.rules[dir] = m
	}
	for _, m := range e.rules {
		for _, r := range m {
			if r.Action == ActionTokenize && e.tok == nil {
				return nil, fmt.Errorf("%w: a rule tokenizes but no tokenizer is configured", ErrBadPolicy)
			}
		}
	}
	return e, nil
}

// Flow identifies where a document is going or coming from, for taint
// tracking.
type Flow struct {
	Session  string
	Upstream Upstream
}

// Apply scans a JSON document flowing in dir and applies the policy. It
// returns the rewritten document (still valid JSON; unchanged when the
// verdict is Allow; nil when it is Block).
func (e *Engine) Apply(dir Direction, doc []byte) ([]byte, Verdict, error) {
	return e.ApplyFlow(Flow{}, dir, doc)
}

// ApplyFlow is Apply with taint tracking: responses record the sensitive
// values the session received from f.Upstream; requests are refused when
// they carry such values to an upstream the rules forbid.
func (e *Engine) ApplyFlow(f Flow, dir Direction, doc []byte) ([]byte, Verdict, error) {
	if dir != Request && dir != Response {
		return nil, Verdict{}, fmt.Errorf("dlp: apply: bad direction %d", dir)
	}
	fs, err := e.sc.ScanJSON(doc)
	if err != nil {
		return nil, Verdict{}, fmt.Errorf("dlp: apply: %w", err)
	}
	return e.decide(f, dir, doc, fs, true)
}

// ApplyText is Apply for a plain-text body.
func (e *Engine) ApplyText(dir Direction, text []byte) ([]byte, Verdict, error) {
	if dir != Request && dir != Response {
		return nil, Verdict{}, fmt.Errorf("dlp: apply: bad direction %d", dir)
	}
	return e.decide(Flow{}, dir, text, e.sc.Scan(text), false)
}

type edit struct {
	s, e int
	repl string
}

func (e *Engine) decide(f Flow, dir Direction, doc []byte, fs []Finding, isJSON bool) ([]byte, Verdict, error) {
	v := Verdict{Findings: fs}
	if len(fs) == 0 {
		return doc, v, nil
	}
	rules := e.rules[dir]
	var edits []edit
	var taints []Finding // response values the agent will receive
	numEdits := map[int]*numEdit{}
	for _, fd := range fs {
		val := plainValue(doc, fd)
		if e.taint != nil && f.Session != "" {
			if dir == Request {
				if err := e.taint.Check(f.Session, f.Upstream, fd.Detector, val); err != nil {
					v.Decision = Block
					v.Reasons = append(v.Reasons, fmt.Sprintf("%v (at %s)", err, where(fd)))
				}
			}
		}
		r, ok := rules[fd.Detector]
		if !ok || (r.MinConfidence > 0 && fd.Confidence < r.MinConfidence) {
			taints = append(taints, fd) // reaches the agent unchanged
			continue
		}
		if r.Action == ActionLog || r.Action == ActionMask {
			taints = append(taints, fd) // the agent sees it (or its tail)
		}
		reason := fmt.Sprintf("%s %s (%s) at %s", r.Action, fd.Detector, fd.Category, where(fd))
		v.Reasons = append(v.Reasons, reason)
		e.log.Info("dlp finding", "direction", dir.String(), "detector", fd.Detector, "category", string(fd.Category), "action", string(r.Action), "path", fd.Path, "confidence", fd.Confidence)
		var repl string
		switch r.Action {
		case ActionLog:
			continue
		case ActionBlock:
			v.Decision = Block
			continue
		case ActionRedact:
			repl = "[REDACTED:" + fd.Detector + "]"
		case ActionMask:
			switch {
			case fd.encoded:
				// a tail of the decoded value inside an encoded token
				// would be neither the encoding nor the value
				repl = "[REDACTED:" + fd.Detector + "]"
			case fd.plain != "":
				keep := 4
				if r.KeepTail != nil {
					keep = *r.KeepTail
				}
				repl = mask(val, keep)
			case fd.escaped && bytes.IndexByte(doc[fd.Start:fd.End], '\\') >= 0:
				repl = "[REDACTED:" + fd.Detector + "]"
			default:
				keep := 4
				if r.KeepTail != nil {
					keep = *r.KeepTail
				}
				repl = mask(val, keep)
			}
		case ActionTokenize:
			if r.Format == "ff1" {
				repl = e.tok.TokenFormatPreserving(fd.Detector, val)
			} else {
				repl = e.tok.Token(fd.Detector, val)
			}
			if isJSON && !fd.inNumber {
				repl = jsonInner(repl) // FF1 keeps the decoded separators
			}
		}
		if v.Decision < Modify {
			v.Decision = Modify
		}
		if isJSON && fd.inNumber {
			ne := numEdits[fd.tokStart]
			if ne == nil {
				ne = &numEdit{s: fd.tokStart, e: fd.tokEnd}
				numEdits[fd.tokStart] = ne
			}
			end := fd.End
			if end < fd.tokEnd && doc[end] == '.' && intPart(doc[fd.Start:fd.tokEnd]) == end-fd.Start {
				end = fd.tokEnd // the ".0" of a float goes with the value
			}
			ne.parts = append(ne.parts, edit{fd.Start - fd.tokStart, end - fd.tokStart, repl})
			continue
		}
		edits = append(edits, edit{fd.Start, fd.End, repl})
	}
	if v.Decision == Block {
		return nil, v, nil
	}
	if dir == Response && e.taint != nil && f.Session != "" {
		for _, fd := range taints {
			e.taint.Record(f.Session, f.Upstream, fd.Detector, plainValue(doc, fd))
		}
	}
	if v.Decision == Allow {
		return doc, v, nil
	}
	// Numbers become JSON strings holding the rewritten number text.
	for _, ne := range numEdits {
		txt := applyEdits(doc[ne.s:ne.e], ne.parts)
		edits = append(edits, edit{ne.s, ne.e, `"` + string(txt) + `"`})
	}
	return applyEdits(doc, edits), v, nil
}

// plainValue is the value of a finding as a reader of the document sees
// it: JSON escapes in its raw span decoded, digits and separators
// normalised, encodings decoded, so "\u0034111 …", "４１１１ …" and "4111 …"
// fingerprint and tokenize alike.
func plainValue(doc []byte, fd Finding) []byte {
	if fd.plain != "" {
		return []byte(fd.plain) // normalised or decoded
	}
	raw := doc[fd.Start:fd.End]
	if !fd.escaped || bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	if u, _, ok := unescape(raw); ok {
		return u
	}
	return raw
}

// jsonInner returns s encoded as the inside of a JSON string.
func jsonInner(s string) string {
	b, err := json.Marshal(s)
	if err != nil || len(b) < 2 {
		return s
	}
	return string(b[1 : len(b)-1])
}

type numEdit struct {
	s, e  int
	parts []edit
}

func where(f Finding) string {
	if f.Path != "" {
		return f.Path
	}
	return fmt.Sprintf("bytes %d-%d", f.Start, f.End)
}

// applyEdits replaces non-overlapping spans.
func applyEdits(doc []byte, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.s - b.s })
	var out bytes.Buffer
	out.Grow(len(doc))
	p := 0
	for _, ed := range edits {
		if ed.s < p {
			continue
		}
		out.Write(doc[p:ed.s])
		out.WriteString(ed.repl)
		p = ed.e
	}
	out.Write(doc[p:])
	return out.Bytes()
}

// mask stars every alphanumeric of v except the last keep, leaving
// separators in place ("****-****-****-1111").
func mask(v []byte, keep int) string {
	total := 0
	for _, c := range v {
		if isAlnum(c) {
			total++
		}
	}
	out := []byte(string(v))
	seen := 0
	for i, c := range out {
		if !isAlnum(c) {
			if c == '"' || c == '\\' || c < 0x20 {
				out[i] = '*'
			}
			continue
		}
		if seen < total-keep {
			out[i] = '*'
		}
		seen++
	}
	return string(out)
}

// ParsePolicy reads the dlp section of a Persona spec in JSON: either a list
// of rules or {"rules": [...]}. Unknown fields are errors, and the policy is
// validated.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	trimmed := bytes.TrimSpace(data)
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var err error
	if len(trimmed) > 0 && trimmed[0] == '[' {
		err = dec.Decode(&p.Rules)
	} else {
		err = dec.Decode(&p)
	}
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %v", ErrBadPolicy, err)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("%w: trailing data", ErrBadPolicy)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}
