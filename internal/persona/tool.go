package persona

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ToolInfo is what an upstream's tools/list says about one tool. Every
// field is optional: the drafter works from tool names alone if it must.
type ToolInfo struct {
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description,omitempty"`
	Annotations *Annotations    `json:"annotations,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
}

// Annotations are the MCP tool annotations. They are hints from the
// upstream, so the drafter lets them add danger but never remove it: a tool
// named drop_table stays a delete tool whatever its readOnlyHint says.
type Annotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    *bool  `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool  `json:"destructiveHint,omitempty"`
	IdempotentHint  *bool  `json:"idempotentHint,omitempty"`
	OpenWorldHint   *bool  `json:"openWorldHint,omitempty"`
}

// ToolClass is the drafter's reading of what one tool can do.
type ToolClass struct {
	Tool      string   `json:"tool"`
	Abilities Ability  `json:"abilities"`
	Verbs     []string `json:"verbs,omitempty"` // lexicon lemmas of what it does
	Why       []string `json:"why"`             // the evidence, for explanations
}

// adminNameWords in a tool's name mark a change of who may do what.
var adminNameWords = setOf(`variable variables config configuration setting settings
	role roles permission permissions privilege privileges collaborator
	collaborators iam acl acls secret secrets access share invite member members membership policy
	policies firewall credential credentials`)

// toolVerbAbility is what a verb means as the first word of a tool's name
// when that differs from a job description's sense of it.
var toolVerbAbility = map[string]Ability{
	"review":  Write, // review_pull_request submits a review
	"restore": Write | Delete,
	"reset":   Write | Delete,
	"replace": Write | Delete,
	"sync":    Write,
}

// plainToolVerbs say all a tool does even without its description.
var plainToolVerbs = setOf(`create add insert update edit set modify rename move upload delete remove
	send post reply forward email message comment tag label assign close reopen open approve reject
	decline log record schedule reschedule book cancel trigger start stop restart reboot deploy retry
	rerun scale acknowledge grant revoke invite share archive draft save submit write mark flag
	backup snapshot`)

// toolReadObjects after run_/execute_ in a tool name make it a read:
// run_report, run_select_query. A bare run_query or execute_sql may write.
var toolReadObjects = setOf(`select report search analy check lookup`)

// sendNameWords later in a tool's name mark something sent out.
var sendNameWords = setOf(`reply replies autoreply forward notify notification notifications invite
	invitation invitations sms`)

// adminDescWords in the description of a tool that changes something make
// it an admin tool.
var adminDescWords = setOf(`secret secrets permission permissions privilege privileges role roles
	iam firewall credential credentials acl`)

// processWords are things that run: cancelling one is Execute.
var processWords = setOf(`run job pipelin build deploy task workflow`)

// commWords in a tool's text make an open-world change a Send.
var commWords = setOf(`mail messag reply autoreply invit notif letter sms chat dm recipient`)

// ClassifyTool reads what a tool can do from its identity ("upstream/name")
// and whatever metadata is known (info may be nil).
func ClassifyTool(id string, info *ToolInfo) ToolClass {
	c := ToolClass{Tool: id}
	_, name, _ := strings.Cut(id, "/")
	if name == "" {
		name = id
	}
	verbs := map[string]bool{}
	reread := "" // a name verb whose meaning the name settles for the description too
	add := func(a Ability, lemma, why string) {
		if a&^c.Abilities != 0 {
			c.Why = append(c.Why, why)
		}
		c.Abilities |= a
		if lemma != "" {
			verbs[lemma] = true
		}
	}
	// The name: its first word is the verb; later words may name admin objects.
	nt := tokenize(splitIdent(name))
	for k, t := range nt {
		if k == 0 && adminNameWords[t.word] {
			add(Admin, "", fmt.Sprintf("name starts with %q (admin)", t.word))
		}
		if k == 0 {
			v := lexicon[t.word]
			if p, ok := phrasal[t.word]; ok && len(nt) > 1 {
				if l, ok := p[nt[1].word]; ok {
					v = lexicon[l]
				}
			}
			if v != nil {
				ab := v.ab
				if x, ok := toolVerbAbility[v.lemma]; ok {
					ab = x // a tool named review_* submits a review; restore_* overwrites
				}
				if (v.lemma == "run" || v.lemma == "execute") && len(nt) > 1 && (toolReadObjects[stem(nt[1].word)] ||
					stem(nt[1].word) == "query" && info != nil && info.Annotations != nil && info.Annotations.ReadOnlyHint != nil && *info.Annotations.ReadOnlyHint) {
					ab = Read
				}
				if v.lemma == "cancel" && len(nt) > 1 && processWords[stem(nt[1].word)] {
					ab = Execute // cancelling a run stops work; it deletes nothing
					reread = v.lemma
				}
				if info == nil && ab&Mutating != 0 && !plainToolVerbs[v.lemma] {
					// "execute_sql", "merge_accounts", "terminate_employee": without
					// metadata, a verb that can mean many things means anything.
					ab = Mutating
				}
				add(ab, v.lemma, fmt.Sprintf("name starts with %q (%s)", t.word, ab))
			}
			continue
		}
		if sendNameWords[t.word] {
			add(Send, "", fmt.Sprintf("name mentions %q (send)", t.word))
		}
		if adminNameWords[t.word] {
			add(Admin, "", fmt.Sprintf("name mentions %q (admin)", t.word))
		}
		if v := lexicon[t.word]; v != nil && !v.ambiguous && v.ab&(Delete|Admin) != 0 {
			add(v.ab, v.lemma, fmt.Sprintf("name mentions %q (%s)", t.word, v.ab))
		}
	}
	text := ""
	if info != nil {
		text = strings.TrimSpace(info.Description)
	}
	if text != "" {
		dt := tokenize(text)
		di := parseTokens(dt, true)
		for _, r := range di.Requests {
			if r.Negated || r.Ability == Mutating || r.Verb == reread {
				continue
			}
			add(r.Ability, r.Verb, fmt.Sprintf("description says %q (%s)", r.Word, r.Ability))
		}
		if c.Abilities&Mutating != 0 {
			for _, t := range dt {
				if adminDescWords[t.word] {
					add(Admin, "", fmt.Sprintf("changes something and mentions %q (admin)", t.word))
					break
				}
			}
		}
	}
	var ann Annotations
	if info != nil && info.Annotations != nil {
		ann = *info.Annotations
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	switch {
	case c.Abilities == 0 && isTrue(ann.ReadOnlyHint):
		add(Read, "", "nothing in its name or description says what it does; readOnlyHint is true")
	case c.Abilities == 0:
		add(Write|Delete|Send|Execute|Admin, "", "nothing in its name, description or annotations says what it does; assumed it can do anything")
	case c.Abilities&Mutating == 0 && isFalse(ann.ReadOnlyHint):
		add(Write, "", "readOnlyHint is false although its words only read")
		if isTrue(ann.DestructiveHint) {
			add(Delete, "", "destructiveHint is true although its words only read")
		}
	case c.Abilities&Mutating != 0 && isTrue(ann.ReadOnlyHint):
		c.Why = append(c.Why, "readOnlyHint is true but its name or description says it changes things; the hint is ignored")
	}
	if c.Abilities&Mutating != 0 && c.Abilities&Send == 0 && isTrue(ann.OpenWorldHint) {
		for _, s := range stems(name + " " + text) {
			if commWords[s] {
				add(Send, "", fmt.Sprintf("openWorldHint is true and it concerns %q (send)", s))
				break
			}
		}
	}
	if c.Abilities&Mutating != 0 && isTrue(ann.DestructiveHint) && c.Abilities&Delete == 0 {
		c.Why = append(c.Why, "destructiveHint: it may overwrite data")
	}
	c.Verbs = make([]string, 0, len(verbs))
	for v := range verbs {
		c.Verbs = append(c.Verbs, v)
	}
	sort.Strings(c.Verbs)
	return c
}

// schemaWords returns the property names of an input schema, which add
// vocabulary ("ticket_id", "recipients").
func schemaWords(raw json.RawMessage) string {
	if len(raw) == 0 || len(raw) > 1<<16 {
		return ""
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return splitIdent(strings.Join(sortedKeys(s.Properties), " "))
}
