package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/gateway"
)

func writeAuditTrail(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.New(audit.Config{Dir: dir, Node: "n1", SegmentBytes: 8 << 10, BufferBytes: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).UTC()
	for i := range n {
		d := gateway.Decision{Time: t0.Add(time.Duration(i) * time.Second), Agent: fmt.Sprintf("bot-%d", i%2), Persona: "triage",
			Tool: "helpdesk_get_ticket", Decision: gateway.Allow, Method: "tools/call"}
		if i%4 == 3 {
			d.Decision, d.Reason = gateway.Deny, "not in persona"
		}
		if err := l.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := writeAuditTrail(t, 200)
	out, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir)
	if err != nil || !strings.Contains(out, "intact: ") || !strings.Contains(out, "200 records") || !strings.Contains(out, "unsigned") {
		t.Fatalf("verify of an intact trail: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "audit", "verify"); err == nil || !strings.Contains(err.Error(), "--audit-dir") {
		t.Fatalf("verify without a directory: %v", err)
	}

	// A byte changed in the middle of a compressed segment.
	seg := filepath.Join(dir, "segment-00000002.log.zst")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	os.WriteFile(seg, b, 0o600)
	out, err = runCLI(t, "", "audit", "verify", "--audit-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "segment-00000002.log.zst: record ") || !strings.Contains(out, "DAMAGED segment-00000002.log.zst") {
		t.Fatalf("verify after a changed byte: %v\n%s", err, out)
	}
	// A removed segment.
	os.Remove(filepath.Join(dir, "segment-00000003.log.zst"))
	out, err = runCLI(t, "", "audit", "verify", "--audit-dir", dir, "-o", "json")
	var rep struct {
		OK       bool
		Problems []struct{ File, Message string }
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || err == nil || rep.OK {
		t.Fatalf("verify -o json of a damaged trail: %v %v\n%s", err, jerr, out)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || (p.File == "segment-00000003.log" && strings.Contains(p.Message, "missing"))
	}
	if !found {
		t.Fatalf("the removed segment is not named: %s", out)
	}
	if _, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir, "--pub", seg); err == nil || !strings.Contains(err.Error(), "--pub") {
		t.Fatalf("a --pub file that is no key: %v", err)
	}
}

func TestAuditSearchCommand(t *testing.T) {
	dir := writeAuditTrail(t, 100)
	out, err := runCLI(t, "", "audit", "search", "--audit-dir", dir, "--agent", "bot-1", "--decision", "deny", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 25 {
		t.Fatalf("bot-1's denials: %d lines, want 25:\n%s", len(lines), out)
	}
	var prev time.Time
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not one JSON object per line: %q", l)
		}
		for _, k := range []string{"time", "agent", "persona", "tool", "decision"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("record lacks %q: %s", k, l)
			}
		}
		tm, _ := time.Parse(time.RFC3339Nano, r["time"].(string))
		if r["agent"] != "bot-1" || r["decision"] != "deny" || tm.Before(prev) {
			t.Fatalf("wrong record or order: %s", l)
		}
		prev = tm
	}
	out, err = runCLI(t, "", "audit", "search", "--data-dir", filepath.Dir(dir), "--agent", "bot-1")
	if err == nil {
		t.Fatalf("--data-dir without an audit subdirectory found records: %s", out)
	}
	out, err = runCLI(t, "", "audit", "search", "--audit-dir", dir, "--since", "30m")
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("records of the last 30 minutes (all are older): %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "audit", "search", "--audit-dir", dir, "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("a bad --since: %v", err)
	}
}
