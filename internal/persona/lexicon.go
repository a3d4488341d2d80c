package persona

import "strings"

// verb is one entry of the ability lexicon: a word that, used as a verb,
// asks for (in a job description) or performs (in a tool description) an
// ability.
type verb struct {
	lemma string
	ab    Ability
	// generic: negating this word negates the whole ability ("never
	// deletes"); negating a specific verb only removes tools that do that
	// very thing ("never merges").
	generic bool
	// ambiguous: the word is just as often a noun ("reply", "email", "log");
	// it counts as a verb only in a verb position.
	ambiguous bool
	// topical: the verb names its own object domain ("email", "deploy",
	// "refund"), so its stem counts as one of its objects.
	topical bool
}

// verbEntries is the lexicon, one line per lemma:
//
//	lemma ability flags [extra forms...]
//
// flags: g generic, a ambiguous, t topical, - none. Regular inflections
// (-s, -es, -ed, -ing) are generated; irregular ones are listed.
const verbEntries = `
read       read    g-- reads reading
view       read    -a-
see        read    --- sees seeing saw seen
look       read    --- looks looked looking
check      read    -a-
search     read    -a-
find       read    --- finds finding found
browse     read    ---
monitor    read    -a-
watch      read    -a-
inspect    read    ---
investigate read   ---
summarize  read    --- summarise summarises summarised summarising
report     read    -a-
analyze    read    --- analyse analyses analysed analysing
query      read    -a- queries queried querying
list       read    -a-
fetch      read    ---
pull       read    -a-
explore    read    ---
audit      read    -a-
track      read    -a-
review     read    -a-
examine    read    ---
research   read    -a-
compare    read    ---
match      read    -a-
count      read    -a-
export     read    -a-
download   read    -a-
get        read    --- gets getting got
describe   read    ---
show       read    --- shows showing shown
fetch      read    ---
answer     read    -a-
prepare    read    ---
write      write   g-- writes writing wrote written
create     write   g--
update     write   ga-
edit       write   ga-
modify     write   g-- modifies modified modifying
change     write   ga-
alter      write   g--
add        write   g--
set        write   --- sets setting
assign     write   ---
close      write   -a-
reopen     write   ---
open       write   -a-
label      write   -a- labels labelled labeling labelling labeled
tag        write   -a- tags tagged tagging
comment    write   -a-
log        write   -a- logs logged logging
record     write   -a-
file       write   -a-
merge      write   -a-
approve    write   -a-
reject     write   -a-
decline    write   -a-
mark       write   -a-
move       write   -a-
sort       write   -a-
archive    write   -a-
flag       write   -a- flags flagged flagging
triage     write   -a-
prioritize write   --- prioritise prioritises prioritised
categorize write   --- categorise categorises categorised
escalate   write   ---
upload     write   -a-
commit     write   -a- commits committed committing
push       write   -a-
draft      write   -a-
fix        write   -a-
maintain   write   ---
schedule   write   -a-
reschedule write   ---
book       write   -a-
organize   write   --- organise organises organised organising
rename     write   ---
acknowledge write  --t
restore    write   ---
reset      write   -a-
replace    write   ---
sync       write   ---
resolve    write   ---
put        write   --- puts putting
enter      write   ---
submit     write   --- submits submitted submitting
accept     write   -a-
save       write   -a-
store      write   -a-
import     write   -a-
insert     write   ---
backup     write   -at
snapshot   write   -at
turn       write   -a- turns turned turning
reassign   write   ---
raise      write   -a-
leave      write   -a- leaves left leaving
note       write   -a-
bump       write   ---
correct    write   -a-
amend      write   ---
annotate   write   ---
reconcile  write   ---
enrich     write   ---
tidy       write   -a- tidies tidied tidying
reorganize write   --- reorganise reorganises reorganised reorganising
subscribe  write   ---
unsubscribe write  ---
delete     delete  g--
remove     delete  g--
erase      delete  g--
purge      delete  g--
destroy    delete  g--
wipe       delete  g--
drop       delete  -a- drops dropped dropping
cancel     delete  -a- cancels cancelled canceled cancelling canceling
void       delete  -a-
terminate  delete  ---
discard    delete  ---
trash      delete  -a-
overwrite  delete  --- overwrites overwrote overwritten overwriting
truncate   delete  ---
send       send    g-- sends sending sent
email      send    gat mail mails mailed mailing e-mail
message    send    gat
contact    send    ga-
reply      send    ga- replies replied replying
respond    send    g--
forward    send    -a-
notify     send    g-- notifies notified notifying
post       send    gat
publish    send    -at
announce   send    --t
broadcast  send    --t
communicate send   g--
invite     send    -at
page       send    -a-
ping       send    -a-
text       send    -a-
tweet      send    -at
refund     send    -at
pay        send    -at pays paid paying
transfer   send    -at
wire       send    -a-
reimburse  send    --t
share      send    -a-
remind     send    ---
alert      send    -a-
warn       send    ---
inform     send    ---
run        execute ga- runs ran running
execute    execute g--
trigger    execute -at
deploy     execute -at
redeploy   execute --t
release    execute -at
ship       execute -at ships shipped shipping
rollback   execute --t
revert     execute -a-
restart    execute --t
reboot     execute -at
start      execute -a-
stop       execute -a- stops stopped stopping
kill       execute -a-
scale      execute -at
resize     execute --t
provision  execute -a-
launch     execute -a-
rerun      execute --t reruns reran rerunning
retry      execute --t retries retried retrying
invoke     execute ---
promote    execute -a-
patch      execute -a-
upgrade    execute -a-
install    execute ---
decommission delete ---
administer admin   g--
grant      admin   g--
revoke     admin   g--
configure  admin   ---
rotate     admin   -a-
offboard   admin   --t
onboard    admin   --t
`

// phrasal verbs: a verb followed (within three words) by a particle means
// something else than the verb alone.
var phrasal = map[string]map[string]string{
	"roll":   {"back": "rollback"},
	"clean":  {"up": "purge"},
	"kick":   {"off": "trigger"},
	"reach":  {"out": "contact"},
	"shut":   {"down": "stop"},
	"spin":   {"up": "provision"},
	"look":   {"up": "look"},
	"sign":   {"off": "approve"},
	"write":  {"back": "reply"},
	"follow": {"up": "contact"},
	"keep":   {"current": "update", "updated": "update", "uptodate": "update"},
	"keeps":  {"current": "update", "updated": "update", "uptodate": "update"},
}

// phrasalForms maps every inflection of a phrasal verb's head ("writes",
// "wrote", "kept") to its particles.
var phrasalForms = func() map[string]map[string]string {
	m := map[string]map[string]string{}
	irregular := map[string][]string{"write": {"wrote", "written"}, "keep": {"kept"}, "shut": {"shut"}, "spin": {"spun"}}
	for head, p := range phrasal {
		for _, f := range append(append([]string{head}, inflect(head)...), irregular[head]...) {
			if _, dup := m[f]; !dup {
				m[f] = p
			}
		}
	}
	return m
}()

// nounForms are nouns that name an ability. They ask for it after a light
// verb ("issue refunds", "take backups", "make changes") and forbid it after
// "no" ("no changes", "no write access").
var nounForms = map[string]string{
	"change": "change", "changes": "change", "write": "write", "writes": "write", "edit": "edit",
	"edits": "edit", "modification": "modify", "modifications": "modify", "update": "update",
	"updates": "update", "deletion": "delete", "deletions": "delete", "delete": "delete",
	"deletes": "delete", "refund": "refund", "refunds": "refund", "payment": "pay", "payments": "pay",
	"backup": "backup", "backups": "backup", "snapshot": "snapshot", "snapshots": "snapshot",
	"deployment": "deploy", "deployments": "deploy", "deploy": "deploy", "deploys": "deploy",
	"release": "release", "releases": "release", "rollback": "rollback", "rollbacks": "rollback",
	"transfer": "transfer", "transfers": "transfer", "email": "email", "emails": "email",
	"message": "message", "messages": "message", "announcement": "announce",
	"announcements": "announce", "post": "post", "posts": "post", "reply": "reply",
	"replies": "reply", "access": "write", "admin": "administer", "administration": "administer",
	"mutation": "modify", "mutations": "modify", "invite": "invite", "invites": "invite",
	"invitations": "invite", "invitation": "invite", "restart": "restart", "restarts": "restart",
}

// lightVerbs take an ability noun as their object ("issue a refund").
var lightVerbs = setOf(`issue issues issued issuing process processes processed processing make makes
	made making take takes took taking taken give gives gave giving do does did doing perform performs
	performed performing handle handles handled handling run runs ran running carry carries carried`)

// negators start a negated scope that lasts to the end of the clause.
var negators = setOf(`not never no without nor dont doesnt didnt cant cannot wont shouldnt mustnt
	isnt arent neednt avoid avoids refrain forbidden prohibited disallowed nothing none nobody neither`)

// scopeEnders end a negated scope early ("never sends, but may draft").
var scopeEnders = setOf(`but however except instead although though whereas while yet`)

// modals and other words after which an ambiguous word is a verb.
var verbCues = setOf(`can may will should must shall might could would please also then never not
	only always just dont doesnt cannot cant wont shouldnt mustnt it they you we i he she who which
	to often sometimes usually automatically directly`)

// infinitiveHeads precede "to" when it marks an infinitive ("able to
// send"), not a preposition ("replies to email").
var infinitiveHeads = setOf(`able allowed permitted authorized authorised need needs needed want wants
	wanted has have had going supposed order used try tries tried expected required asked free meant
	how whether also is are be responsible ready likely expected supposed trying wanting needing
	lets let helps help`)

// determiners precede nouns: a lexicon word right after one is a noun.
var determiners = setOf(`the a an its their our your my his her this that these those each every any
	some all no of another other which whose whichever whatever such`)

// objectCues follow a verb and start its object: an ambiguous word right
// before one is a verb ("email them", "reply to the customer").
var objectCues = setOf(`the a an them it their its our your his her him all every each any new back
	out to on up these those this that me us you what whatever`)

// nounPrepositions are followed by a noun, never a bare verb ("by email").
var nounPrepositions = setOf(`by via through over per from with in into on at about of`)

// prepositions start a modifier after a verb's object.
var prepositions = setOf(`from in into with for by about after before on at via per through to of under over
	above below between within`)

// pronouns stand for the object of an earlier verb.
var pronouns = setOf(`them it they these those this that ones one`)

var lexicon = buildLexicon()

func buildLexicon() map[string]*verb {
	m := map[string]*verb{}
	for _, line := range strings.Split(verbEntries, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		ab, err := ParseAbility(f[1])
		if err != nil {
			panic("persona lexicon: " + err.Error()) // a bug in the table above, caught by every test
		}
		v := &verb{lemma: f[0], ab: ab, generic: f[2][0] == 'g', ambiguous: f[2][1] == 'a', topical: f[2][2] == 't'}
		forms := append([]string{f[0]}, f[3:]...)
		if len(f) == 3 {
			forms = append(forms, inflect(f[0])...)
		} else {
			forms = append(forms, inflect(f[0])...)
		}
		for _, w := range forms {
			if _, dup := m[w]; !dup {
				m[w] = v
			}
		}
	}
	return m
}

// inflect generates the regular -s, -ed and -ing forms of a verb.
func inflect(v string) []string {
	var s, ed, ing string
	switch {
	case strings.HasSuffix(v, "y") && len(v) > 2 && !strings.ContainsRune("aeiou", rune(v[len(v)-2])):
		s, ed, ing = v[:len(v)-1]+"ies", v[:len(v)-1]+"ied", v+"ing"
	case strings.HasSuffix(v, "e"):
		s, ed, ing = v+"s", v+"d", v[:len(v)-1]+"ing"
	case strings.HasSuffix(v, "s") || strings.HasSuffix(v, "sh") || strings.HasSuffix(v, "ch") || strings.HasSuffix(v, "x"):
		s, ed, ing = v+"es", v+"ed", v+"ing"
	default:
		s, ed, ing = v+"s", v+"ed", v+"ing"
	}
	return []string{s, ed, ing}
}

// form classifies the inflection of a word: 'g' -ing, 'd' -ed or irregular
// past, 's' third person, 'b' base.
func form(w string, v *verb) byte {
	switch {
	case strings.HasSuffix(w, "ing"):
		return 'g'
	case strings.HasSuffix(w, "ed") || w == "sent" || w == "paid" || w == "made" || w == "found" || w == "shown" || w == "seen" || w == "written" || w == "overwritten":
		return 'd'
	case w != v.lemma && strings.HasSuffix(w, "s"):
		return 's'
	}
	return 'b'
}
