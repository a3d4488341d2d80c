package export

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// FuzzSyslogCEF: whatever strings a decision carries, its syslog frame is
// one octet-counted RFC 5424 message whose CEF body parses back to the
// same agent, tool, reason, persona and method (header fields lose only
// line breaks).
func FuzzSyslogCEF(f *testing.F) {
	f.Add("triage-bot", "helpdesk_get_ticket", "no grant", "support", "tools/call", "1.0")
	f.Add("a=b", "x|y", "line\nbreak\\ and \\n", "p\\", "m|=", "v|\\")
	f.Add("", "", "", "", "", "")
	f.Add(" lead", "trail ", "k=v x=y", "=", "\r\n", "é\x00\xff")
	f.Fuzz(func(t *testing.T, agent, tool, reason, persona, method, version string) {
		d := gateway.Decision{Time: time.Unix(1796418000, 0), Agent: agent, Tool: tool, Reason: reason, Persona: persona,
			Method: method, Decision: gateway.Deny, Verdicts: []gateway.Verdict{{Stage: gateway.StagePolicy, Outcome: gateway.Deny}}}
		s := &syslogSender{cfg: SyslogConfig{Facility: defaultFacility, Format: FormatCEF}, node: "n1", version: version, host: "host", procID: "1"}
		frame := string(s.frame(nil, &d))
		msg, err := readFrame(bufio.NewReader(strings.NewReader(frame)))
		if err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		m, err := parse5424(msg)
		if err != nil {
			t.Fatalf("message %q: %v", msg, err)
		}
		ev, err := parseCEF(m.msg)
		if err != nil {
			t.Fatalf("CEF %q: %v", m.msg, err)
		}
		if ev.ext["suser"] != agent || ev.ext["reason"] != reason || ev.label("tool") != tool ||
			ev.label("persona") != persona || ev.label("method") != method || ev.ext["act"] != "deny" {
			t.Fatalf("round trip of %q lost a field: %q", m.msg, ev.ext)
		}
		noBreaks := strings.NewReplacer("\r", " ", "\n", " ")
		if ev.header[3] != noBreaks.Replace(version) || ev.header[6] != "7" {
			t.Fatalf("header %q from version %q", ev.header, version)
		}
	})
}

// FuzzParseDecisions: any input is accepted as a set of known decisions
// or refused with an error; an accepted set parses back to itself.
func FuzzParseDecisions(f *testing.F) {
	for _, s := range []string{"", "deny,error", "allow", " deny , deny", "deny,,", "blocked", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDecisions(s)
		if err != nil {
			if got != nil {
				t.Fatalf("an error with a result: %v", got)
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("%q: an empty set", s)
		}
		for _, d := range got {
			if d != gateway.Allow && d != gateway.Deny && d != gateway.Fail {
				t.Fatalf("%q: unknown decision %q accepted", s, d)
			}
		}
		again, err := ParseDecisions(strings.Join(got, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(got, ",") {
			t.Fatalf("%q → %v does not parse back: %v %v", s, got, again, err)
		}
	})
}

// FuzzHeaderField: a header field is always printable ASCII without
// spaces, non-empty and within its bound.
func FuzzHeaderField(f *testing.F) {
	f.Add("host.example", 255)
	f.Add("with space\x00é", 4)
	f.Fuzz(func(t *testing.T, v string, n int) {
		if n < 1 || n > 1000 {
			return
		}
		h := headerField(v, n)
		if h == "" || len(h) > n && h != "-" {
			t.Fatalf("headerField(%q, %d) = %q", v, n, h)
		}
		for i := 0; i < len(h); i++ {
			if h[i] <= 32 || h[i] >= 127 {
				t.Fatalf("headerField(%q) = %q holds byte %#x", v, h, h[i])
			}
		}
	})
}
