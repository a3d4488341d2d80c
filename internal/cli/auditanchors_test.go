package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// verify --anchors checks a trail against an anchors file: an intact trail
// passes; with its newest segment and that segment's checkpoints deleted,
// verify alone passes (the hole) and verify --anchors names the segment.
func TestAuditVerifyAnchors(t *testing.T) {
	dir := writeAuditTrail(t, 200)
	// The anchor raft would hold: the trail's last final checkpoint.
	f, err := os.Open(filepath.Join(dir, "checkpoints.log"))
	if err != nil {
		t.Fatal(err)
	}
	var last audit.Checkpoint
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	cp, _ := json.Marshal(&last)
	anchors := filepath.Join(t.TempDir(), "anchors.json")
	if err := audit.WriteAnchors(anchors, &audit.Anchors{Anchors: []state.AuditAnchor{{Node: "n1",
		AuditHead: state.AuditHead{Segment: last.Segment, Records: last.Records, Seq: last.LastSeq, Hash: last.Head, Checkpoint: cp}}}}); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir, "--anchors", anchors); err != nil || !strings.Contains(out, "checked against the chain head raft anchored for node n1") {
		t.Fatalf("verify --anchors of an intact trail: %v\n%s", err, out)
	}

	newest := filepath.Join(dir, "segment-"+fmt.Sprintf("%08d", last.Segment)+".log.zst")
	if err := os.Remove(newest); err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range lines {
		var c audit.Checkpoint
		json.Unmarshal([]byte(l), &c)
		if c.Segment != last.Segment {
			keep = append(keep, l)
		}
	}
	os.WriteFile(filepath.Join(dir, "checkpoints.log"), []byte(strings.Join(keep, "\n")+"\n"), 0o600)
	if out, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir); err != nil {
		t.Fatalf("verify alone sees the deletion (the hole anchors close should be there): %v\n%s", err, out)
	}
	out, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir, "--anchors", anchors)
	if err == nil || !strings.Contains(out, "DAMAGED segment-"+fmt.Sprintf("%08d", last.Segment)+".log: missing: raft anchored") {
		t.Fatalf("verify --anchors after deleting the newest segment: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir, "--anchors", filepath.Join(dir, "nope.json")); err == nil || !strings.Contains(err.Error(), "--anchors") {
		t.Fatalf("verify with a missing anchors file: %v", err)
	}
}
