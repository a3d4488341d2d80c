package persona

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseIntent: the parser never panics, and what it reports is
// consistent: nothing both asked and forbidden, Read always asked, objects
// made of stems.
func FuzzParseIntent(f *testing.F) {
	for _, s := range []string{
		"Tier-1 support agent. Reads tickets and replies to customers. Never deletes anything.",
		"Read-only analyst; must not post anything.",
		"Don't delete or send any mail, but sort it into folders.",
		"roll it back, clean up, kick off the build, reach out",
		"no changes, no writes, no deletions — reporting only.",
		"", "   ", "-", "re-run e-mail auto-reply (draft, sent, paid)",
		"\xff\xfe broken utf8 \x00", strings.Repeat("send ", 100),
		"getPullRequest list_ticket_comments; set_auto_reply",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := ParseIntent(s)
		if in.Asked&Read == 0 {
			t.Fatal("Read not asked")
		}
		if in.Asked&in.Forbidden != 0 {
			t.Fatalf("asked %s and forbidden %s overlap", in.Asked, in.Forbidden)
		}
		for _, r := range in.Requests {
			if r.Ability == 0 {
				t.Fatalf("request without ability: %+v", r)
			}
			for _, o := range r.Objects {
				if o == "" || !utf8.ValidString(o) {
					t.Fatalf("bad object %q in %+v", o, r)
				}
			}
		}
		for term, w := range in.Terms {
			if term == "" || w <= 0 || w > maxTermWeight {
				t.Fatalf("bad term %q weight %v", term, w)
			}
		}
	})
}

// FuzzDraft: any description drafts without error or panic, and never
// proposes a tool with an ability the description did not ask for.
func FuzzDraft(f *testing.F) {
	for _, s := range []string{
		"Support agent: reads tickets, updates them, replies to customers, deletes spam tickets.",
		"Review pull requests and merge them. Send email summaries.",
		"read only", "never send email", "x", "helpdesk/* everything delete send",
	} {
		f.Add(s)
	}
	skills, tools := testRegistry()
	ix, err := NewIndex(skills, tools)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ix.Draft(s)
		if err != nil {
			if len(strings.Fields(strings.Map(printable, strings.ToValidUTF8(s, " ")))) == 0 || len(s) > MaxDescription {
				return
			}
			t.Fatalf("draft %q: %v", s, err)
		}
		for _, ps := range p.Skills {
			for _, id := range ps.Tools {
				var info *ToolInfo
				if ti, ok := tools[id]; ok {
					info = &ti
				}
				if extra := ClassifyTool(id, info).Abilities &^ (p.Asked | Read); extra != 0 {
					t.Fatalf("%q: proposed %s which can %s; asked only %s", s, id, extra, p.Asked)
				}
			}
		}
		if _, err := p.YAML(); err != nil {
			t.Fatalf("%q: YAML: %v", s, err)
		}
	})
}

func BenchmarkParseIntent(b *testing.B) {
	desc := "Executive assistant. Manages the CEO's calendar - schedules, moves and cancels meetings and sends out the invites - and drafts replies to email for the CEO to review. Drafts only: it doesn't send email itself."
	b.SetBytes(int64(len(desc)))
	for b.Loop() {
		ParseIntent(desc)
	}
}
