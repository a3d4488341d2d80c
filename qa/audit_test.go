package qa

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// auditFlush is the node's group commit interval in these tests (the
// default) and auditLossWindow the loss window the audit package states for
// kill -9 on an idle machine: one flush interval plus the duration of one
// write+fsync (given 400 ms here). The test reports the window it saw; it
// asserts only that what survives is a prefix (no holes).
const (
	auditFlush      = 100 * time.Millisecond
	auditLossWindow = auditFlush + 400*time.Millisecond
)

// ackedCall is one tool call the agent saw succeed: sent at send, answered
// at recv (the gateway's record time, when it arrived, lies between).
type ackedCall struct{ send, recv time.Time }

// TestAuditSurvivesKill9 is the crash test of the audit trail: agents call
// a real MCP upstream through a real node, the node is killed with SIGKILL
// mid-load (three times), restarted, and then: the trail verifies, and
// every call an agent saw succeed more than the stated loss window before
// a kill has its record. It prints the loss it measured.
func TestAuditSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	h := startHelpdesk(t)
	n := harness.StartNode(t, "--audit-flush-interval", auditFlush.String())
	agents := []string{"triage-bot", "audit-bot-1", "audit-bot-2", "audit-bot-3"}
	yaml := strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", h.url)
	for _, a := range agents[1:] {
		yaml += fmt.Sprintf("---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: %s}\nspec: {persona: support-triage}\n", a)
	}
	n.Apply(yaml)
	keys := map[string]string{}
	for _, a := range agents {
		keys[a] = n.NewKey(a)
	}
	endpoint := n.GatewayURL() + "/p/support-triage/mcp"

	acked := map[string][]ackedCall{}
	attempts := map[string]int{}
	var kills []time.Time // when each SIGKILL was sent
	var mu sync.Mutex
	for round := range 3 {
		if round > 0 {
			n.Start()
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, a := range agents {
			c := harness.NewRawClient(endpoint, keys[a], 1)
			if err := c.Initialize(); err != nil {
				t.Fatalf("%s: initialize: %v", a, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					send := time.Now()
					r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"project": "SUPPORT", "id": i})
					recv := time.Now()
					mu.Lock()
					attempts[a]++
					if err == nil && r.Error == nil && strings.Contains(string(r.Result), "printer on fire") {
						acked[a] = append(acked[a], ackedCall{send, recv})
					}
					mu.Unlock()
					if err != nil {
						return // the node is gone
					}
				}
			}()
		}
		time.Sleep(1500 * time.Millisecond)
		kill := time.Now()
		n.Kill()
		kills = append(kills, kill)
		close(stop)
		wg.Wait()
	}
	// The running node answers searches of its own trail on the admin
	// API, including a call made just now (the route flushes first).
	n.Start()
	c := harness.NewRawClient(endpoint, keys["triage-bot"], 1)
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	send := time.Now()
	if r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"project": "SUPPORT", "id": 1}); err != nil || r.Error != nil {
		t.Fatalf("a call after the restarts: %v %+v", err, r)
	}
	acked["triage-bot"] = append(acked["triage-bot"], ackedCall{send, time.Now()}) // a clean stop keeps it
	if r, err := c.CallTool("helpdesk_get_ticket", map[string]any{"project": "SECRET", "id": 1}); err != nil || r.Error != nil || !strings.Contains(string(r.Result), "isError") {
		t.Fatalf("a call the policy refuses: %v %+v", err, r)
	}
	// The record reaches the trail from the gateway's queue a moment
	// after the answer; give it that moment.
	var live string
	for try := 0; try < 50; try++ {
		if live = n.MustCLI("audit", "search", "--agent", "triage-bot", "--decision", "deny", "-o", "json"); live != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Count(live, "\n") != 1 || !strings.Contains(live, `"decision":"deny"`) {
		t.Fatalf("the admin API does not show the denial just made:\n%s", live)
	}
	liveAll := strings.Count(n.MustCLI("audit", "search", "--agent", "triage-bot", "-o", "json"), "\n")
	n.Stop()

	dir := filepath.Join(n.DataDir, "audit")
	bin := harness.Binary(t)
	out, err := exec.Command(bin, "audit", "verify", "--audit-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": intact: ") || strings.Contains(string(out), "(0 signature-verified)") {
		t.Fatalf("audit verify after three kills: %v\n%s", err, out)
	}
	t.Logf("audit verify: %s", strings.TrimSpace(string(out)))

	var lostTotal, ackedTotal, mustHave int
	var worst time.Duration // the oldest acknowledgment that was lost, before its kill
	for _, a := range agents {
		out, err := exec.Command(bin, "audit", "search", "--audit-dir", dir, "--agent", a, "--tool", "helpdesk_get_ticket", "--decision", "allow", "-o", "json").Output()
		if err != nil {
			t.Fatalf("audit search --agent %s: %v", a, err)
		}
		var times []time.Time
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" {
				continue
			}
			var r struct {
				Time                           time.Time
				Agent, Persona, Tool, Decision string
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("search printed a line that is not a record: %q", line)
			}
			if r.Agent != a || r.Persona != "support-triage" || r.Decision != "allow" {
				t.Fatalf("%s: unexpected record %s", a, line)
			}
			times = append(times, r.Time)
		}
		if len(times) > attempts[a] {
			t.Fatalf("%s: %d records for %d calls made", a, len(times), attempts[a])
		}
		slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
		calls := acked[a]
		if a == "triage-bot" && len(times)+1 != liveAll { // +1: the denial
			t.Fatalf("the admin API listed %d records of %s, the trail holds %d", liveAll, a, len(times)+1)
		}
		ackedTotal += len(calls)
		// An agent's calls are sequential, so their [send, recv] intervals
		// are disjoint and each holds at most one record.
		// Group commit makes what survives a kill a prefix of what was
		// written: within each run of the node, once one of an agent's
		// (sequential) calls has no record, none of its later calls in
		// that run may have one. How long before the kill the lost calls
		// were answered is the loss window, reported, not asserted: it is
		// a flush interval plus one fsync, which a loaded machine
		// stretches.
		lostIn := map[int]bool{} // run (index of the kill that ended it) → a call of it was lost
		for _, c := range calls {
			i, _ := slices.BinarySearchFunc(times, c.send, func(x, y time.Time) int { return x.Compare(y) })
			found := i < len(times) && !times[i].After(c.recv)
			// A call belongs to the run of the process it was sent to: the
			// first kill after it was sent (its answer may still arrive, from
			// the socket buffer, after the process is gone). One answered
			// while the kill was under way counts as acknowledged 0s before.
			before := time.Duration(1<<63 - 1) // after the last kill: a clean stop followed
			run := len(kills)
			if k := slices.IndexFunc(kills, func(k time.Time) bool { return k.After(c.send) }); k >= 0 {
				before, run = max(0, kills[k].Sub(c.recv)), k
			}
			if before > auditLossWindow {
				mustHave++
			}
			if found {
				if lostIn[run] {
					t.Errorf("%s: a call answered %v before kill %d has a record, but an earlier call of that run has none: the trail has a hole", a, before, run+1)
				}
				continue
			}
			if run == len(kills) {
				t.Errorf("%s: a call answered before the clean stop has no audit record", a)
			}
			lostIn[run] = true
			lostTotal++
			worst = max(worst, before)
		}
	}
	t.Logf("kill -9 ×3 under %d agents: %d calls acknowledged, %d of them more than %v before a kill; %d acknowledged calls lost, the oldest acknowledged %v before its kill (flush interval %v)",
		len(agents), ackedTotal, mustHave, auditLossWindow, lostTotal, worst, auditFlush)
	if ackedTotal == 0 || mustHave == 0 {
		t.Fatal("no call was acknowledged well before a kill: the load did not run")
	}
}
