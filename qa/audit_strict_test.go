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

// TestAuditStrictSingleNodeKill9: with --audit-mode strict a single node
// answers a call only once its record is on disk (its own trail and its
// fsynced raft log), so kill -9 under load loses no record of a call an
// agent saw succeed — where async loses its last flush interval
// (TestAuditSurvivesKill9).
func TestAuditStrictSingleNodeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	h := startHelpdesk(t)
	n := harness.StartNode(t, "--audit-mode", "strict")
	agents := []string{"triage-bot", "audit-bot-1", "audit-bot-2", "audit-bot-3"}
	yaml := strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", h.url)
	for _, a := range agents[1:] {
		yaml += fmt.Sprintf("---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: %s}\nspec: {persona: support-triage}\n", a)
	}
	n.Apply(yaml)
	endpoint := n.GatewayURL() + "/p/support-triage/mcp"
	acked := map[string][]ackedCall{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range agents {
		c := harness.NewRawClient(endpoint, n.NewKey(a), 1)
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
				if err != nil {
					return // the node is gone
				}
				if r.Error == nil && strings.Contains(string(r.Result), "printer on fire") {
					mu.Lock()
					acked[a] = append(acked[a], ackedCall{send, time.Now()})
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	n.Kill()
	close(stop)
	wg.Wait()
	n.Start()
	n.Stop()

	dir := filepath.Join(n.DataDir, "audit")
	bin := harness.Binary(t)
	if out, err := exec.Command(bin, "audit", "verify", "--audit-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("audit verify after kill -9: %v\n%s", err, out)
	}
	total := 0
	for _, a := range agents {
		out, err := exec.Command(bin, "audit", "search", "--audit-dir", dir, "--agent", a, "--decision", "allow", "-o", "json").Output()
		if err != nil {
			t.Fatalf("audit search: %v", err)
		}
		var times []time.Time
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var r struct{ Time time.Time }
			if line != "" && json.Unmarshal([]byte(line), &r) == nil {
				times = append(times, r.Time)
			}
		}
		slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
		for _, c := range acked[a] {
			i, _ := slices.BinarySearchFunc(times, c.send, func(x, y time.Time) int { return x.Compare(y) })
			if i >= len(times) || times[i].After(c.recv) {
				t.Errorf("%s: a call answered %s has no record after kill -9 (strict mode)", a, c.recv.Format("15:04:05.000"))
			}
		}
		total += len(acked[a])
	}
	if total == 0 {
		t.Fatal("no call succeeded: the load did not run")
	}
	t.Logf("strict, kill -9 under %d agents: %d calls acknowledged, every one has its record", len(agents), total)
}
