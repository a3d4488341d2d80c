package persona

import (
	"slices"
	"sort"
	"strings"
)

// Request is one thing a text asks for, or, when Negated, forbids.
type Request struct {
	// Verb is the lexicon lemma ("reply", "delete"); "read-only" for a
	// read-only statement.
	Verb string `json:"verb"`
	// Word is the word as written.
	Word    string  `json:"word"`
	Ability Ability `json:"ability"`
	Negated bool    `json:"negated,omitempty"`
	// Generic: the verb names its ability as a whole ("send", "modify"),
	// so a negation forbids the ability; a specific verb ("merge") only
	// forbids tools that do that thing.
	Generic bool `json:"generic,omitempty"`
	// Objects are the stems of what the verb applies to; empty means
	// everything ("never deletes anything").
	Objects []string `json:"objects,omitempty"`
	// Pos is the word index in the text.
	Pos int `json:"pos"`
	// topic is the stem a topical verb adds to Objects ("email" → mail).
	topic string
	// names are the stems of proper names in the object ("Twitter").
	names []string
	// cued: a determiner or pronoun follows the verb, so it is surely one.
	cued bool
	// head is the object's first noun phrase, before any preposition.
	head []string
	// tail is the head noun of the object and the stems after it.
	tail []string
	// dest are the stems after the object's first preposition ("to the
	// wiki", "on chat").
	dest []string
	// destUps are the upstreams dest names (set by the drafter).
	destUps []string
	// Outside: the object names a system the registry does not know
	// ("posts on Twitter"); no skill fulfils the request.
	Outside bool `json:"outside,omitempty"`
}

// String renders the request for explanations: `never "delete" (delete) branch`.
func (r Request) String() string {
	var b strings.Builder
	if r.Negated {
		b.WriteString("not ")
	}
	b.WriteString("\"" + r.Word + "\"")
	if len(r.Objects) > 0 {
		b.WriteString(" " + strings.Join(r.Objects, " "))
	}
	return b.String()
}

// Intent is what a job description asks for.
type Intent struct {
	Requests []Request `json:"requests"`
	// Asked is every ability some request asks for (Read is always in).
	Asked Ability `json:"asked"`
	// Forbidden is every ability a negation forbids for everything.
	Forbidden Ability `json:"forbidden"`
	// Terms weighs the topic stems of the text for relevance scoring.
	Terms map[string]float64 `json:"terms"`
	// verbal are the terms the text only uses as verbs or participles
	// ("page the on-call engineer", "who reports to whom", "log attached").
	verbal map[string]bool
	// created are the terms the text names only as what a request creates
	// ("opens an issue in the repository"): creating a thing needs no
	// reading of its kind.
	created map[string]bool
	// modifiers are the terms the text only uses before another noun
	// ("employee expense reports", "the billing team").
	modifiers map[string]bool
}

// Weights of description terms.
const (
	weightTerm    = 1.0
	weightNegated = 0.5 // a term in a negated clause still names the domain
	weightRelated = 0.4 // a neighbouring topic from the related table
	maxTermWeight = 2.0 // repetition saturates
)

// ParseIntent reads the abilities a job description asks for and forbids,
// with their objects, and its topic terms. It never fails and never panics;
// text beyond the first few thousand words is ignored.
func ParseIntent(text string) *Intent {
	return parseTokens(tokenize(text), false)
}

// parseTokens is the parser behind ParseIntent. toolMode reads a tool's own
// description: there, dangerous keywords count wherever they stand.
func parseTokens(ts []token, toolMode bool) *Intent {
	n := len(ts)
	lex := make([]*verb, n)
	particle := make([]bool, n)
	for i := range ts {
		w := ts[i].word
		if p, ok := phrasalForms[w]; ok {
			window := 3
			if p["uptodate"] != "" {
				window = 10 // "keeps the timeline page in the wiki up to date"
			}
			for j := i + 1; j <= i+window && j < n && !ts[j].brk; j++ {
				if lemma, ok := p[ts[j].word]; ok {
					if ts[j].hyph && j == i+1 {
						break // "follow-up emails", "a sign-off": a noun, not the verb
					}
					lex[i] = lexicon[lemma]
					particle[j] = true
					break
				}
			}
		}
		if lex[i] == nil && !particle[i] {
			lex[i] = lexicon[w]
		}
	}
	isVerb := make([]bool, n)
	for i := range ts {
		if lex[i] != nil {
			isVerb[i] = judgeVerb(ts, lex, isVerb, i, toolMode)
		}
	}
	// "approve or reject them": a word coordinated with a following verb of
	// the same form is a verb too.
	for i := n - 3; i >= 0; i-- {
		if lex[i] != nil && !isVerb[i] && !particle[i] && lex[i].ambiguous && !ts[i+1].brk && !ts[i+2].brk &&
			(ts[i+1].word == "or" || ts[i+1].word == "and") && isVerb[i+2] && !ts[i+1].comma &&
			(i == 0 || ts[i].brk || ts[i].comma || verbCues[ts[i-1].word] || ts[i-1].word == "and" || ts[i-1].word == "or") && sameForm(ts[i+2].word, lex[i+2], form(ts[i].word, lex[i])) {
			isVerb[i] = true
		}
	}

	// "may not approve, merge or push", "never close them or send email":
	// the items of a list coordinated with a verb are verbs of the same form.
	for i := 1; i < n && !toolMode; i++ {
		if lex[i] == nil || isVerb[i] || particle[i] || ts[i].brk {
			continue
		}
		if j := coordinatedVerb(ts, lex, isVerb, i); j >= 0 {
			isVerb[i] = true
		}
	}
	// Once every verb is known: "and publishes incident updates".
	for i := range ts {
		if isVerb[i] && !particle[i] && objectHead(ts, lex, isVerb, i) {
			isVerb[i] = false
		}
	}
	negAt, leftAt := idiomNegations(ts, lex, isVerb, toolMode)

	in := &Intent{Asked: Read, Terms: map[string]float64{}}
	neg, sub, cond, pronounNeg := false, false, false, false
	held, before := false, false // an idiom's negation, and the state before it
	var prevObjects []string
	for i := 0; i < n; i++ {
		t := ts[i]
		if held && !negAt[i] {
			neg, held = before, false
		}
		if t.brk {
			neg, sub, cond = false, false, false
		}
		if t.comma {
			cond = false
		}
		w := t.word
		if toolMode && subordinators[w] {
			sub = true // "Acknowledge an alert so it stops paging": an effect, not an action
		}
		if !toolMode && conditions[w] && i+1 < n && !ts[i+1].brk && !ts[i+1].comma && !isVerb[i+1] {
			// "when someone joins or leaves the team", "once the manager
			// approves": what others do is the trigger, not the job.
			cond = true
		}
		if cond && subjectPronouns[w] && i+1 < n && isVerb[i+1] && !ts[i+1].brk {
			// "when a job fails because of a flaky test it re-runs the
			// job": the subject of the main clause ends the condition.
			cond = false
		}
		if t.comma && pronounNeg {
			neg, pronounNeg = false, false // "nothing may be deleted, but …"
		}
		switch {
		case scopeEnders[w]:
			neg, before = false, false
		case pronounNegators[w] && i > 0 && !t.brk && !t.comma && ts[i-1].stem != "" && lexicon[ts[i-1].word] == nil:
			// "pages nobody has touched": a relative clause, not a negation
		case negators[w]:
			neg, pronounNeg, before = true, pronounNegators[w], true
		}
		// An idiom negates the words it covers ("refunds stay with the
		// finance team"), not what follows it.
		if negAt[i] {
			if !held {
				held, before = true, neg
			}
			neg = true
		}
		// Topic terms.
		if t.stem != "" {
			wt := weightTerm
			if neg {
				wt = weightNegated
			}
			in.addTerm(t.stem, wt)
			for _, r := range related[t.stem] {
				in.addTerm(r, weightRelated*wt)
			}
		}
		// "read-only", "view only", "only reads", "reporting only".
		if readOnlyAt(ts, lex, isVerb, i) {
			objs := clauseObjects(ts, i)
			if k := i + 2; ts[i].word != "only" && k < len(ts) && !ts[k].brk && roleNouns[ts[k].word] {
				objs = nil // "read-only analyst": the whole role reads only
			}
			in.Requests = append(in.Requests, Request{Verb: "read-only", Word: readOnlyWords(ts, i), Ability: Mutating, Negated: true, Generic: true, Objects: objs, Pos: i})
			continue
		}
		// "No exports, ever.", "No deletions.": a sentence that is "no" and
		// a noun forbids what the noun names, as "cannot see exports" would
		// ("No payments, no invoices sent" is a list that shares its verb).
		if !toolMode && w == "no" && (i == 0 || t.brk) && i+1 < n && !ts[i+1].brk && ts[i+1].stem != "" && (i+2 >= n || ts[i+2].brk || ts[i+2].comma && ts[i+2].word != "no") {
			in.Requests = append(in.Requests, Request{Verb: "see", Word: ts[i+1].word, Ability: Read, Negated: true, Objects: []string{ts[i+1].stem}, Pos: i})
		}
		var v *verb
		switch {
		case cond, leftAt[i]:
		case !toolMode && talkForms[w] != "" && !neg && messageDestAfter(ts, i) && (i == 0 || t.brk || t.comma || !determiners[ts[i-1].word]):
			// "tell the team in chat", "confirms the swap in the thread",
			// "explaining why in a direct message": a verb of talking
			// sends a message when the clause says where it goes ("tells
			// engineers which version runs" answers whoever asked)
			v = lexicon["message"] // "leave refunds to us" asks for nothing
		case !toolMode && isVerb[i] && othersAct(ts, isVerb, i):
			// "anyone who has left the company", "who deployed it", "which
			// version is running": what a relative or embedded clause says
			// someone or something does is not the agent's request
		case sendNounAt(ts, i):
			v = lexicon[nounForms[w]] // "summarise them in a message to the channel", "reports by email"
		case isVerb[i] && !sub:
			v = lex[i]
		case nounForms[w] != "" && (neg && i > 0 && (negators[ts[i-1].word] || determiners[ts[i-1].word] || i > 1 && negators[ts[i-2].word]) ||
			i > 0 && !t.brk && lightVerbs[ts[i-1].word] ||
			i > 1 && !t.brk && !ts[i-1].brk && !ts[i-1].comma && lightVerbs[ts[i-2].word] && lex[i-1] == nil):
			v = lexicon[nounForms[w]]
			if w == "access" && !neg {
				v = lexicon["grant"] // "gives access", "handles access requests": granting it
			}
		case toolMode && !neg && toolKeywords[w] != 0:
			in.Requests = append(in.Requests, Request{Verb: w, Word: w, Ability: toolKeywords[w], Generic: true, Pos: i})
			continue
		}
		if v == nil {
			continue
		}
		r := Request{Verb: v.lemma, Word: w, Ability: v.ab, Negated: neg, Generic: v.generic, Pos: i}
		objs, pronoun, names, np, dest := objectsAfter(ts, isVerb, particle, i)
		if v.ab == Read && !neg && len(objs) == 3 {
			objs = append(objs, listTail(ts, isVerb, i, objs)...)
		}
		r.names, r.dest = names, dest
		if k := i + 1; k < n && !ts[k].brk && !ts[k].comma && (determiners[ts[k].word] || pronouns[ts[k].word]) {
			r.cued = true // "email the owner", "post it"
		}
		if np > 0 {
			r.tail = slices.Clone(objs[np-1:]) // the head noun and what follows it
			r.head = slices.Clone(objs[:np])   // the first noun phrase
		}
		if isVerb[i] && form(w, v) == 'd' && i > 0 && passiveAux[ts[i-1].word] {
			// A passive ("nothing may be deleted", "the CRM is not to be
			// edited"): what it applies to is its subject, before it.
			objs, pronoun = subjectBefore(ts, isVerb, i)
		}
		if pronoun && len(objs) == 0 && r.Ability&Send != 0 {
			// "shares it by email": the pronoun's antecedent is what, the
			// channel named after a preposition is where it is sent.
			r.dest = upstreamAfter(ts, i)
		}
		if pronoun && len(objs) == 0 && len(prevObjects) > 0 {
			objs = append([]string(nil), prevObjects...)
		}
		if pronoun && len(objs) == 0 {
			// "When two accounts are the same company, merge them": the
			// pronoun stands for what the sentence named before the verb.
			objs = sentenceBefore(ts, isVerb, i)
		}
		// "drafts only": a restriction, not a request.
		if i+1 < len(ts) && !ts[i+1].brk && ts[i+1].word == "only" && (i+2 >= len(ts) || ts[i+2].brk) {
			continue
		}
		// "answer in the thread": answering where messages go replies
		if v.lemma == "answer" && messageDestAfter(ts, i) {
			r.Verb, r.Ability, r.Generic = "reply", Send, false
		}
		if len(objs) > 0 && !pronoun {
			prevObjects = objs
		}
		// "answers the emails", "answer tickets": replying to a message
		// sends one; "answers questions" only reads.
		if v.lemma == "answer" && slices.ContainsFunc(objs, func(o string) bool { return answeredNouns[o] }) {
			r.Verb, r.Ability, r.Generic = "reply", Send, false
		}
		// "prepares replies": preparing a message is drafting it.
		if v.lemma == "prepare" && slices.ContainsFunc(objs, func(o string) bool { return preparedNouns[o] }) {
			r.Verb, r.Ability, r.Generic = "draft", Write, false
			if d := normWord("draft"); d != "" {
				objs, r.topic = append(objs, d), d
				in.addTerm(d, weightTerm)
			}
		}
		// "removes anyone who has left", "remove users from the channel":
		// taking people away is managing access (admin), not deleting data.
		if v.ab == Delete && i+1 < n && !ts[i+1].brk && peopleWords[ts[i+1].word] {
			r.Ability, r.Generic = Admin, false
		}

		// "changing who can see them", "controls who may edit the page":
		// deciding who may do what is admin.
		if v.ab == Write && whoMay(ts, i) {
			r.Ability, r.Generic = Admin, false
		}
		// "run a query", "execute reports" read; they do not execute.
		if v.ab == Execute && (v.lemma == "run" || v.lemma == "execute") && len(objs) > 0 && readObjects[objs[0]] {
			r.Ability, r.Generic = Read, false
		}
		// "posts a public reply": the object names the act, so "post" does
		// not add its own domain (chat) to it.
		if v.topical && !slices.ContainsFunc(objs, func(o string) bool { return actNouns[o] && o != normWord(v.lemma) }) {
			if s := normWord(v.lemma); s != "" {
				objs = append(objs, s)
				r.topic = s
			}
		}
		r.Objects = dedupe(append(objs, r.dest...))
		in.Requests = append(in.Requests, r)
	}
	shareObjects(ts, in.Requests)
	if !toolMode {
		in.Requests = append(in.Requests, channelsWatched(ts, in.Requests)...)
	}
	in.verbal = map[string]bool{}
	nominal := map[string]bool{}
	for i, t := range ts {
		if t.stem == "" {
			continue
		}
		if v := lex[i]; v != nil && (isVerb[i] || form(t.word, v) == 'd') || lex[i] == nil && strings.HasSuffix(t.word, "ed") {
			in.verbal[t.stem] = true
		} else {
			nominal[t.stem] = true
		}
	}
	for s := range nominal {
		delete(in.verbal, s)
	}
	in.created = createdTerms(ts, in.Requests)
	in.modifiers = modifierTerms(ts, lex)
	in.Requests = append(in.Requests, verblessNegations(ts, negAt, in.Requests)...)
	for _, r := range in.Requests {
		switch {
		case !r.Negated:
			in.Asked |= r.Ability
		case r.Generic && len(r.Objects) == 0:
			in.Forbidden |= r.Ability &^ Read
		}
	}
	in.Asked &^= in.Forbidden
	in.Asked |= Read
	return in
}

// otherSubjects are people other than the agent: what follows them is
// their act.
var otherSubjects = setOf(`she he someone somebody people humans nobody`)

// subjectPronouns start a main clause.
var subjectPronouns = setOf(`it they we you`)

// conditions open a clause that says when the job happens; with a subject
// after them ("when a customer writes in") its verbs are not requests.
// actNouns are the stems of nouns that name a message or a change
// ("reply", "comment", "note"); filled from nounForms and a few more.
var actNouns = func() map[string]bool {
	m := map[string]bool{}
	for w, lemma := range nounForms {
		if v := lexicon[lemma]; v != nil && v.ab&(Send|Write) != 0 && v.ab != Read {
			if s := normWord(w); s != "" {
				m[s] = true
			}
		}
	}
	for _, w := range []string{"comment", "note", "review", "answer", "response", "summary", "update"} {
		if s := normWord(w); s != "" {
			m[s] = true
		}
	}
	return m
}()

var conditions = setOf(`when whenever if once unless`)

// coordinatedVerb reports the verb that the lexicon word at i is listed
// with ("approve, merge or push"; "close them or send email"), or -1: the
// word follows a comma or a conjunction, and the nearest verb before it in
// the same clause, at most four words back, has the same form. A third
// person form of a word that is as often a plural noun ("emails") must be
// followed by what starts an object.
func coordinatedVerb(ts []token, lex []*verb, isVerb []bool, i int) int {
	w := ts[i].word
	conj := ts[i-1].word == "or" || ts[i-1].word == "and" || ts[i-1].word == "nor"
	if !ts[i].comma && !conj || conj && ts[i-1].brk {
		return -1
	}
	if i+1 < len(ts) && !ts[i+1].brk && !ts[i+1].comma && roleNouns[ts[i+1].word] {
		return -1
	}
	f := form(w, lex[i])
	window := 5
	if f == 's' && lex[i].ambiguous && !(i+1 < len(ts) && !ts[i+1].brk && objectCues[ts[i+1].word]) {
		// "reads tickets and posts replies": after "and", followed by a
		// bare noun, it is a verb like the one that opened the clause;
		// "and emails from customers", "and emails sent by …" are nouns.
		if !conj || ts[i-1].comma || !bareNounAt(ts, lex, i+1) {
			return -1
		}
		window = i
	}
	if f == 'd' {
		return -1
	}
	if f == 'b' && i+1 < len(ts) && !ts[i+1].brk && (objectCues[ts[i+1].word] || prepositions[ts[i+1].word]) {
		// "send an email to the release-notes list and post in #releases":
		// a verb phrase, coordinated with the clause's verb however far.
		window = i
	}
	start := i - 1
	if conj {
		start = i - 2
	}
	for k := start; k >= 0 && k >= i-window; k-- {
		if isVerb[k] {
			if sameForm(ts[k].word, lex[k], f) {
				return k
			}
			return -1
		}
		if ts[k].brk {
			break
		}
	}
	return -1
}

// idiomNegations marks the words a negating idiom without a negator
// covers: "merging is left to humans", "refunds are for humans". The idiom
// negates its clause up to where it stands.
func idiomNegations(ts []token, lex []*verb, isVerb []bool, toolMode bool) (out, leftAt map[int]bool) {
	if toolMode {
		return nil, nil
	}
	leftAt = map[int]bool{}
	// "leave refunds to us", "leaves the approval for the manager": what
	// is left, up to whom it is left to.
	for i := range ts {
		if w := ts[i].word; w != "leave" && w != "leaves" {
			continue
		}
		if leftMessage(ts, i) {
			continue // "leaves an internal note for a human": writing one
		}
		for j := i + 2; j < len(ts) && j <= i+6 && !ts[j].brk && !ts[j].comma; j++ {
			if ts[j].word == "as" || ts[j].word != "to" && ts[j].word != "for" && prepositions[ts[j].word] {
				// "leave them as drafts for the rep", "leaves it in the
				// drafts folder for the lead": a state or a place, not a
				// hand-off.
				break
			}
			if ts[j].word != "to" && ts[j].word != "for" {
				continue
			}
			k := j + 1
			if k < len(ts) && (ts[k].word == "the" || ts[k].word == "a") {
				k++
			}
			human := false
			for m := k; m < len(ts) && m <= k+2 && !ts[m].brk && !ts[m].comma; m++ {
				human = human || leftTo[ts[m].word] || (humanWords[ts[m].word] || roleNouns[ts[m].word]) && !selfWords[ts[m].word]
			}
			if human {
				if out == nil {
					out = map[int]bool{}
				}
				for m := i; m <= k; m++ {
					out[m] = true
				}
				leftAt[i] = true
			}
			break
		}
	}
	for i := 1; i+1 < len(ts); i++ {
		w, next := ts[i].word, ts[i+1].word
		idiom := false
		switch {
		case (w == "left" || w == "up") && (next == "to" || next == "for") && auxiliaries[ts[i-1].word]:
			idiom = true // "is left to humans", "is up to the agents"
		case w == "for" && auxiliaries[ts[i-1].word] && humanWords[next]:
			idiom = true // "are for humans"
		case w == "for" && auxiliaries[ts[i-1].word] && i+2 < len(ts) && (next == "a" || next == "the") && humanWords[ts[i+2].word]:
			idiom = true // "is for a human"
		}
		if !idiom {
			if deferredAt(ts, i) {
				if out == nil {
					out = map[int]bool{}
				}
				// The clause's subject is what is handed off: back to its
				// start, a comma, "but", a condition, a relative pronoun or
				// a finite verb ("updates tickets but is not allowed to
				// close them" keeps the update); and the participle of a
				// passive ("are sent by the manager").
				if passiveAux[ts[i].word] && i+1 < len(ts) {
					out[i+1] = true
				}
				for k := i; k >= 0; k-- {
					if conditions[ts[k].word] || scopeEnders[ts[k].word] ||
						k < i && !ts[k].brk && !ts[k].comma && k > 0 && isVerb[k] && lex[k] != nil && form(ts[k].word, lex[k]) != 'g' && !inSubjectRelative(ts, k) {
						break
					}
					out[k] = true
					if ts[k].brk || ts[k].comma {
						break
					}
				}
			}
			continue
		}
		if out == nil {
			out = map[int]bool{}
		}
		for k := i; k >= 0; k-- {
			if scopeEnders[ts[k].word] || conditions[ts[k].word] {
				break // "it can read everything, but answering is left to the agents"
			}
			out[k] = true
			if ts[k].brk {
				break
			}
		}
	}
	return out, leftAt
}

// othersAct reports a verb at i whose subject is not the agent: it follows
// "who" ("anyone who has left", "and who deployed it"; not "an assistant
// who schedules"), or an auxiliary of a relative clause ("which version is
// running", "what was deployed").
func othersAct(ts []token, isVerb []bool, i int) bool {
	k := i - 1
	for k >= 0 && k >= i-2 && (auxiliaries[ts[k].word] || modals[ts[k].word]) && !ts[k+1].brk {
		k--
	}
	if k >= 0 && k < i && !ts[k+1].brk && ts[k].word == "who" {
		return k == 0 || ts[k].brk || !roleNouns[ts[k-1].word] && !selfWords[ts[k-1].word]
	}
	return i > 0 && !ts[i].brk && auxiliaries[ts[i-1].word] && inRelative(ts, isVerb, i-1)
}

// messageDestAfter reports a destination of a message in the clause after
// the verb at i: a preposition ("in", "by", "via", "to") and, within the
// next three words, a channel, thread, chat, direct message or email.
func messageDestAfter(ts []token, i int) bool {
	for j := i + 1; j < len(ts) && j <= i+10 && !ts[j].brk; j++ {
		if !destPrepositions[ts[j].word] {
			continue
		}
		for k := j + 1; k < len(ts) && k <= j+3 && !ts[k].brk && !ts[k].comma; k++ {
			if messageDests[ts[k].stem] {
				return true
			}
		}
	}
	return false
}

// createdTerms are the stems that occur only in the objects of requests
// that create something ("file an issue", "open a ticket in the
// repository"), as many times as such requests name them.
func createdTerms(ts []token, rs []Request) map[string]bool {
	named := map[string]int{}
	for _, r := range rs {
		if r.Negated || !createVerbs[r.Verb] {
			continue
		}
		for _, o := range r.Objects {
			if o != r.topic {
				named[o]++
			}
		}
	}
	if len(named) == 0 {
		return nil
	}
	for _, t := range ts {
		if _, ok := named[t.stem]; ok {
			named[t.stem]--
		}
	}
	out := map[string]bool{}
	for s, n := range named {
		if n >= 0 {
			out[s] = true
		}
	}
	return out
}

// modifierTerms are the stems every use of which stands right before
// another noun of the same phrase.
func modifierTerms(ts []token, lex []*verb) map[string]bool {
	mod, head := map[string]bool{}, map[string]bool{}
	for k, t := range ts {
		if t.stem == "" {
			continue
		}
		n := k + 1
		if n < len(ts) && !ts[n].brk && !ts[n].comma && !ts[n].hyph && ts[n].stem != "" && lex[n] == nil && !t.hyph {
			mod[t.stem] = true
		} else {
			head[t.stem] = true
		}
	}
	for s := range head {
		delete(mod, s)
	}
	return mod
}

// createVerbs make a new thing (as lemmas).
var createVerbs = setOf(`open file create raise submit log draft write`)

// channelsWatched turns a chat channel or thread named as a place ("when
// engineers ask in the #oncall channel", "the bills the controller
// approves in #ap-approvals") into a request to read it, unless the place
// is where one of the requests posts.
func channelsWatched(ts []token, rs []Request) []Request {
	var out []Request
	for k, t := range ts {
		if !watchedPlaces[t.stem] || k == 0 {
			continue
		}
		at := false
		for j := k - 1; j >= 0 && j >= k-3 && !ts[j+1].brk; j-- {
			if ts[j].word == "in" || ts[j].word == "on" || ts[j].word == "from" {
				at = true
				break
			}
		}
		posted := slices.ContainsFunc(rs, func(r Request) bool {
			return r.Pos < k && r.Ability&Send != 0 && !r.Negated && slices.Contains(r.Objects, t.stem)
		})
		if at && !posted && !slices.ContainsFunc(out, func(r Request) bool { return r.Objects[0] == t.stem }) {
			out = append(out, Request{Verb: "watch", Word: t.word, Ability: Read, Objects: []string{t.stem}, head: []string{t.stem}, Pos: k})
		}
	}
	return out
}

// watchedPlaces are chat places a role may watch, as stems.
var watchedPlaces = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range []string{"channel", "thread"} {
		m[normWord(w)] = true
	}
	return m
}()

// talkForms are the forms of verbs of talking, which send a message only
// with a destination (messageDestAfter). They are not in the lexicon: a
// tool named confirm_order or explain_query sends nothing.
var talkForms = func() map[string]string {
	m := map[string]string{"told": "tell"}
	for _, v := range strings.Fields(`tell confirm nudge explain`) {
		for _, f := range append([]string{v}, inflect(v)...) {
			m[f] = v
		}
	}
	return m
}()

// messageDests are where a message goes, as stems.
var messageDests = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`channel channels thread threads chat dm dms message messages email emails mail inbox`) {
		if s := normWord(w); s != "" {
			m[s] = true
		}
	}
	return m
}()

// peopleWords are people as the object of a verb.
var peopleWords = setOf(`anyone anybody someone somebody people users user members member collaborators collaborator everyone leavers`)

// modals come between a relative word and its verb ("who can see").
var modals = setOf(`can could may might will would should must shall`)

// modifiesNext reports a noun at k followed by a noun of the same phrase
// ("agent roles", "team calendar").
func modifiesNext(ts []token, k int) bool {
	n := k + 1
	return n < len(ts) && !ts[n].brk && !ts[n].comma && (ts[n].stem != "" || roleNouns[ts[n].word] || roleWords[ts[n].word]) && lexicon[ts[n].word] == nil && !stopWords[ts[n].word] &&
		!prepositions[ts[n].word] && !nounPrepositions[ts[n].word] && !determiners[ts[n].word] && !relatives[ts[n].word] &&
		!conditions[ts[n].word] && !adverb(ts[n].word) && ts[n].word != "and" && ts[n].word != "or"
}

// whoMay reports "who can see", "who may edit", "who has access" right
// after the verb at i.
func whoMay(ts []token, i int) bool {
	if i+2 >= len(ts) || ts[i+1].brk || ts[i+1].word != "who" || ts[i+2].brk {
		return false
	}
	w := ts[i+2].word
	return modals[w] || w == "has" || w == "have" || w == "gets" || w == "get"
}

// listTail collects the nouns of a read request's object list past its
// first three ("pulls up the account, its open deals and recent activity
// from the CRM and the last email exchanges"): up to the next verb, clause
// break or condition, at most twelve words on.
func listTail(ts []token, isVerb []bool, i int, have []string) []string {
	var out []string
	seen := 0
	for j := i + 1; j < len(ts) && j <= i+20; j++ {
		t := ts[j]
		if j > i+1 && (t.brk || isVerb[j] || conditions[t.word] || relatives[t.word] || negators[t.word] || scopeEnders[t.word]) {
			break
		}
		if t.stem == "" || adverb(t.word) {
			continue
		}
		seen++
		if seen > 3 && !slices.Contains(have, t.stem) && !slices.Contains(out, t.stem) {
			out = append(out, t.stem)
		}
	}
	return out
}

// groupNouns are people a thing is sent or handed to ("the billing team").
var groupNouns = setOf(`team teams group groups department departments squad`)

// roleWords are nouns for a role's rights (stop stems, so without a stem).
var roleWords = setOf(`role roles permission permissions`)

// leftMessage reports "leave" at i whose object is a message ("leaves an
// internal note for the agent", "leave a comment"): it writes one.
func leftMessage(ts []token, i int) bool {
	for j := i + 1; j < len(ts) && j <= i+4 && !ts[j].brk && !ts[j].comma; j++ {
		if leftNouns[ts[j].word] {
			return true
		}
		if prepositions[ts[j].word] || ts[j].word == "to" || ts[j].word == "for" {
			return false
		}
	}
	return false
}

// leftNouns are what one leaves by writing it.
var leftNouns = setOf(`note notes comment comments message messages reply replies review reviews feedback remark remarks`)

// inSubjectRelative reports a verb at k inside a relative clause that
// opens its clause's subject: "anything that destroys infrastructure …".
func inSubjectRelative(ts []token, k int) bool {
	for j := k - 1; j >= 0; j-- {
		if relatives[ts[j].word] {
			return true
		}
		if ts[j].brk || ts[j].comma {
			return false
		}
	}
	return false
}

// deferredAt reports a predicate at word i that hands what its subject
// names to someone else or puts it out of the job's scope: "refunds stay
// with the finance team", "restores are done by people", "anything that
// destroys infrastructure needs a human", "approving leave is the
// manager's job", "exports are not part of the job", "deleting tickets is
// off-limits", "salary figures are none of its business".
func deferredAt(ts []token, i int) bool {
	w := ts[i].word
	if i > 0 && !ts[i].brk && (ts[i-1].word == "and" || ts[i-1].word == "or" || ts[i-1].word == "but") {
		return false // "merges duplicates and needs a human …": the agent's own predicate
	}
	at := func(k int) string {
		if k < len(ts) && k > i && !ts[k].brk && !ts[k].comma {
			return ts[k].word
		}
		return ""
	}
	// "the recruiter": a determiner and a noun that is not the agent, a
	// verb or a channel ("by the hour" and "by email" are not someone)
	someoneAt := func(k int) bool {
		d, x := at(k), at(k+1)
		return (d == "the" || d == "a" || d == "an" || d == "their" || d == "our") && x != "" && !selfWords[x] &&
			lexicon[x] == nil && nounForms[x] == "" && !determiners[x] && !timeNouns[x]
	}
	// a human (or someone's role) within the next few words
	human := func(from int) bool {
		for k := from; k < from+4; k++ {
			x := at(k)
			if x == "" {
				return false
			}
			if (humanWords[x] || roleNouns[x]) && !selfWords[x] {
				return true
			}
		}
		return false
	}
	switch {
	case deferVerbs[w] && (at(i+1) == "with" || at(i+1) == "to") && !(i > 0 && !ts[i].brk && determiners[ts[i-1].word]):
		return true // "stay with the finance team", "belongs to finance" (not "rejects the rest with a reason")
	case (w == "need" || w == "needs" || w == "require" || w == "requires") && human(i+1):
		return true // "needs a human", "requires a manager"
	case passiveAux[w] && at(i+2) == "by" && (human(i+3) || someoneAt(i+3)):
		return true // "are done by people", "is sent by the hiring manager", "are sent by the recruiter"
	case auxiliaries[w] && at(i+1) == "for" && (human(i+2) || someoneAt(i+2)) && i > 0 && !ts[i].brk && !subjectWords[ts[i-1].word] && !selfWords[ts[i-1].word]:
		return true // "restoring backups is for the DBA on call", "refunds are for humans"
	case passiveAux[w] && reservedWords[at(i+1)] && (at(i+2) == "for" || at(i+2) == "to") && human(i+3):
		return true // "sending is reserved for the account owner", "is restricted to admins"
	case auxiliaries[w] && (at(i+1) == "off" && strings.HasPrefix(at(i+2), "limit") || at(i+1) == "out" && at(i+2) == "of" && (at(i+3) == "scope" || at(i+3) == "bounds")):
		return true // "is off-limits", "is out of scope"
	case w == "isnt" || w == "arent" || auxiliaries[w] && negators[at(i+1)]:
		// "exports are not part of the job", "salaries are none of its
		// business": a negated predicate after a subject. "it is not
		// allowed to …" has nothing before it to negate.
		// An object pronoun ("changing who can see them is not allowed")
		// ends the subject clause; it is not the subject.
		return i > 0 && !ts[i].brk && !subjectWords[ts[i-1].word] && !relatives[ts[i-1].word]
	case auxiliaries[w]:
		// "approving leave is the manager's job": someone else's job.
		for k := i + 1; k <= i+4; k++ {
			x := at(k)
			if x == "" {
				return false
			}
			if jobNouns[x] {
				prev := ts[k-1].word
				return k > i+1 && strings.HasSuffix(prev, "s") && !selfWords[prev] && !determiners[prev] && prev != "this" && prev != "his"
			}
		}
	}
	return false
}

// verblessNegations turns a clause that an idiom negates and in which no
// verb stands ("salary figures are none of its business") into a negated
// request to see what it names.
func verblessNegations(ts []token, negAt map[int]bool, rs []Request) []Request {
	var out []Request
	for a := 0; a < len(ts); a++ {
		if !negAt[a] {
			continue
		}
		b := a
		for b+1 < len(ts) && negAt[b+1] && !ts[b+1].brk {
			b++
		}
		has := slices.ContainsFunc(rs, func(r Request) bool { return r.Pos >= a && r.Pos <= b })
		var objs []string
		for k := a; k <= b && !has; k++ {
			if ts[k].stem != "" && lexicon[ts[k].word] == nil && !adverb(ts[k].word) && !jobNouns[ts[k].word] {
				objs = append(objs, ts[k].stem)
			}
		}
		if len(objs) > 0 {
			out = append(out, Request{Verb: "access", Word: ts[a].word, Ability: Read, Negated: true, Objects: dedupe(firstN(objs, 3)), Pos: a})
		}
		a = b
	}
	return out
}

// subjectWords are pronouns that stand as a clause's subject: "it is not
// allowed to …" and "this is for the support team" negate nothing before.
var subjectWords = setOf(`it they this that these those we you he she`)

// timeNouns follow "by the" without naming someone ("by the hour").
var timeNouns = setOf(`hour hours day days week weeks month months end time way book`)

// reservedWords keep a task for someone else ("is reserved for").
var reservedWords = setOf(`reserved restricted limited kept`)

// deferVerbs hand a task to someone ("stays with", "belongs to").
var deferVerbs = setOf(`stay stays remain remains rest rests belong belongs lie lies`)

// jobNouns name whose work a thing is.
var jobNouns = setOf(`job responsibility call decision business remit problem duty task`)

// selfWords are the agent itself.
var selfWords = setOf(`its bot bots agent assistant assistants yours your our`)

// leftTo are pronouns a task is left to ("leave refunds to us").
var leftTo = setOf(`us me them humans people`)

// humanWords are who a task is left to.
var humanWords = setOf(`human humans people person persons staff someone manager managers agents agent
	team owner owners admins administrators accountant accountants controller reviewer reviewers`)

func (in *Intent) addTerm(s string, w float64) {
	in.Terms[s] = min(in.Terms[s]+w, maxTermWeight)
}

var sentenceFallback = false

// subordinators start a clause that, in a tool description, tells an
// effect or a condition rather than what the tool does.
var subordinators = setOf(`so which that until when whenever while because if unless`)

// preparedNouns are messages: preparing one is drafting it.
var preparedNouns = setOf(`reply mail messag respons draft answer`)

// answeredNouns are messages: answering one sends a reply.
var answeredNouns = setOf(`mail messag ticket invit dm`)

// readObjects are objects that make "run"/"execute" a read.
var readObjects = setOf(`query sql select report search analy check lookup`)

// toolKeywords name dangerous effects wherever they stand in a tool's own
// description ("Execute any SQL statement, including INSERT, UPDATE, DELETE").
var toolKeywords = map[string]Ability{
	"delete": Delete, "deletes": Delete, "deleted": Delete, "permanently": Delete, "erase": Delete,
	"erases": Delete, "purge": Delete, "purges": Delete, "destroy": Delete, "destroys": Delete,
	"wipe": Delete, "wipes": Delete, "irreversible": Delete, "undone": Delete, "remove": Delete,
	"removes": Delete, "removed": Delete, "overwrite": Delete, "overwriting": Delete,
	"overwrites": Delete, "truncate": Delete,
	"insert": Write, "inserts": Write, "update": Write, "updates": Write, "ddl": Write | Admin,
	"grant": Admin, "grants": Admin, "revoke": Admin, "revokes": Admin, "privilege": Admin,
	"privileges": Admin, "permission": Admin, "permissions": Admin,
}

// judgeVerb decides whether the lexicon word at i is used as a verb. In
// toolMode (a tool's one-line description: an imperative verb and a noun
// phrase) only the strong cues count.
func judgeVerb(ts []token, lex []*verb, isVerb []bool, i int, toolMode bool) bool {
	v := lex[i]
	w := ts[i].word
	f := form(w, v)
	// "… - and drafts replies": a conjunction opening a clause opens it.
	start := i == 0 || ts[i].brk || i > 0 && ts[i-1].brk && (ts[i-1].word == "and" || ts[i-1].word == "or" || ts[i-1].word == "then")
	prev, prev2 := "", ""
	if !start || !ts[i].brk && i > 0 {
		prev = ts[i-1].word
		if i > 1 && !ts[i-1].brk {
			prev2 = ts[i-2].word
		}
	}
	// Someone else's act: "replies that she sends herself", "cards
	// people forward to it".
	if otherSubjects[prev] && !ts[i].comma && !ts[i].brk {
		return false
	}
	// Before a role noun it names the role: "Refund agent", "Scheduling
	// assistant"; not when the role noun modifies a noun after it
	// ("changing agent roles").
	if i+1 < len(ts) && !ts[i+1].brk && !ts[i+1].comma && roleNouns[ts[i+1].word] && !modifiesNext(ts, i+1) {
		return false
	}
	if f == 's' && roleNouns[prev] && !ts[i].comma && !ts[i-1].brk {
		return true // "the bot promotes whatever passed QA"
	}
	// After a determiner it is a noun: "the open pull requests", "a reply".
	if determiners[prev] && prev != "that" && prev != "which" {
		return false
	}
	// "a public reply": determiner, one modifier, the word.
	if prev2 != "" && determiners[prev2] && prev2 != "that" && !isVerb[i-1] && !ts[i].comma && !ts[i-1].comma && f != 'g' {
		return false
	}
	switch f {
	case 'g':
		// "the simple scheduling emails": after a determiner and before a
		// noun it is a modifier.
		if i+1 < len(ts) && !ts[i+1].brk && !ts[i+1].comma && lex[i+1] != nil && lex[i+1].ambiguous && form(ts[i+1].word, lex[i+1]) == 's' &&
			(determiners[prev] || determiners[prev2] && prev != "" && lex[i-1] == nil) {
			return false
		}
		return true // "updating records", "without sending it"
	case 'd':
		// Passive or perfect ("are removed", "has sent"); otherwise an
		// adjective ("merged pull requests", "the commits merged this week").
		// In a relative clause it describes its noun: "what was deployed
		// recently", "emails that were sent".
		return auxiliaries[prev] && !inRelative(ts, isVerb, i-1)
	}
	if prev == "that" || prev == "which" || prev == "who" {
		return f == 's'
	}
	// After a preposition it is a noun: "by email", "via chat", "in a
	// message" ("by emailing them" is a gerund, judged above).
	if v.ambiguous && nounPrepositions[prev] && !ts[i].comma { // "reads what comes in, files them": the comma ends the phrase
		return false
	}
	if !v.ambiguous {
		return true
	}
	// Right after another verb, an ambiguous word is its object: "drafts replies".
	if i > 0 && !start && !ts[i].comma && isVerb[i-1] {
		return false
	}
	if start {
		return true
	}
	if prev == "to" {
		return prev2 != "" && (infinitiveHeads[prev2] || isVerb[i-2])
	}
	if verbCues[prev] {
		return true
	}
	if (prev == "and" || prev == "or") && i > 1 && !ts[i-1].comma && isVerb[i-2] {
		return true // "read and reply"
	}
	if toolMode {
		return false
	}
	if ts[i].comma || (prev == "and" || prev == "or") && ts[i-1].comma {
		// ", and replies": a list of verb phrases when the previous item
		// starts with a verb of the same form.
		j := segmentStart(ts, i)
		for j >= 0 && j+1 < i && (subjectPronouns[ts[j].word] || adverb(ts[j].word)) && !ts[j+1].comma {
			j++ // "it reads mail, files …", "permanently deletes …, and merges": the item starts at its verb
		}
		if j >= 0 && isVerb[j] && sameForm(ts[j].word, lex[j], f) {
			return true
		}
	}
	if objectHead(ts, lex, isVerb, i) {
		return false // "publishes incident updates": the head of the verb's object
	}
	if i+1 < len(ts) && !ts[i+1].brk && !ts[i+1].comma && objectCues[ts[i+1].word] {
		return true // "email them", "reply to the customer"
	}
	return false
}

// objectHead reports an ambiguous third-person form right after the bare
// noun that follows a verb: "publishes incident updates", where it is the
// plural head of the verb's object.
func objectHead(ts []token, lex []*verb, isVerb []bool, i int) bool {
	v := lex[i]
	return v != nil && v.ambiguous && form(ts[i].word, v) == 's' && i > 1 && !ts[i].brk && !ts[i].comma && !ts[i-1].brk && !ts[i-1].comma &&
		isVerb[i-2] && lex[i-1] == nil && bareNounAt(ts, lex, i-1)
}

// bareNounAt reports a word at i that can only start a noun phrase without
// a determiner: not a preposition, conjunction or pronoun cue, and not a
// word of the lexicon in its past or -ing form ("sent", "pending").
func bareNounAt(ts []token, lex []*verb, i int) bool {
	if i >= len(ts) || ts[i].brk || ts[i].comma || ts[i].stem == "" {
		return false
	}
	w := ts[i].word
	if prepositions[w] || nounPrepositions[w] || w == "and" || w == "or" || w == "nor" || verbCues[w] || objectCues[w] {
		return false
	}
	if v := lex[i]; v != nil {
		if f := form(w, v); f == 'd' || f == 'g' {
			return false
		}
	}
	return true
}

// roleNouns name the job itself.
var roleNouns = setOf(`agent agents assistant assistants bot bots manager managers coordinator clerk
	specialist analyst engineer officer writer reviewer approver announcer watcher doctor helper
	operator admin administrator steward owner lead representative rep desk team`)

// passiveAux make a past participle passive ("is deleted", "gets sent").
var passiveAux = setOf(`is are was were be been being get gets got`)

// pronounNegators stand for a subject ("nothing may be deleted").
var pronounNegators = setOf(`nothing none nobody neither`)

// relatives open a clause that describes a noun.
var relatives = setOf(`what which that who whose whatever whichever`)

// inRelative reports an auxiliary at i that belongs to a relative clause:
// a relative word stands a few words before it with no verb between
// ("branches whose pull requests were merged").
func inRelative(ts []token, isVerb []bool, i int) bool {
	for k := i - 1; k >= 0 && k >= i-4; k-- {
		if relatives[ts[k].word] {
			return true
		}
		if isVerb[k] || ts[k].brk || ts[k].comma {
			return false
		}
	}
	return false
}

var auxiliaries = setOf(`is are was were be been being get gets got has have had`)

// segmentStart finds the first word of the list item before the one that
// starts at i (items separated by commas or "and"/"or").
func segmentStart(ts []token, i int) int {
	end := i - 1
	if !ts[i].comma {
		end = i - 2 // skip the conjunction
	}
	for k := end; k >= 0; k-- {
		if k == 0 || ts[k].comma || ts[k].brk {
			return k
		}
	}
	return -1
}

func sameForm(w string, v *verb, f byte) bool {
	if v == nil {
		return false
	}
	return form(w, v) == f
}

// objectsAfter collects the content stems after the verb at i up to the
// next verb or clause end. pronoun reports that the object starts with a
// pronoun ("email them out").
func objectsAfter(ts []token, isVerb, particle []bool, i int) (objs []string, pronoun bool, names []string, np int, dest []string) {
	full, cut := false, false
	np, dp := -1, -1
	for j := i + 1; j < len(ts) && j <= i+8; j++ {
		t := ts[j]
		if t.brk || isVerb[j] && !particle[j] || scopeEnders[t.word] || negators[t.word] || conditions[t.word] || t.word == "until" || t.word == "because" {
			break
		}
		if (t.comma || relatives[t.word]) && len(objs) > 0 {
			break
		}
		if t.name && t.stem != "" && !commonNames[t.word] && systemName(ts, i, j) {
			names = append(names, t.stem)
		}
		if full {
			continue // past the third stem, only proper names are collected
		}
		if np < 0 && len(objs) > 0 && (prepositions[t.word] || nounPrepositions[t.word] || determiners[t.word]) {
			np = len(objs) // the first noun phrase ends here ("emails Alice the details": two)
		}
		if dp < 0 && len(objs) > 0 && destPrepositions[t.word] {
			dp = len(objs) // where it goes starts here
		}
		if pronoun && len(objs) == 0 && (prepositions[t.word] || t.word == "that" || t.word == "which" || t.word == "who") {
			// "creates new ones from merged pull requests", "approves the ones
			// that follow policy": the object is "ones".
			break
		}
		if len(objs) == 0 && pronouns[t.word] {
			pronoun = true
			continue
		}
		if v := lexicon[t.word]; v != nil && !isVerb[j] && len(objs) > 0 && form(t.word, v) == 'd' {
			continue // "a visit in the shared calendar": a participle modifies
		}
		if v := lexicon[t.word]; len(objs) == 0 && v != nil && !isVerb[j] {
			// A participle or verb used as a modifier before the noun:
			// "submitted reports", "open issues"; "the invites" is the noun.
			if f := form(t.word, v); f == 'd' || f == 'g' || f == 'b' && j+1 < len(ts) && !ts[j+1].brk && !ts[j+1].comma && ts[j+1].stem != "" {
				continue
			}
		}
		if t.stem != "" && dp >= 0 && j+1 < len(ts) && !ts[j+1].brk && !ts[j+1].comma && groupNouns[ts[j+1].word] {
			continue // "moves the ticket to the billing team": a recipient, not what is moved
		}
		if t.stem != "" && !particle[j] && !adverb(t.word) {
			objs = append(objs, t.stem)
			full = len(objs) == 3
			if full && np < 0 {
				// Cut at the third stem: the noun phrase ends here only
				// if what follows is not more of it ("a short heads-up").
				if k := j + 1; k < len(ts) && !ts[k].brk && !ts[k].comma && ts[k].stem != "" && !prepositions[ts[k].word] && !isVerb[k] {
					cut = true
				}
			}
		}
	}
	if np < 0 {
		np = len(objs)
		if cut {
			np = 0 // the head is not known
		}
	}
	if dp >= 0 {
		dest = slices.Clone(objs[dp:])
	}
	return objs, pronoun, names, np, dest
}

// upstreamAfter returns the stems that follow a preposition of place
// within the four words after a verb whose object is a pronoun ("shares
// it by email with the leads").
func upstreamAfter(ts []token, i int) []string {
	var out []string
	for j := i + 1; j < len(ts) && j <= i+4 && !ts[j].brk; j++ {
		if destPrepositions[ts[j].word] && j+1 < len(ts) && !ts[j+1].brk {
			for k := j + 1; k < len(ts) && k <= j+3 && !ts[k].brk && !ts[k].comma && !prepositions[ts[k].word]; k++ {
				if ts[k].stem != "" {
					out = append(out, ts[k].stem)
				}
			}
			break
		}
	}
	return out
}

// destPrepositions say where a thing goes: "to the wiki", "in #ops", "by email".
var destPrepositions = setOf(`to into in via onto by`)

// systemName reports a proper name at j (in the object of the verb at i)
// that stands where a system does: after "on", "in", "via", "through"
// ("posts on Twitter", "pages through PagerDuty") or before the noun it
// names ("their Okta account"). A name right after the verb or after "to"
// is more likely a person ("email Alice the report", "send it to Bob").
func systemName(ts []token, i, j int) bool {
	for k := j - 1; k > i; k-- {
		if systemPrepositions[ts[k].word] {
			return true
		}
		if prepositions[ts[k].word] || ts[k].comma {
			break
		}
	}
	k := j + 1
	return k < len(ts) && !ts[k].brk && !ts[k].comma && !ts[k].name && ts[k].stem != "" && lexicon[ts[k].word] == nil && !prepositions[ts[k].word]
}

var systemPrepositions = setOf(`on in via through into onto at`)

// commonNames are capitalised words that name no system: days, months,
// languages.
var commonNames = setOf(`monday tuesday wednesday thursday friday saturday sunday january february
	march april may june july august september october november december english german french
	spanish italian dutch portuguese chinese japanese`)

// adverb reports a word of manner or time ("automatically", "weekly"),
// which says how a thing is done, not to what.
func adverb(w string) bool {
	return len(w) > 4 && strings.HasSuffix(w, "ly") && !nounsInLy[w]
}

var nounsInLy = setOf(`reply supply family anomaly assembly rally ally italy july monopoly apply
	replies supplies anomalies families`)

// subjectBefore collects the stems of the subject of the passive verb at
// i: the words before it back to the start of its clause, a comma, a
// condition or a verb. pronoun reports a subject that is only a pronoun.
func subjectBefore(ts []token, isVerb []bool, i int) (objs []string, pronoun bool) {
	for k := i - 1; k >= 0 && k >= i-8; k-- {
		t := ts[k]
		if auxiliaries[t.word] || t.word == "to" || negators[t.word] && t.stem == "" && !pronounNegators[t.word] {
			continue
		}
		if isVerb[k] || conditions[t.word] || t.word == "that" || t.word == "which" || t.word == "who" {
			break
		}
		if pronouns[t.word] {
			pronoun = true
		} else if t.stem != "" && lexicon[t.word] == nil && !adverb(t.word) {
			objs = append([]string{t.stem}, objs...)
		}
		if t.brk || t.comma {
			break
		}
	}
	if len(objs) > 3 {
		objs = objs[len(objs)-3:]
	}
	return dedupe(objs), pronoun && len(objs) == 0
}

// sentenceBefore collects the nouns of the sentence before the verb at i,
// nearest last, for a pronoun without an antecedent.
func sentenceBefore(ts []token, isVerb []bool, i int) []string {
	var out []string
	for k := i - 1; k >= 0 && ts[k].sent == ts[i].sent; k-- {
		if t := ts[k]; t.stem != "" && lexicon[t.word] == nil && !adverb(t.word) && !isVerb[k] {
			out = append([]string{t.stem}, out...)
		}
		if ts[k].brk {
			break
		}
	}
	if len(out) > 3 {
		out = out[len(out)-3:]
	}
	return dedupe(out)
}

// shareObjects gives coordinated verbs their shared object: in "delete or
// send any mail" both apply to mail.
func shareObjects(ts []token, rs []Request) {
	for k := len(rs) - 2; k >= 0; k-- {
		r, next := &rs[k], rs[k+1]
		if len(r.Objects) > 0 && !(len(r.Objects) == 1 && lexicon[r.Verb] != nil && lexicon[r.Verb].topical) {
			continue
		}
		linked := true
		for j := r.Pos + 1; j < next.Pos; j++ {
			if ts[j].brk || !(ts[j].word == "and" || ts[j].word == "or" || ts[j].word == "nor" || ts[j].stem == "" && !pronouns[ts[j].word]) {
				linked = false
				break
			}
		}
		if linked && !ts[next.Pos].brk && len(next.Objects) > 0 {
			r.Objects = dedupe(append(r.Objects, next.Objects...))
		}
	}
}

// readOnlyAt reports a read-only statement at word i.
func readOnlyAt(ts []token, lex []*verb, isVerb []bool, i int) bool {
	w := ts[i].word
	next := ""
	if i+1 < len(ts) && !ts[i+1].brk {
		next = ts[i+1].word
	}
	switch {
	case (w == "read" || w == "view" || w == "look") && next == "only":
		// "the read-only reporting user" describes a thing; "read-only
		// access", "a read-only analyst" restrict the role.
		if i > 0 && !ts[i].brk && (ts[i-1].word == "the" || ts[i-1].word == "its" || ts[i-1].word == "their") {
			if k := i + 2; k < len(ts) && !ts[k].brk && !roleNouns[ts[k].word] && !accessNouns[ts[k].word] {
				return false
			}
		}
		return true
	case w == "only" && ts[i].hyph:
		return false // the second half of "read-only", judged above
	case w == "only" && next != "" && lex[i+1] != nil && lex[i+1].ab == Read && !ts[i+1].comma && lex[i+1].lemma != "answer":
		return true // "only reads"; not "only answers", which may be replying
	case w == "only" && i > 0 && !ts[i].brk && lex[i-1] != nil && lex[i-1].ab == Read && (i+1 >= len(ts) || ts[i+1].brk):
		return true // "reporting only."
	}
	return false
}

// sendNounAt reports a noun that names a message as the way a result is
// delivered: "in a message to the #dba channel", "as a post on the
// channel". ("by email" is not: "cards people forward to it by email".)
func sendNounAt(ts []token, i int) bool {
	w := ts[i].word
	if lex := lexicon[nounForms[w]]; lex == nil || lex.ab != Send || i == 0 || ts[i].brk || ts[i].comma {
		return false
	}
	k := i - 1
	if ts[k].word == "a" || ts[k].word == "an" {
		if ts[k].brk || ts[k].comma || k == 0 {
			return false
		}
		k--
	}
	switch ts[k].word {
	case "in", "as":
		// followed by where it goes: "in a message to the team"
		return k < i-1 && i+1 < len(ts) && !ts[i+1].brk && !ts[i+1].comma && (ts[i+1].word == "to" || ts[i+1].word == "on" || ts[i+1].word == "in")
	}
	return false
}

// accessNouns follow "read-only" when it restricts the role.
var accessNouns = setOf(`access mode permission permissions rights role`)

func readOnlyWords(ts []token, i int) string {
	if ts[i].word == "only" && i+1 < len(ts) && !ts[i+1].brk {
		return "only " + ts[i+1].word
	}
	if ts[i].word == "only" && i > 0 {
		return ts[i-1].word + " only"
	}
	return ts[i].word + " only"
}

// clauseObjects are the topic stems of the clause around word i, which a
// read-only statement scopes to ("read-only access to the CRM").
func clauseObjects(ts []token, i int) []string {
	lo := i
	for lo > 0 && !ts[lo].brk {
		lo--
	}
	hi := i + 1
	for hi < len(ts) && !ts[hi].brk {
		hi++
	}
	var out []string
	for j := lo; j < hi; j++ {
		if ts[j].stem != "" && lexicon[ts[j].word] == nil {
			out = append(out, ts[j].stem)
		}
	}
	return dedupe(out)
}

func dedupe(s []string) []string {
	if len(s) < 2 {
		return s
	}
	seen := map[string]bool{}
	out := s[:0:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
