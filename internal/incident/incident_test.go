package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/state"
)

var t0 = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// exfilRecords: 200 ticket reads with some card numbers in them, then an
// email refused by a sequence rule, then two more refusals.
func exfilRecords() []audit.Record {
	var recs []audit.Record
	seq := uint64(0)
	add := func(r audit.Record) {
		seq++
		r.Seq, r.Agent, r.Persona, r.Node, r.Session = seq, "triage-bot", "support-triage", "n1", "s1"
		recs = append(recs, r)
	}
	for i := 0; i < 200; i++ {
		r := audit.Record{Time: t0.Add(time.Duration(i) * 2 * time.Second), Tool: "helpdesk_get_ticket", Decision: "allow",
			Verdicts: []audit.Verdict{{Stage: "policy", Outcome: "allow"}, {Stage: "upstream", Outcome: "allow"}}}
		if i%20 == 0 {
			r.DLPFindings, r.DLPResponse = map[string]int{"card-visa": 1}, "modify"
		}
		add(r)
	}
	rule := "refused by sequence rule read-then-email: 200 calls to skill read-tickets within 10m, then an external-egress tool"
	for i := 0; i < 3; i++ {
		add(audit.Record{Time: t0.Add(400*time.Second + time.Duration(i)*time.Second), Tool: "mail_send_email", Decision: "deny", Reason: rule,
			Verdicts: []audit.Verdict{{Stage: "policy", Outcome: "allow"}, {Stage: "behaviour", Outcome: "deny", Reason: rule}}})
	}
	return recs
}

func TestReportOfReadThenExfiltrate(t *testing.T) {
	recs := exfilRecords()
	r := Build(Input{Agent: "triage-bot", Since: t0, Until: t0.Add(time.Hour), Records: recs, Generated: t0.Add(2 * time.Hour), StateIndex: 42,
		Persona: &state.Persona{Meta: state.Meta{Name: "support-triage"}, Description: "Triages tickets", Skills: []string{"read-tickets", "gone"}},
		Skills:  map[string]*state.Skill{"read-tickets": {Tools: []state.ToolGrant{{Tool: "helpdesk/get_ticket"}}}}})
	if r.Totals.Calls != 203 || r.Totals.Allowed != 200 || r.Totals.Denied != 3 || r.Totals.Modified != 10 || r.Totals.Tools != 2 {
		t.Fatalf("totals %+v", r.Totals)
	}
	want := []string{
		"Agent triage-bot made 203 calls to 2 tools",
		"The gateway refused 3 calls at the behaviour stage — refused by sequence rule read-then-email",
		"The first refusal came right after 200 allowed calls to helpdesk_get_ticket within 6m38s; the refused call was to mail_send_email (refused by sequence rule read-then-email",
		"DLP found 10 sensitive values in its calls: card-visa 10 (pci)",
	}
	rc := strings.Join(r.RootCause, "\n")
	for _, w := range want {
		if !strings.Contains(rc, w) {
			t.Errorf("root cause lacks %q:\n%s", w, rc)
		}
	}
	if len(r.Sequence) != 2 || r.Sequence[0].Count != 200 || r.Sequence[1].Count != 3 || r.Sequence[1].Stage != "behaviour" {
		t.Errorf("sequence %+v", r.Sequence)
	}
	if len(r.Data) != 1 || r.Data[0].Category != "pci" || r.Data[0].Tools[0] != "helpdesk_get_ticket" {
		t.Errorf("data %+v", r.Data)
	}
	if len(r.Policy.Skills) != 2 || r.Policy.Skills[0].Tools[0] != "helpdesk/get_ticket" || r.Policy.Skills[1].Tools != nil || r.Policy.StateIndex != 42 {
		t.Errorf("policy %+v", r.Policy)
	}
	var events []string
	for _, e := range r.Timeline {
		events = append(events, e.What)
	}
	if !strings.Contains(strings.Join(events, "\n"), "first refused call to mail_send_email (behaviour: refused by sequence rule") {
		t.Errorf("timeline %q", events)
	}
	b, err := r.JSON()
	if err != nil || !json.Valid(b) {
		t.Fatal(err)
	}
	h, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"<h1>Agent triage-bot</h1>", "read-then-email", "card-visa", "helpdesk/get_ticket", "#201"} {
		if !bytes.Contains(h, []byte(w)) {
			t.Errorf("HTML lacks %q", w)
		}
	}
}

func TestReportOfRunawayIsBoundedAndEscaped(t *testing.T) {
	var recs []audit.Record
	for i := 0; i < 5000; i++ {
		r := audit.Record{Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), Agent: "coder", Persona: "dev", Node: "n2",
			Tool: fmt.Sprintf("fs_read_%d", i%7), Decision: "error", Reason: "upstream \"fs\" failed (HTTP 500)", UpstreamStatus: "http 500",
			Verdicts: []audit.Verdict{{Stage: "upstream", Outcome: "error"}}}
		if i%3 == 0 {
			r.Decision, r.Reason = "allow", ""
		}
		if i >= 4000 {
			r.Tool, r.Decision, r.Reason = "<script>alert(1)</script>", "deny", "rate limit: agent coder of persona dev may make 100 calls per minute"
			r.Verdicts = []audit.Verdict{{Stage: "guard", Outcome: "deny"}}
		}
		recs = append(recs, r)
	}
	r := Build(Input{Agent: "coder", Since: t0, Until: t0.Add(time.Hour), Records: recs, Generated: t0})
	if len(r.Sequence) > maxRuns+20 {
		t.Errorf("%d runs in the report; it must stay readable (≤ %d plus markers)", len(r.Sequence), maxRuns)
	}
	if r.Policy.Deleted != true {
		t.Error("a report without the persona must say it was deleted")
	}
	rc := strings.Join(r.RootCause, "\n")
	for _, w := range []string{"It kept calling after failures: 2666 failed calls (2666 the upstream's, 0 tool errors; 67% of the calls it was let through); the longest streak was 2 in a row", "It peaked at 5000 calls in the minute", "The gateway refused 1000 calls at the guard stage — rate limit"} {
		if !strings.Contains(rc, w) {
			t.Errorf("root cause lacks %q:\n%s", w, rc)
		}
	}
	h, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(h, []byte("<script>")) {
		t.Fatal("a tool name reached the HTML unescaped")
	}
	empty := Build(Input{Agent: "idle", Since: t0, Until: t0.Add(time.Hour)})
	if len(empty.RootCause) != 1 || !strings.Contains(empty.RootCause[0], "made no governed call") {
		t.Errorf("empty report: %q", empty.RootCause)
	}
}

// TestPrintPDF prints a report with the real headless Chromium and, when
// pdftoppm is there, renders its first page to PNG (qa keeps samples).
func TestPrintPDF(t *testing.T) {
	chrome, err := Chromium()
	if err != nil {
		t.Skip(err)
	}
	r := Build(Input{Agent: "triage-bot", Since: t0, Until: t0.Add(time.Hour), Records: exfilRecords(), Generated: t0})
	h, _ := r.HTML()
	pdf, err := PrintPDF(context.Background(), chrome, h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 10000 {
		t.Fatalf("PDF of %d bytes", len(pdf))
	}
	if f := os.Getenv("PORTCULLIS_REPORT_OUT"); f != "" { // to look at it
		if err := os.WriteFile(f, pdf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.LookPath("pdftotext"); err == nil {
		f := filepath.Join(t.TempDir(), "r.pdf")
		os.WriteFile(f, pdf, 0o600)
		out, err := exec.Command("pdftotext", f, "-").Output()
		if err != nil || !strings.Contains(string(out), "Root cause") || !strings.Contains(string(out), "read-then-email") {
			t.Errorf("the PDF's text lacks the report: %v\n%.500s", err, out)
		}
	}
}
