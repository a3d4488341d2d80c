package persona

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/policy"
	"github.com/portcullis-gw/portcullis/internal/state"
)

func boolp(b bool) *bool { return &b }

// testRegistry is a small helpdesk/mail/git registry with metadata.
func testRegistry() ([]*state.Skill, map[string]ToolInfo) {
	ro := &Annotations{ReadOnlyHint: boolp(true)}
	rw := &Annotations{ReadOnlyHint: boolp(false), DestructiveHint: boolp(false)}
	tools := map[string]ToolInfo{
		"helpdesk/search_tickets":  {Description: "Search support tickets by status or text.", Annotations: ro},
		"helpdesk/get_ticket":      {Description: "Get a support ticket with its conversation.", Annotations: ro},
		"helpdesk/update_ticket":   {Description: "Change a ticket's status, priority or assignee.", Annotations: rw},
		"helpdesk/reply_to_ticket": {Description: "Send a public reply to the customer on a ticket.", Annotations: &Annotations{ReadOnlyHint: boolp(false), OpenWorldHint: boolp(true)}},
		"helpdesk/delete_ticket":   {Description: "Permanently delete a ticket.", Annotations: &Annotations{ReadOnlyHint: boolp(false), DestructiveHint: boolp(true)}},
		"mail/read_message":        {Description: "Read an email message.", Annotations: ro},
		"mail/send_message":        {Description: "Send an email to recipients.", Annotations: rw},
		"git/get_pull_request":     {Description: "Get a pull request with its diff.", Annotations: ro},
		"git/merge_pull_request":   {Description: "Merge a pull request into its base branch.", Annotations: rw},
	}
	sk := func(name, desc string, tools ...string) *state.Skill {
		s := &state.Skill{Meta: state.Meta{Name: name}, Description: desc}
		for _, t := range tools {
			s.Tools = append(s.Tools, state.ToolGrant{Tool: t})
		}
		return s
	}
	skills := []*state.Skill{
		sk("tickets-read", "Look up support tickets.", "helpdesk/search_tickets", "helpdesk/get_ticket"),
		sk("tickets-work", "Work support tickets: read, update and reply to customers.", "helpdesk/get_ticket", "helpdesk/update_ticket", "helpdesk/reply_to_ticket"),
		sk("tickets-admin", "Delete support tickets.", "helpdesk/delete_ticket"),
		sk("helpdesk-all", "Everything in the helpdesk.", "helpdesk/*"),
		sk("mail", "Read and send email.", "mail/read_message", "mail/send_message"),
		sk("prs", "Review and merge pull requests.", "git/get_pull_request", "git/merge_pull_request"),
	}
	return skills, tools
}

func proposedTools(p *Proposal) []string {
	var out []string
	for _, ps := range p.Skills {
		out = append(out, ps.Tools...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestParseIntent(t *testing.T) {
	cases := []struct {
		desc      string
		asked     Ability // beyond read
		forbidden Ability
	}{
		{"Reads support tickets and replies to the customer.", Send, 0},
		{"Drafts replies to email for a human to review. It never sends email itself.", Write, 0},
		{"Read-only analyst for the finance team.", 0, Mutating},
		{"It only reads; it must not post anything.", 0, Mutating | Send},
		{"Update tickets, but never delete anything.", Write, Delete},
		{"Summarize the open pull requests every morning.", 0, 0},
		{"Triage new issues by labeling them, and close duplicates.", Write, 0},
		{"Deploy to production and roll back when errors rise.", Execute, 0},
		{"Runs SELECT queries to check data. No writes to any database.", 0, 0},
		{"Takes nightly backups and grants read access to analysts.", Write | Admin, 0},
		{"Refund agent: look up the invoice, then issue the refund.", Send, 0},
		{"Scheduling assistant: find a free slot for everyone.", 0, 0},
		{"create invoices for customers, email them out, and record payments", Write | Send, 0},
		{"makes no changes whatsoever", 0, Write},
		{"Search the mailbox without modifying or deleting anything.", 0, Write | Delete},
		{"Reads tickets and posts replies.", Send, 0},
		{"Reads cloud metrics and the cost report and scales autoscaling groups up.", Execute, 0},
		{"Deletes old newsletters and files receipts into the Receipts folder.", Write | Delete, 0},
		{"Reads tickets and emails sent by customers.", 0, 0},
		{"Reads invoices and emails from customers.", 0, 0},
	}
	for _, c := range cases {
		in := ParseIntent(c.desc)
		if got := in.Asked &^ Read; got != c.asked {
			t.Errorf("%q: asked %s, want %s (requests %v)", c.desc, got, c.asked, in.Requests)
		}
		if in.Forbidden != c.forbidden {
			t.Errorf("%q: forbidden %s, want %s (requests %v)", c.desc, in.Forbidden, c.forbidden, in.Requests)
		}
	}
}

func TestParseIntentObjects(t *testing.T) {
	in := ParseIntent("Manage the calendar and send out the invites. Draft replies to email but don't send email.")
	var sendOK, sendNeg bool
	for _, r := range in.Requests {
		if r.Ability == Send && !r.Negated && slices.Contains(r.Objects, "invit") {
			sendOK = true
		}
		if r.Ability == Send && r.Negated && slices.Contains(r.Objects, "mail") {
			sendNeg = true
		}
	}
	if !sendOK || !sendNeg {
		t.Fatalf("want send scoped to invitations and a negated send scoped to mail; got %v", in.Requests)
	}
}

// After a preposition a word that can be a verb is a noun: "by email" is
// how the payslips are sent, not a second request.
func TestParseIntentNounAfterPreposition(t *testing.T) {
	in := ParseIntent("Sends payslips to employees by email every month; posts a note via chat.")
	var verbs []string
	for _, r := range in.Requests {
		verbs = append(verbs, r.Verb)
	}
	if !slices.Equal(verbs, []string{"send", "post"}) {
		t.Fatalf("requests %v, want one send and one post", in.Requests)
	}
	if !slices.Contains(in.Requests[0].Objects, "mail") {
		t.Errorf("the send request's objects %v do not say by mail", in.Requests[0].Objects)
	}
}

// "only answers" restricts the job to answering; unlike "only reads" it
// forbids nothing, since answering a customer is replying.
func TestOnlyAnswersIsNotReadOnly(t *testing.T) {
	in := ParseIntent("Support agent that only answers: it reads the ticket and posts a public reply.")
	for _, r := range in.Requests {
		if r.Negated {
			t.Errorf("negated request %s in %v", r, in.Requests)
		}
	}
	if in.Asked&Send == 0 {
		t.Errorf("asked %s, want send", in.Asked)
	}
}

func TestClassifyTool(t *testing.T) {
	cases := []struct {
		id   string
		info *ToolInfo
		want Ability
	}{
		{"db/drop_table", &ToolInfo{Description: "Drop a table and all of its rows.", Annotations: &Annotations{ReadOnlyHint: boolp(true)}}, Delete},
		{"db/run_select_query", &ToolInfo{Description: "Run a read-only SQL SELECT query.", Annotations: &Annotations{ReadOnlyHint: boolp(true)}}, Read},
		{"mail/create_draft", &ToolInfo{Description: "Save a draft email without sending it."}, Write},
		{"x/get_report", nil, Read},
		{"x/frobnicate", nil, Mutating},
		{"x/frobnicate", &ToolInfo{Annotations: &Annotations{ReadOnlyHint: boolp(true)}}, Read},
		{"x/get_widget", &ToolInfo{Annotations: &Annotations{ReadOnlyHint: boolp(false), DestructiveHint: boolp(true)}}, Read | Write | Delete},
		{"ci/cancel_run", &ToolInfo{Description: "Cancel a running pipeline."}, Execute},
		{"chat/invite_to_channel", &ToolInfo{Description: "Add people to a channel."}, Write | Send | Admin},
	}
	for _, c := range cases {
		if got := ClassifyTool(c.id, c.info).Abilities; got != c.want {
			t.Errorf("%s: %s, want %s (%v)", c.id, got, c.want, ClassifyTool(c.id, c.info).Why)
		}
	}
}

func TestDraftHonoursAbilities(t *testing.T) {
	skills, tools := testRegistry()
	cases := []struct {
		desc      string
		want      []string
		forbidden []string
	}{
		{"Look up support tickets and answer questions about them. Read only.",
			[]string{"helpdesk/get_ticket", "helpdesk/search_tickets"}, []string{"helpdesk/update_ticket", "helpdesk/reply_to_ticket", "helpdesk/delete_ticket"}},
		{"Support agent: reads tickets, updates their status and replies to customers. Never deletes tickets.",
			[]string{"helpdesk/get_ticket", "helpdesk/search_tickets", "helpdesk/update_ticket", "helpdesk/reply_to_ticket"}, []string{"helpdesk/delete_ticket"}},
		{"Review pull requests. It must never merge.",
			[]string{"git/get_pull_request"}, []string{"git/merge_pull_request"}},
	}
	for _, c := range cases {
		p, err := Draft(c.desc, skills, tools)
		if err != nil {
			t.Fatal(err)
		}
		got := proposedTools(p)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q: missing %s; got %v", c.desc, w, got)
			}
		}
		for _, f := range c.forbidden {
			if slices.Contains(got, f) {
				t.Errorf("%q: proposed forbidden %s; got %v", c.desc, f, got)
			}
		}
		for _, ps := range p.Skills {
			if ps.Reason == "" {
				t.Errorf("%q: skill %s has no reason", c.desc, ps.Name)
			}
		}
	}
}

// A wildcard skill is never proposed whole: it is pinned to the tools
// known now, and narrowed to what the description allows.
func TestDraftPinsWildcards(t *testing.T) {
	skills, tools := testRegistry()
	var only []*state.Skill
	for _, s := range skills {
		if s.Name == "helpdesk-all" {
			only = append(only, s)
		}
	}
	p, err := Draft("Read support tickets and update their priority.", only, tools)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Skills) != 1 || !p.Skills[0].Narrowed || len(p.NewSkills) != 1 {
		t.Fatalf("want one narrowed copy of helpdesk-all, got %+v", p.Skills)
	}
	ns := p.NewSkills[0]
	if ns.Name == "helpdesk-all" {
		t.Fatal("narrowed copy reuses the registry name")
	}
	var got []string
	for _, g := range ns.Tools {
		if strings.Contains(g.Tool, "*") {
			t.Errorf("narrowed copy keeps the wildcard %s", g.Tool)
		}
		got = append(got, g.Tool)
	}
	want := []string{"helpdesk/get_ticket", "helpdesk/search_tickets", "helpdesk/update_ticket"}
	if !slices.Equal(got, want) {
		t.Errorf("narrowed tools %v, want %v", got, want)
	}
}

// Without tools/list metadata the drafter judges tools by their names and
// treats tools it cannot read as able to do anything.
func TestDraftWithoutMetadata(t *testing.T) {
	skills, _ := testRegistry()
	p, err := Draft("Look up support tickets. Read only.", skills, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := proposedTools(p)
	if !slices.Contains(got, "helpdesk/get_ticket") || slices.Contains(got, "helpdesk/update_ticket") {
		t.Errorf("name-only draft: %v", got)
	}
	for _, ps := range p.Skills {
		if ps.From == "helpdesk-all" {
			t.Errorf("wildcard skill without metadata proposed: %+v", ps)
		}
	}
	if len(p.Warnings) == 0 {
		t.Error("no warning about missing metadata")
	}
}

// The YAML applies: it parses as documents and compiles to a role that
// allows exactly the proposed tools.
func TestDraftYAMLApplies(t *testing.T) {
	skills, tools := testRegistry()
	p, err := Draft("Support agent: read tickets and change their priority; do not reply to customers.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	y, err := p.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "kind: Persona") || !strings.Contains(string(y), "# ") {
		t.Fatalf("YAML lacks the persona or its reasons:\n%s", y)
	}
	objs, err := state.ParseDocuments("draft.yaml", y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	snap := &state.Snapshot{Upstreams: map[string]*state.Upstream{}, Skills: map[string]*state.Skill{}, Personas: map[string]*state.Persona{}}
	for _, s := range skills {
		snap.Skills[s.Name] = s
	}
	var name string
	for _, o := range objs {
		switch x := o.(type) {
		case *state.Skill:
			snap.Skills[x.Name] = x
		case *state.Persona:
			snap.Personas[x.Name] = x
			name = x.Name
		}
	}
	role := policy.Compile(snap).Role(name)
	if role == nil {
		t.Fatalf("no role for %q", name)
	}
	got := proposedTools(p)
	for id := range tools {
		up, tool, _ := strings.Cut(id, "/")
		if role.ToolVisible(up, tool) != slices.Contains(got, id) {
			t.Errorf("role allows %s = %v, proposal %v", id, role.ToolVisible(up, tool), got)
		}
	}
	if slices.Contains(got, "helpdesk/reply_to_ticket") || !slices.Contains(got, "helpdesk/update_ticket") {
		t.Errorf("proposal %v", got)
	}
}

func TestDraftDeterministic(t *testing.T) {
	skills, tools := testRegistry()
	desc := "Support agent: reads tickets, updates them and emails customers."
	a, _ := Draft(desc, skills, tools)
	ya, _ := a.YAML()
	for range 5 {
		b, _ := Draft(desc, skills, tools)
		yb, _ := b.YAML()
		if string(ya) != string(yb) {
			t.Fatalf("two drafts differ:\n%s\n---\n%s", ya, yb)
		}
	}
}

func TestDraftBadInput(t *testing.T) {
	skills, tools := testRegistry()
	if _, err := Draft("   \n\t", skills, tools); !errors.Is(err, ErrEmptyDescription) {
		t.Errorf("blank description: %v", err)
	}
	if _, err := Draft(strings.Repeat("tickets ", MaxDescription), skills, tools); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("huge description: %v", err)
	}
	if _, err := Draft("read tickets", nil, tools); !errors.Is(err, ErrNoSkills) {
		t.Errorf("no skills: %v", err)
	}
	if _, err := Draft("read tickets", []*state.Skill{nil, {}}, tools); !errors.Is(err, ErrNoSkills) {
		t.Errorf("only empty skills: %v", err)
	}
	// Nothing relevant: an empty, valid persona with no skills.
	p, err := Draft("Bake sourdough bread.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Persona.Skills) != 0 {
		t.Errorf("irrelevant description got skills %v", p.Persona.Skills)
	}
	if err := state.ValidateName(p.Persona.Name); err != nil {
		t.Errorf("persona name: %v", err)
	}
}

func TestAbilityText(t *testing.T) {
	for _, s := range []string{"none", "read", "read+write", "write+delete+send+execute+admin"} {
		a, err := ParseAbility(s)
		if err != nil || a.String() != s {
			t.Errorf("%q → %v %v", s, a, err)
		}
	}
	if _, err := ParseAbility("read+fly"); err == nil {
		t.Error("unknown ability accepted")
	}
}

func TestStem(t *testing.T) {
	groups := [][]string{
		{"reply", "replies", "replied", "replying"},
		{"create", "creates", "created", "creating"},
		{"schedule", "scheduling", "scheduled"},
		{"invoice", "invoices", "invoicing"},
		{"email", "emails", "e-mail", "inbox", "mailbox"},
		{"meeting", "meetings", "event"},
		{"deploy", "deployment", "deployments", "release", "ship"},
	}
	for _, g := range groups {
		want := stems(g[0])
		for _, w := range g[1:] {
			if got := stems(w); !slices.Equal(got, want) {
				t.Errorf("%q → %v, %q → %v", g[0], want, w, got)
			}
		}
	}
}

// The JSON form carries the persona and new skills as documents the API
// accepts back.
func TestProposalJSON(t *testing.T) {
	skills, tools := testRegistry()
	p, err := Draft("Support agent: read tickets and change their priority.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Persona   json.RawMessage   `json:"persona"`
		NewSkills []json.RawMessage `json:"newSkills"`
		Skills    []ProposedSkill   `json:"skills"`
		Asked     Ability           `json:"asked"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	obj, err := state.DecodeDocument(out.Persona)
	if err != nil {
		t.Fatalf("persona document: %v\n%s", err, out.Persona)
	}
	if obj.Metadata().Name != p.Persona.Name || len(out.Skills) != len(p.Skills) || out.Asked != p.Asked {
		t.Errorf("round trip: %s", b)
	}
	for _, raw := range out.NewSkills {
		if _, err := state.DecodeDocument(raw); err != nil {
			t.Errorf("new skill document: %v", err)
		}
	}
}

// Narrowing keeps the argument constraints, resources and prompts of the
// registry skill: a narrowed copy never grants more than the original.
func TestNarrowKeepsConstraints(t *testing.T) {
	skills, tools := testRegistry()
	prefix := "SUPPORT-"
	s := &state.Skill{Meta: state.Meta{Name: "tickets-scoped"}, Description: "Work support tickets in the SUPPORT project.",
		Tools: []state.ToolGrant{
			{Tool: "helpdesk/get_ticket", Args: map[string]*state.Constraint{"ticket_id": {Prefix: &prefix}}},
			{Tool: "helpdesk/delete_ticket"},
		},
		Resources: []state.ResourceGrant{{URI: "ticket://SUPPORT-*", Upstream: "helpdesk"}},
		Prompts:   []state.PromptGrant{{Prompt: "helpdesk/summarize"}},
	}
	p, err := Draft("Look up support tickets in the SUPPORT project. Read only.", append(skills[:0:0], s), tools)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.NewSkills) != 1 {
		t.Fatalf("want one narrowed skill, got %+v", p.Skills)
	}
	ns := p.NewSkills[0]
	if len(ns.Tools) != 1 || ns.Tools[0].Tool != "helpdesk/get_ticket" || ns.Tools[0].Args["ticket_id"] == nil || *ns.Tools[0].Args["ticket_id"].Prefix != prefix {
		t.Errorf("narrowed tools lost their constraints: %+v", ns.Tools)
	}
	if len(ns.Resources) != 1 || len(ns.Prompts) != 1 {
		t.Errorf("narrowed skill lost resources or prompts: %+v", ns)
	}
	if d := p.Skills[0].Dropped; len(d) != 1 || d[0].Tool != "helpdesk/delete_ticket" || !strings.Contains(d[0].Reason, "delete") {
		t.Errorf("dropped: %+v", d)
	}
}

// Asking to email or post never lets a tool that moves money in, even in a
// skill whose topic fits; asking to pay does.
func TestDraftMoneyIsNotMail(t *testing.T) {
	tools := map[string]ToolInfo{
		"finance/list_invoices": {Description: "List customer invoices and bills.", Annotations: &Annotations{ReadOnlyHint: boolp(true)}},
		"finance/send_invoice":  {Description: "Email an invoice to the customer."},
		"finance/pay_bill":      {Description: "Pay a vendor bill by bank transfer."},
	}
	skills := []*state.Skill{{Meta: state.Meta{Name: "billing"}, Description: "Invoices and bills.",
		Tools: []state.ToolGrant{{Tool: "finance/list_invoices"}, {Tool: "finance/send_invoice"}, {Tool: "finance/pay_bill"}}}}
	p, err := Draft("Find overdue invoices and email the customer's billing contact a reminder about the bill.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	if got := proposedTools(p); slices.Contains(got, "finance/pay_bill") || !slices.Contains(got, "finance/send_invoice") {
		t.Errorf("emailing about bills: %v", got)
	}
	p, err = Draft("Pay the vendor bills that are due and email invoices to customers.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	if got := proposedTools(p); !slices.Contains(got, "finance/pay_bill") {
		t.Errorf("paying bills: %v", got)
	}
}

// In a registry of two skills term weights are small; the relevance floor
// scales with the registry, so the plainly relevant skill is still found.
func TestDraftSmallRegistry(t *testing.T) {
	tools := map[string]ToolInfo{
		"helpdesk/search_tickets": {Description: "Search support tickets.", Annotations: &Annotations{ReadOnlyHint: boolp(true)}},
		"helpdesk/get_ticket":     {Description: "Get a ticket.", Annotations: &Annotations{ReadOnlyHint: boolp(true)}},
		"helpdesk/close_ticket":   {Description: "Close a ticket.", Annotations: &Annotations{ReadOnlyHint: boolp(false)}},
	}
	skills := []*state.Skill{
		{Meta: state.Meta{Name: "read-tickets"}, Description: "Search and read support tickets",
			Tools: []state.ToolGrant{{Tool: "helpdesk/search_tickets"}, {Tool: "helpdesk/get_ticket"}}},
		{Meta: state.Meta{Name: "manage-tickets"}, Description: "Close and manage support tickets",
			Tools: []state.ToolGrant{{Tool: "helpdesk/close_ticket"}, {Tool: "helpdesk/search_tickets"}}},
	}
	p, err := Draft("Reads and searches customer support tickets to triage them. Must never close tickets.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Persona.Skills, []string{"read-tickets"}) {
		t.Errorf("skills %v, want [read-tickets]; excluded %+v", p.Persona.Skills, p.Excluded)
	}
	if slices.Contains(proposedTools(p), "helpdesk/close_ticket") {
		t.Error("close_ticket proposed")
	}
}

// A request to read something a read-only skill is named for ("reads
// incoming emails", mail-read) keeps that skill although another domain
// (the CRM) dominates the description's words.
func TestDraftReadRequestNamesSkill(t *testing.T) {
	ro := &Annotations{ReadOnlyHint: boolp(true)}
	rw := &Annotations{ReadOnlyHint: boolp(false), DestructiveHint: boolp(false)}
	tools := map[string]ToolInfo{
		"crm/create_lead":    {Description: "Create a sales lead in the CRM from a contact and an inquiry.", Annotations: rw},
		"crm/search_leads":   {Description: "Search CRM leads, accounts and contacts.", Annotations: ro},
		"crm/update_contact": {Description: "Update a CRM contact.", Annotations: rw},
		"mail/search_inbox":  {Description: "Search messages in the mailbox.", Annotations: ro},
		"mail/read_message":  {Description: "Read a message with its attachments.", Annotations: ro},
		"mail/send_message":  {Description: "Send a message to recipients.", Annotations: rw},
	}
	sk := func(name, desc string, tools ...string) *state.Skill {
		s := &state.Skill{Meta: state.Meta{Name: name}, Description: desc}
		for _, t := range tools {
			s.Tools = append(s.Tools, state.ToolGrant{Tool: t})
		}
		return s
	}
	skills := []*state.Skill{
		sk("crm-sales-rep", "Create and qualify CRM sales leads from website inquiries and contact forms.", "crm/create_lead", "crm/search_leads", "crm/update_contact"),
		sk("crm-read", "Search CRM leads, accounts and contacts.", "crm/search_leads"),
		sk("mail-read", "Search and read the mailbox.", "mail/search_inbox", "mail/read_message"),
		sk("mail-send", "Send messages.", "mail/send_message"),
	}
	p, err := Draft("Lead qualification bot: reads incoming emails from the website contact form and creates a lead in the CRM sales pipeline for each serious inquiry from a CRM contact. Never emails anyone back.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ps := range p.Skills {
		got = append(got, ps.From)
	}
	if !slices.Contains(got, "mail-read") || !slices.Contains(got, "crm-sales-rep") || slices.Contains(got, "mail-send") {
		t.Errorf("skills %v, want crm-sales-rep and mail-read, not mail-send", got)
	}
}

// Issue 9: negations and hand-offs an admin writes without "not", passives,
// relative clauses and noun compounds that look like requests.
func TestParseIntentHandOffs(t *testing.T) {
	cases := []struct {
		desc      string
		asked     Ability // beyond read
		forbidden Ability
	}{
		{"Reads invoices. Approving them is the controller's job.", 0, 0},
		{"It comments on pull requests; merging remains with the maintainers.", Write, 0},
		{"Looks at the logs. Anything that deletes data needs a human.", 0, 0},
		{"Watches the services. Restarts are done by the on-call engineer.", 0, 0},
		{"Nothing may be deleted.", 0, Delete},
		{"Writes follow-up emails as drafts.", Write, 0},
		{"Reads the commits that were merged last week.", 0, 0},
		{"Finds tickets nobody has updated in a month and closes them.", Write, 0},
		{"Looks up invoices. Leave refunds to the billing team.", 0, 0},
		{"Answers questions about the roadmap.", 0, 0},
		{"Answers the customer emails.", Send, 0},
		{"Reads the ticket and writes back to the customer.", Send, 0},
		{"Handles access requests from the team.", Admin, 0}, // handling them is granting access
		{"Handles refund requests from customers.", Send, 0},
		// A hand-off negates its own subject, not the agent's other work.
		{"Updates tickets and is not allowed to close them.", Write, 0},
		{"It updates tickets but is not allowed to delete them.", Write, 0},
		{"Merges duplicate tickets and needs a human for refunds.", Write, 0},
		{"Anything that deletes tickets needs a human.", 0, 0},
	}
	for _, c := range cases {
		in := ParseIntent(c.desc)
		if got := in.Asked &^ Read; got != c.asked {
			t.Errorf("%q: asked %s, want %s (requests %v)", c.desc, got, c.asked, in.Requests)
		}
		if in.Forbidden != c.forbidden {
			t.Errorf("%q: forbidden %s, want %s (requests %v)", c.desc, in.Forbidden, c.forbidden, in.Requests)
		}
	}
	// A passive's subject is what it applies to: the wiki, not everything.
	in := ParseIntent("Drafts pages in the wiki for review; the CRM itself is not to be edited.")
	var neg *Request
	for k, r := range in.Requests {
		if r.Negated && r.Ability == Write {
			neg = &in.Requests[k]
		}
	}
	if neg == nil || !slices.Contains(neg.Objects, "crm") || in.Forbidden != 0 {
		t.Errorf("want a negated write on the CRM only; got %v, forbidden %s", in.Requests, in.Forbidden)
	}
}

// A request whose object names a system the registry does not know
// ("Twitter") grants nothing and is reported as unmet.
func TestDraftOutsideRegistry(t *testing.T) {
	skills, tools := testRegistry()
	p, err := Draft("Reads support tickets and posts a summary of them on the company Twitter account.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range proposedTools(p) {
		if id == "mail/send_message" || id == "helpdesk/reply_to_ticket" {
			t.Errorf("proposed %s for a post on Twitter", id)
		}
	}
	if len(p.Unmet) != 1 || p.Unmet[0].Verb != "post" || !p.Unmet[0].Outside {
		t.Errorf("unmet %v, want the post request, outside the registry", p.Unmet)
	}
	// A person's name is not a system: "email Alice" still sends email.
	p, err = Draft("Reads support tickets and emails Alice the details.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(proposedTools(p), "mail/send_message") || len(p.Unmet) != 0 {
		t.Errorf("proposed %v, unmet %v; want mail/send_message for the email to Alice", proposedTools(p), p.Unmet)
	}
}

// "Share the calendars" asks for the tool that shares them, an admin tool,
// and not for the send ability the verb usually has.
func TestDraftExactAdminAct(t *testing.T) {
	ro := &Annotations{ReadOnlyHint: boolp(true)}
	rw := &Annotations{ReadOnlyHint: boolp(false)}
	tools := map[string]ToolInfo{
		"calendar/list_calendars":   {Description: "List the calendars you can see.", Annotations: ro},
		"calendar/create_event":     {Description: "Create an event on a calendar.", Annotations: rw},
		"calendar/send_invitations": {Description: "Email the invitation for an event to its attendees.", Annotations: rw},
		"calendar/share_calendar":   {Description: "Grant another person access to a calendar.", Annotations: rw},
	}
	skills := []*state.Skill{
		{Meta: state.Meta{Name: "calendar-read"}, Description: "See calendars.", Tools: []state.ToolGrant{{Tool: "calendar/list_calendars"}}},
		{Meta: state.Meta{Name: "calendar-schedule"}, Description: "Schedule meetings and send invitations.", Tools: []state.ToolGrant{{Tool: "calendar/create_event"}, {Tool: "calendar/send_invitations"}}},
		{Meta: state.Meta{Name: "calendar-admin"}, Description: "Share calendars.", Tools: []state.ToolGrant{{Tool: "calendar/share_calendar"}}},
	}
	p, err := Draft("Shares the team calendars with new starters. It never books meetings.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	got := proposedTools(p)
	if !slices.Contains(got, "calendar/share_calendar") || slices.Contains(got, "calendar/send_invitations") || slices.Contains(got, "calendar/create_event") {
		t.Errorf("proposed %v, want share_calendar and no scheduling tool", got)
	}
	if p.Asked&Admin == 0 {
		t.Errorf("asked %s, want admin (the act of share_calendar)", p.Asked)
	}
	// A short request whose object is all the skill's own words is enough
	// to let it change things.
	p, err = Draft("Books meetings.", skills, tools)
	if err != nil {
		t.Fatal(err)
	}
	if got := proposedTools(p); !slices.Contains(got, "calendar/create_event") || slices.Contains(got, "calendar/share_calendar") {
		t.Errorf("\"Books meetings.\": proposed %v, want create_event and no share_calendar", got)
	}
}

// TestParseIntentOthersActs: what someone else does, and what is left to
// someone else, asks for nothing (blind3's over-grants were such texts).
func TestParseIntentOthersActs(t *testing.T) {
	cases := []struct {
		desc  string
		asked Ability // beyond read
	}{
		{"Books interviews. Offer letters are sent by the recruiter.", Write},       // a passive with someone as its agent
		{"Looks at slow queries. Restoring backups is for the DBA.", 0},             // "is for" someone
		{"Shows which version is running and who deployed it.", 0},                  // embedded questions describe
		{"Removes anyone who has left the company.", Admin},                         // taking people away manages access
		{"An assistant who schedules meetings for the team.", Write},                // "who" after the agent is the agent
		{"This bot is for the support team; it answers the customer emails.", Send}, // a description of the agent hands nothing off
		{"Emails are sent by the agent itself.", Send},
	}
	for _, c := range cases {
		in := ParseIntent(c.desc)
		if got := in.Asked &^ Read; got != c.asked {
			t.Errorf("%q: asked %s, want %s (requests %v)", c.desc, got, c.asked, in.Requests)
		}
	}
	// an object pronoun ends the subject of a hand-off
	if in := ParseIntent("Moves old pages. Deleting pages or changing who can see them is not allowed."); in.Asked&(Delete|Admin) != 0 {
		t.Errorf("asked %s, want neither delete nor admin (requests %v)", in.Asked, in.Requests)
	}
	// "No exports." forbids seeing what it names; a list sharing a verb does not.
	if in := ParseIntent("Corrects contact details. No exports, ever."); !slices.ContainsFunc(in.Requests, func(r Request) bool {
		return r.Negated && r.Ability == Read && slices.Contains(r.Objects, stem("exports"))
	}) {
		t.Errorf("no negated sight of exports in %v", in.Requests)
	}
	if in := ParseIntent("Reads bills. No payments, no invoices sent."); slices.ContainsFunc(in.Requests, func(r Request) bool {
		return r.Negated && r.Ability == Read && slices.Contains(r.Objects, stem("payments"))
	}) {
		t.Errorf("a list sharing its verb forbade seeing payments: %v", in.Requests)
	}
}

// TestParseIntentListsAndTalk: the items of a list of verb phrases are
// verbs after a phrase that ends in a preposition or a subject pronoun;
// verbs of talking send a message only when the clause says where it goes;
// a chat channel named as a place is read.
func TestParseIntentListsAndTalk(t *testing.T) {
	cases := []struct {
		desc  string
		asked Ability // beyond read
	}{
		{"Works the mailbox: reads what comes in, files newsletters into folders, forwards enquiries to sales.", Write | Send},
		{"It reads mail, files invoices into folders and deletes spam.", Write | Delete},
		{"Confirms the booking in the thread.", Send},
		{"Tell the owning team in chat when an index is missing.", Send},
		{"Tells engineers which version runs where.", 0},
		{"Explains how the services fit together.", 0},
		{"Answer in the thread with the delivery date.", Send},
		{"Answers questions about the roadmap.", 0},
		{"Approves the ones that comply and rejects the rest with a reason.", Write}, // "the rest" is no hand-off
	}
	for _, c := range cases {
		in := ParseIntent(c.desc)
		if got := in.Asked &^ Read; got != c.asked {
			t.Errorf("%q: asked %s, want %s (requests %v)", c.desc, got, c.asked, in.Requests)
		}
	}
	watched := func(desc string) bool {
		return slices.ContainsFunc(ParseIntent(desc).Requests, func(r Request) bool {
			return !r.Negated && r.Ability == Read && slices.Contains(r.Objects, stem("channel"))
		})
	}
	if !watched("Swaps shifts when engineers ask for it in the #oncall channel.") {
		t.Error("a channel named as the place of a request is not read")
	}
	if watched("Posts the summary in the #releases channel.") {
		t.Error("a channel the role only posts to is read")
	}
}

// TestParseIntentCreatedTerms: what a request only creates ("opens an
// issue in the repository") is not a topic to read; a word the text also
// uses elsewhere is.
func TestParseIntentCreatedTerms(t *testing.T) {
	in := ParseIntent("When CI fails, open an issue in the repository with the job log.")
	if !in.created[stem("issue")] || !in.created[stem("repository")] {
		t.Errorf("created %v, want issue and repository", in.created)
	}
	in = ParseIntent("Reads the issues of the repository and files an issue for each duplicate.")
	if in.created[stem("issue")] || in.created[stem("repository")] {
		t.Errorf("created %v: issues are also read", in.created)
	}
}

// TestParseIntentMoreForms: "leaves a note for a human" writes a note (it
// hands nothing off); a list item may start with an adverb; a role noun
// that modifies a noun ("agent roles") does not make the word before it a
// role name.
func TestParseIntentMoreForms(t *testing.T) {
	cases := []struct {
		desc  string
		asked Ability // beyond read
	}{
		{"Reads new tickets and otherwise leaves an internal note for a human.", Write},
		{"Leave refunds to the billing team.", 0},
		{"Housekeeping: permanently deletes spam tickets and the tickets our monitoring creates, and merges duplicate tickets.", Write | Delete},
		{"From answering tickets to deleting them and changing agent roles.", Write | Delete | Send},
	}
	for _, c := range cases {
		in := ParseIntent(c.desc)
		if got := in.Asked &^ Read; got != c.asked {
			t.Errorf("%q: asked %s, want %s (requests %v)", c.desc, got, c.asked, in.Requests)
		}
	}
	if in := ParseIntent("Refund agent for the web shop."); in.Asked&^Read != 0 {
		t.Errorf("a role name asked %s", in.Asked)
	}
}

// TestParseIntentModifiersAndRights: a term used only before another noun
// is a modifier; "what" after an ambiguous word starts its object; deciding
// who may do what is admin, not a write.
func TestParseIntentModifiersAndRights(t *testing.T) {
	in := ParseIntent("Approves employee expense reports.")
	if !in.modifiers[normWord("employee")] || in.modifiers[normWord("reports")] {
		t.Errorf("modifiers %v, want employee and not report", in.modifiers)
	}
	if in := ParseIntent("Looks at the slow queries and posts what it finds to the #dba channel."); in.Asked&Send == 0 {
		t.Errorf("asked %s, want send (requests %v)", in.Asked, in.Requests)
	}
	in = ParseIntent("Moves old pages. Changing who can see them is not allowed.")
	if in.Forbidden&Write != 0 || in.Asked&Write == 0 {
		t.Errorf("asked %s forbidden %s: a negated change of who can see forbids admin only (requests %v)", in.Asked, in.Forbidden, in.Requests)
	}
}

// TestParseIntentRecipientTeam: the words of a team a thing is handed to
// are not what is handed ("moves the ticket to the billing team").
func TestParseIntentRecipientTeam(t *testing.T) {
	in := ParseIntent("It moves the ticket to the billing team.")
	for _, r := range in.Requests {
		if slices.Contains(r.Objects, normWord("billing")) {
			t.Errorf("request %v names billing as an object", r)
		}
	}
	if in := ParseIntent("It moves the invoices to the billing folder."); !slices.ContainsFunc(in.Requests, func(r Request) bool { return slices.Contains(r.Objects, normWord("billing")) }) {
		t.Errorf("a folder is where things go, and named: %v", in.Requests)
	}
}

// TestParseIntentLongReadList: a read request's objects run past the first
// three nouns of its list, up to the next verb.
func TestParseIntentLongReadList(t *testing.T) {
	in := ParseIntent("It compares the receipts of each report with the travel policy in the knowledge base, then approves it.")
	var cmp *Request
	for k, r := range in.Requests {
		if r.Word == "compares" {
			cmp = &in.Requests[k]
		}
	}
	if cmp == nil || !slices.Contains(cmp.Objects, normWord("policy")) || !slices.Contains(cmp.Objects, "wiki") || slices.Contains(cmp.Objects, normWord("approves")) {
		t.Errorf("compares: %v", cmp)
	}
}
