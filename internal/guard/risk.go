package guard

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Risk levels, by score: low < 30 ≤ medium < 60 ≤ high < 80 ≤ critical.
const (
	RiskLow      = "low"
	RiskMedium   = "medium"
	RiskHigh     = "high"
	RiskCritical = "critical"
)

// Risk is a tool's automatic risk score (0–100), its level and the reasons
// a person reads ("destructive (annotations.destructiveHint)", "free-form
// command argument cmd").
type Risk struct {
	Score   int      `json:"score"`
	Level   string   `json:"level"`
	Reasons []string `json:"reasons,omitempty"`
}

// High reports whether the tool needs an exact grant: a skill's "*"
// pattern does not reach it.
func (r Risk) High() bool { return r.Score >= 60 }

// toolDef is the part of an MCP tool definition the score reads.
type toolDef struct {
	Name        string          `json:"name"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Annotations *struct {
		ReadOnly    *bool `json:"readOnlyHint"`
		Destructive *bool `json:"destructiveHint"`
		Idempotent  *bool `json:"idempotentHint"`
		OpenWorld   *bool `json:"openWorldHint"`
	} `json:"annotations"`
}

type schemaProp struct {
	Type        any      `json:"type"`
	Description string   `json:"description"`
	Format      string   `json:"format"`
	Enum        []any    `json:"enum"`
	Pattern     string   `json:"pattern"`
	MaxLength   *float64 `json:"maxLength"`
	Const       any      `json:"const"`
}

// Words in a tool's name (split at _, -, . and case changes) or the first
// sentence of its description, and what they say it does.
var (
	verbDelete = regexp.MustCompile(`(?i)\b(delete|deletes|remove|removes|drop|drops|destroy|purge|wipe|truncate|erase|revoke|terminate|kill)\b`)
	verbExec   = regexp.MustCompile(`(?i)\b(exec|execute|executes|run|runs|shell|eval|evaluate|spawn|command|script|sudo|bash|powershell)\b`)
	verbWrite  = regexp.MustCompile(`(?i)\b(write|writes|update|updates|create|creates|set|put|patch|insert|upload|modify|edit|move|rename|deploy|merge|push|commit|approve)\b`)
	verbSend   = regexp.MustCompile(`(?i)\b(send|sends|email|mail|post|posts|publish|notify|message|sms|tweet|share|transfer|pay|payment|wire|refund|invite)\b`)
	verbAdmin  = regexp.MustCompile(`(?i)\b(admin|administer|grant|permission|permissions|role|roles|privilege|sudoers|acl|iam|credential|credentials|password|secret|token|key|keys)\b`)
	camel      = regexp.MustCompile(`([a-z0-9])([A-Z])`)
)

// words makes "deleteTicket_now" read "delete Ticket now".
func words(s string) string {
	s = camel.ReplaceAllString(s, "$1 $2")
	return strings.NewReplacer("_", " ", "-", " ", ".", " ", "/", " ").Replace(s)
}

// leadWords is the first n words of a description's first sentence: its
// verb and object, where tool descriptions say what the tool does.
func leadWords(s string, n int) string {
	if i := strings.IndexAny(s, ".\n;:"); i >= 0 {
		s = s[:i]
	}
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// Argument names that carry a command, code, SQL, a URL or a path.
var argKinds = []struct {
	re     *regexp.Regexp
	points int
	what   string
}{
	{regexp.MustCompile(`(?i)^(cmd|command|commands|shell|script|bash|exec|args?|argv|commandline|command_line)$`), 35, "free-form command argument"},
	{regexp.MustCompile(`(?i)^(code|source|expression|expr|eval|program|snippet|javascript|python|js)$`), 30, "code argument"},
	{regexp.MustCompile(`(?i)^(sql|query|statement|stmt|cypher|graphql)$`), 25, "query argument"},
	{regexp.MustCompile(`(?i)^(url|uri|endpoint|webhook|callback|href|link|host|hostname|domain|address|to|recipient|recipients|email)$`), 15, "destination argument"},
	{regexp.MustCompile(`(?i)^(path|file|filename|filepath|dir|directory|folder|glob)$`), 10, "path argument"},
}

// ScoreTool scores one tool from its MCP definition (name, description,
// inputSchema, annotations) and its upstream's environment and egress. A
// definition that is not a JSON object scores as an unannotated tool named
// "" (the upstream listed something a client cannot judge).
func ScoreTool(def json.RawMessage, environment, egress string) Risk {
	var d toolDef
	_ = json.Unmarshal(def, &d)
	score := 0
	var reasons []string
	add := func(points int, format string, args ...any) {
		score += points
		reasons = append(reasons, fmt.Sprintf(format, args...))
	}
	readOnly := false
	if a := d.Annotations; a != nil {
		readOnly = a.ReadOnly != nil && *a.ReadOnly
		switch {
		case readOnly:
		case a.Destructive != nil && *a.Destructive:
			add(40, "destructive (annotations.destructiveHint)")
		case a.Destructive != nil && !*a.Destructive:
			add(10, "writes (not readOnlyHint)")
		default:
			add(25, "may modify or delete (no readOnlyHint; MCP assumes destructive)")
		}
		if a.OpenWorld != nil && *a.OpenWorld {
			add(15, "reaches outside systems (annotations.openWorldHint)")
		}
	} else {
		add(25, "may modify or delete (no annotations; MCP assumes destructive)")
	}
	// What it does: its name and title, and the opening words of its
	// description ("Delete a ticket", "Run a shell command"); the rest of
	// a description talks about other things ("the framework must drop
	// it") and would raise false alarms.
	text := words(d.Name) + " " + words(d.Title) + " " + leadWords(d.Description, 3)
	switch {
	case verbExec.MatchString(text):
		add(35, "runs commands or code (%q)", strings.ToLower(verbExec.FindString(text)))
	case verbDelete.MatchString(text):
		if !readOnly {
			add(30, "deletes (%q)", strings.ToLower(verbDelete.FindString(text)))
		}
	}
	if verbSend.MatchString(text) && !readOnly {
		add(20, "sends data out (%q)", strings.ToLower(verbSend.FindString(text)))
	} else if verbWrite.MatchString(text) && !readOnly {
		add(10, "changes data (%q)", strings.ToLower(verbWrite.FindString(text)))
	}
	if verbAdmin.MatchString(words(d.Name) + " " + words(d.Title)) {
		add(20, "touches access or secrets (%q)", strings.ToLower(verbAdmin.FindString(words(d.Name)+" "+words(d.Title))))
	}
	args := 0
	for _, r := range schemaRisks(d.InputSchema) {
		if args >= 2 {
			break
		}
		add(r.points, "%s %s", r.what, r.name)
		args++
	}
	switch environment {
	case "prod":
		add(10, "production upstream")
	}
	if egress == "external" {
		add(15, "external upstream (egress: external)")
	}
	if score > 100 {
		score = 100
	}
	return Risk{Score: score, Level: level(score), Reasons: reasons}
}

func level(score int) string {
	switch {
	case score >= 80:
		return RiskCritical
	case score >= 60:
		return RiskHigh
	case score >= 30:
		return RiskMedium
	}
	return RiskLow
}

type argRisk struct {
	name   string
	what   string
	points int
}

// schemaRisks finds top-level string arguments that carry commands, code,
// queries, destinations or paths, free-form (no enum, const or pattern),
// riskiest first. A URL format counts as a destination whatever the name.
func schemaRisks(schema json.RawMessage) []argRisk {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return nil
	}
	var out []argRisk
	for name, raw := range s.Properties {
		var p schemaProp
		if json.Unmarshal(raw, &p) != nil || len(p.Enum) > 0 || p.Const != nil || p.Pattern != "" {
			continue
		}
		if t, ok := p.Type.(string); ok && t != "string" && t != "array" {
			continue
		}
		for _, k := range argKinds {
			if k.re.MatchString(name) {
				out = append(out, argRisk{name: name, what: k.what, points: k.points})
				break
			}
			if k.what == "destination argument" && (p.Format == "uri" || p.Format == "email" || p.Format == "hostname") {
				out = append(out, argRisk{name: name, what: k.what, points: k.points})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].points != out[j].points {
			return out[i].points > out[j].points
		}
		return out[i].name < out[j].name
	})
	return out
}

// seenData is what DLP found in one tool's calls on this node.
type seenData struct {
	mu        sync.Mutex
	detectors map[string]int
}

// maxSeenDetectors bounds what is kept per tool.
const maxSeenDetectors = 16

// Saw records DLP findings (detector id → count, never values) in a call
// of tool (upstream/name): a tool seen carrying sensitive data scores
// higher (Adjust). Node-local, forgotten at restart.
func (g *Guard) Saw(tool string, findings map[string]int) {
	if len(findings) == 0 || tool == "" {
		return
	}
	v, ok := g.seen.Load(tool)
	if !ok {
		v, _ = g.seen.LoadOrStore(tool, &seenData{detectors: map[string]int{}})
	}
	s := v.(*seenData)
	s.mu.Lock()
	for id, n := range findings {
		if _, known := s.detectors[id]; known || len(s.detectors) < maxSeenDetectors {
			s.detectors[id] += n
		}
	}
	s.mu.Unlock()
}

// Adjust adds to r what this node has seen tool carry (Saw): +15 with the
// detectors named.
func (g *Guard) Adjust(tool string, r Risk) Risk {
	v, ok := g.seen.Load(tool)
	if !ok {
		return r
	}
	s := v.(*seenData)
	s.mu.Lock()
	ids := make([]string, 0, len(s.detectors))
	for id := range s.detectors {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return r
	}
	sort.Strings(ids)
	if len(ids) > 3 {
		ids = append(ids[:3], "…")
	}
	out := Risk{Score: min(100, r.Score+15), Reasons: append(slices.Clone(r.Reasons), "sensitive data seen in its calls ("+strings.Join(ids, ", ")+")")}
	out.Level = level(out.Score)
	return out
}
