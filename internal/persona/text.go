package persona

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// token is one word of a text with the punctuation context the intent
// parser needs.
type token struct {
	word  string // lower case, apostrophes removed ("doesn't" → "doesnt")
	stem  string // stem after canonicalisation; "" for stop words
	sent  int    // sentence number
	brk   bool   // a clause break (. ; : ! ? ( ) dash, bullet) comes right before
	comma bool   // a comma comes right before
	hyph  bool   // joined to the word before by a hyphen ("follow-up")
	// name: written with a capital and lower-case letters ("Twitter",
	// "PagerDuty"), not at the start of a sentence: a proper name.
	name bool
}

// maxWords bounds the work done on one text; the rest is ignored.
const maxWords = 4000

// tokenize splits text into words. It never fails: invalid UTF-8 is treated
// as separators, and only the first maxWords words are kept.
func tokenize(text string) []token {
	var (
		out   []token
		cur   strings.Builder
		sent  int
		brk   = true
		comma bool
		hyph  bool
		upper int // capitals in the current word
		first bool
		prev  rune
	)
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		w := cur.String()
		cur.Reset()
		name := first && upper < utf8.RuneCountInString(w) && !brk
		upper, first = 0, false
		if len(out) >= maxWords {
			return
		}
		out = append(out, token{word: w, stem: normWord(w), sent: sent, brk: brk, comma: comma, hyph: hyph, name: name})
		brk, comma, hyph = false, false, false
	}
	lineStart := true
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		var next rune
		if i+size < len(text) {
			next, _ = utf8.DecodeRuneInString(text[i+size:])
		}
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			flush()
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if unicode.IsUpper(r) {
				upper++
				first = first || cur.Len() == 0
			}
			cur.WriteRune(unicode.ToLower(r))
			lineStart = false
		case r == '#' && cur.Len() == 0 && (unicode.IsLetter(next) || unicode.IsDigit(next)):
			// "#eng-updates" names a chat channel: it reads as "channel",
			// and its own words (which may look like verbs) are dropped.
			for i < len(text) {
				c, n := utf8.DecodeRuneInString(text[i:])
				if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '-' || c == '_') {
					break
				}
				i += n
			}
			cur.WriteString("channel")
			flush()
			r, lineStart = 'l', false
		case r == '\'' || r == '’':
			// Inside a word an apostrophe is dropped: "doesn't" → "doesnt".
		case r == '-' && cur.Len() > 0 && (unicode.IsLetter(next) || unicode.IsDigit(next)):
			// "re-run", "e-mail" and "co-worker" are one word; "read-only" is two.
			if w := cur.String(); w == "re" || w == "e" || w == "co" || w == "pre" {
				break
			}
			flush()
			hyph = true
		default:
			flush()
			switch r {
			case '.', '!', '?':
				if unicode.IsSpace(next) || next == 0 || next == '"' || next == ')' {
					sent++
					brk = true
				}
			case ';', ':', '[', ']', '—', '–', '•':
				brk = true
			case '-', '*':
				if lineStart || unicode.IsSpace(prev) && unicode.IsSpace(next) {
					brk = true
				}
			case ',':
				comma = true
			case '\n':
				lineStart = true
				if prev == '\n' {
					sent++
					brk = true
				}
			}
			if !unicode.IsSpace(r) {
				lineStart = false
			}
		}
		prev = r
	}
	flush()
	return joinCompounds(out)
}

// compounds are two-word terms that mean one thing; joined, their parts
// cannot be mistaken for verbs ("merge requests", "time off").
var compounds = map[[2]string]string{
	{"pull", "request"}: "pullrequest", {"pull", "requests"}: "pullrequest",
	{"merge", "request"}: "pullrequest", {"merge", "requests"}: "pullrequest",
	{"time", "off"}: "vacation", {"sick", "leave"}: "vacation", {"knowledge", "base"}: "wiki",
	{"help", "desk"}: "helpdesk", {"direct", "message"}: "dm", {"direct", "messages"}: "dm",
	{"on", "call"}: "oncall", {"out", "office"}: "autoreply", {"auto", "reply"}: "autoreply",
	{"release", "note"}: "changelog", {"release", "notes"}: "changelog",
	{"security", "group"}: "firewall", {"security", "groups"}: "firewall",
}

func joinCompounds(ts []token) []token {
	out := ts[:0]
	for i := 0; i < len(ts); i++ {
		if i+2 < len(ts) && ts[i].word == "up" && ts[i+1].word == "to" && ts[i+2].word == "date" && !ts[i+1].brk && !ts[i+2].brk {
			t := ts[i]
			t.word, t.stem = "uptodate", ""
			out = append(out, t)
			i += 2
			continue
		}
		if i+1 < len(ts) && !ts[i+1].brk && !ts[i+1].comma {
			if w, ok := compounds[[2]string{ts[i].word, ts[i+1].word}]; ok {
				t := ts[i]
				t.word, t.stem = w, normWord(w)
				out = append(out, t)
				i++
				continue
			}
		}
		out = append(out, ts[i])
	}
	return out
}

// stems returns the content stems of a text (stop words dropped).
func stems(text string) []string {
	var out []string
	for _, t := range tokenize(text) {
		if t.stem != "" {
			out = append(out, t.stem)
		}
	}
	return out
}

// normWord maps a lower-case word to its canonical stem, or "" for a word
// that carries no topic (stop words, generic verbs, role nouns).
func normWord(w string) string {
	if stopWords[w] {
		return ""
	}
	if c, ok := irregular[w]; ok {
		w = c
	} else {
		w = stem(w)
	}
	if c, ok := canon[w]; ok {
		w = c
	}
	if stopStems[w] {
		return ""
	}
	return w
}

// stem strips English inflection and a few derivational suffixes so that
// "replies", "replied" and "replying" meet at "reply", "create" and
// "creating" at "creat". It is deliberately light: it only has to make the
// words of one description meet the words of skill and tool texts.
func stem(w string) string {
	if len(w) <= 3 || !isAlpha(w) {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "xes"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	switch {
	case strings.HasSuffix(w, "ing") && len(w) > 5:
		w = undouble(w[:len(w)-3])
	case strings.HasSuffix(w, "ied") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ed") && len(w) > 4:
		w = undouble(w[:len(w)-2])
	case strings.HasSuffix(w, "ation") && len(w) > 7:
		w = w[:len(w)-5]
	case strings.HasSuffix(w, "ment") && len(w) > 7:
		w = w[:len(w)-4]
	case strings.HasSuffix(w, "ly") && len(w) > 5:
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "al") && len(w) > 6:
		w = w[:len(w)-2]
	}
	if strings.HasSuffix(w, "e") && len(w) > 4 {
		w = w[:len(w)-1]
	}
	return w
}

func undouble(w string) string {
	n := len(w)
	if n >= 3 && w[n-1] == w[n-2] && !strings.ContainsRune("aeiouls", rune(w[n-1])) {
		return w[:n-1]
	}
	return w
}

func isAlpha(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

// stopWords carry no topic. Checked on the lower-case word before stemming.
var stopWords = setOf(`a an the and or nor but of to in on for with by from at as into onto out up down
	about after before over under via per than then so if when where while whether which who whom whose
	what how why is are was were be been being am do does did done doing has have had having can could
	may might must shall should will would it its this that these those their them they we our us you
	your yours i my me he she his her hers him all any each every some no not none only also just very
	too more most less such own same other others another both either neither anything everything
	nothing something whatsoever itself themselves yourself etc eg ie e g please always never ever
	once twice there here now today daily weekly monthly morning evening night everyone everybody
	someone anyone nobody one two three first last next new old s t dont doesnt cant wont isnt arent
	day days week weeks month months year years time times hour hours minute minutes
	shouldnt mustnt didnt neednt cannot without within across among against around like unless until
	whenever because since though although however yet still already again even through during whatever
	whichever whoever`)

// stopStems are stems that carry no topic once stemmed: generic verbs that
// say what is done, not to what, and the nouns every job description uses
// for the role itself.
var stopStems = setOf(`get list search find look view see check read creat updat edit modify chang add
	delet remov send set manag make use help handl work keep need want let giv tak put know answer ask
	allow permit abl do go com run
	agent assistant bot helper user role job task person people someone team member thing stuff way
	manager
	question request base ready sure good well`)

// irregular maps words the suffix stemmer gets wrong to their stem.
var irregular = map[string]string{
	"documentation": "doc", "document": "doc", "documents": "doc", "docs": "doc", "documented": "doc",
	"people": "person", "children": "child", "sent": "send", "ran": "run", "running": "run",
	"written": "writ", "wrote": "writ", "write": "writ", "writes": "writ", "writing": "writ",
	"data": "data", "analysis": "analy", "analyses": "analy", "analyze": "analy", "analyzes": "analy",
	"analyse": "analy", "analyst": "analy", "analysts": "analy", "analytics": "analy",
	"news": "news", "status": "status", "series": "series", "process": "process",
	"access": "access", "address": "address", "business": "business", "class": "class",
	"billing": "bill", "bills": "bill", "billed": "bill",
	"employees": "employee", "employee": "employee", "schedule": "schedul", "schedules": "schedul",
	"deployment": "deploy", "deployments": "deploy", "deploys": "deploy", "deployed": "deploy",
	"payments": "pay", "payment": "pay", "paid": "pay", "pays": "pay", "paying": "pay",
	"opportunities": "opportunity", "opportunity": "opportunity",
	"invites": "invit", "invite": "invit", "invitation": "invit", "invitations": "invit",
	"meetings": "event", "meeting": "event", "events": "event", "event": "event",
	"appointments": "event", "appointment": "event",
	"servers": "instance", "server": "instance", "vm": "instance", "vms": "instance",
	"machines": "instance", "machine": "instance", "hosts": "instance", "host": "instance",
	"instances": "instance", "instance": "instance",
	"logs": "log", "logged": "log", "logging": "log",
	"pr": "pullrequest", "prs": "pullrequest", "mr": "pullrequest", "mrs": "pullrequest",
	"pullrequest": "pullrequest", "aws": "cloud", "hr": "hr", "ci": "ci", "crm": "crm", "sql": "sql",
}

// canon collapses true synonyms (after stemming) on both sides, so a
// description's "inbox" meets a tool's "mailbox" and "email".
var canon = map[string]string{
	"email": "mail", "inbox": "mail", "mailbox": "mail", "e": "", "gmail": "mail", "outlook": "mail",
	"github": "git", "gitlab": "git", "bitbucket": "git", "repo": "repository", "codebase": "code",
	"slack": "chat", "dm": "direct",
	"zendesk": "helpdesk", "freshdesk": "helpdesk", "servicedesk": "helpdesk",
	"salesforce": "crm", "hubspot": "crm",
	"confluenc": "wiki", "notion": "wiki", "kb": "wiki", "knowledgebas": "wiki",
	"jenkin": "ci", "cd": "ci",
	"aw": "cloud", "gcp": "cloud", "azur": "cloud", "ec2": "cloud",
	"databas": "db", "postgr": "db", "postgresql": "db", "mysql": "db",
	"staff": "employee", "colleagu": "employee", "personnel": "employee", "coworker": "employee",
	"pto": "vacation", "holiday": "vacation",
	"applicant": "candidat",
	"spend":     "cost", "spending": "cost",
	"prospect": "lead",
	"client":   "custom", "customer": "custom",
	"deal":   "opportunity",
	"releas": "deploy", "ship": "deploy", "rollout": "deploy",
	"alarm":    "alert",
	"prod":     "production",
	"reimburs": "refund",
}

// related expands a description's stems into neighbouring topics (at a
// lower weight), so "vacation" finds "time off" tools and "crm" finds
// "account" tools.
var related = map[string][]string{
	"ticket":      {"support", "helpdesk"},
	"support":     {"ticket", "helpdesk"},
	"helpdesk":    {"ticket", "support"},
	"crm":         {"account", "contact", "opportunity", "sale"},
	"sale":        {"crm", "opportunity", "lead"},
	"lead":        {"crm", "sale"},
	"mail":        {"messag"},
	"event":       {"calendar"},
	"calendar":    {"event"},
	"schedul":     {"event", "calendar"},
	"free":        {"slot", "calendar"},
	"git":         {"repository", "code"},
	"code":        {"repository"},
	"repository":  {"code"},
	"commit":      {"code", "branch"},
	"pullrequest": {"code", "review"},
	"build":       {"pipelin", "job"},
	"ci":          {"pipelin", "job"},
	"pipelin":     {"ci"},
	"deploy":      {"production", "environment"},
	"production":  {"deploy", "environment"},
	"staging":     {"deploy", "environment"},
	"rollback":    {"deploy"},
	"cloud":       {"instance"},
	"instance":    {"cloud"},
	"alert":       {"monitor"},
	"monitor":     {"alert", "metric"},
	"incident":    {"alert"},
	"wiki":        {"page", "space"},
	"doc":         {"wiki", "page"},
	"knowledg":    {"wiki"},
	"articl":      {"wiki"},
	"employee":    {"hr", "directory"},
	"hr":          {"employee"},
	"manager":     {"org", "report"},
	"vacation":    {"time", "leav"},
	"leav":        {"vacation", "time"},
	"recruit":     {"candidat", "interview"},
	"hir":         {"candidat", "interview"},
	"interview":   {"candidat"},
	"salary":      {"compens"},
	"invoic":      {"bill", "financ"},
	"bill":        {"invoic"},
	"expens":      {"report"},
	"refund":      {"pay"},
	"ledger":      {"journal", "financ"},
	"bookkeep":    {"ledger", "journal", "invoic"},
	"accounting":  {"ledger", "journal", "invoic"},
	"revenu":      {"invoic", "pay"},
	"bank":        {"balanc"},
	"financ":      {"invoic", "pay"},
	"db":          {"sql", "tabl", "query"},
	"sql":         {"query", "db"},
	"query":       {"sql", "db"},
	"schema":      {"tabl"},
	"dba":         {"db"},
	"chat":        {"channel", "messag"},
	"channel":     {"chat"},
	"announc":     {"channel", "post"},
}

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// splitIdent turns a tool or skill identifier into words:
// "get_pull_request", "listPullRequests" and "crm-read" all split.
func splitIdent(s string) string {
	var b strings.Builder
	var prev rune
	for _, r := range s {
		switch {
		case r == '_' || r == '-' || r == '.' || r == '/':
			r = ' '
		case unicode.IsUpper(r) && unicode.IsLower(prev):
			b.WriteByte(' ')
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}
