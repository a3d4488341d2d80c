package behaviourqa

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// TestClusterHoldAndQuarantine on three nodes: a call held on node 1 is
// listed and approved through node 3; a runaway stopped on node 2 is
// refused on node 1 and 3 too, and released through node 1.
//
//	go test ./qa/behaviour -run Cluster -v
func TestClusterHoldAndQuarantine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	hd, ml := startHelpdesk(t), startMail(t)
	c := harness.StartCluster(t, 1)
	c.Join("n2")
	c.Join("n3")
	c.WaitFormed(60 * time.Second)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	n1.Apply(world(hd, ml, map[string]string{"triage-bot": "support", "coder": "dev"}) + fmt.Sprintf(readThenEmail, "hold") + "  holdTimeout: 30s\n")
	time.Sleep(300 * time.Millisecond) // the objects replicate

	// Hold on node 1, decided through node 3.
	bot := client(t, n1, "support", "triage-bot")
	for i := range 200 {
		if r, err := bot.CallTool("helpdesk_get_ticket", map[string]any{"id": fmt.Sprint(i)}); err != nil || !ok(r) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		r, err := bot.CallTool("mail_send", map[string]any{"to": "boss@example.com", "body": "summary"})
		if err == nil && !ok(r) {
			err = fmt.Errorf("approved call refused: %+v", r.Error)
		}
		done <- err
	}()
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" && time.Now().Before(deadline) {
		for _, line := range strings.Split(n3.MustCLI("approvals", "list"), "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[1] == "pending" {
				id = f[0]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("node 3 does not list the call held on node 1")
	}
	t0 := time.Now()
	n3.MustCLI("approvals", "approve", id)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cluster: call held on n1, approved through n3, answered %s after the approval\n", time.Since(t0).Round(time.Millisecond))

	// Runaway on node 2, refused everywhere, released through node 1.
	coder := client(t, n2, "dev", "coder")
	stopped := 0
	for i := 1; i <= 1000 && stopped == 0; i++ {
		r, err := coder.CallTool("helpdesk_read_file", map[string]any{"path": fmt.Sprintf("src/x%d/%x.go", i, i*7919)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != nil {
			stopped = i
		}
	}
	if stopped == 0 {
		t.Fatal("runaway on n2 not stopped within 1000 calls")
	}
	for _, n := range []*harness.Node{n1, n3} {
		other := client(t, n, "dev", "coder")
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := other.CallTool("helpdesk_read_file", map[string]any{"path": "src/main.go"})
			if err == nil && r.Error != nil && strings.Contains(r.Error.Message, "quarantined") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s serves the agent quarantined on n2: %v %+v", n.ID(), err, r)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	n1.MustCLI("agent", "release", "coder")
	deadline = time.Now().Add(5 * time.Second)
	for {
		r, err := coder.CallTool("helpdesk_read_file", map[string]any{"path": "src/main.go"})
		if err == nil && ok(r) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n2 still refuses the released agent: %v %+v", err, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("cluster: runaway on n2 stopped at call %d, refused on n1 and n3, released through n1\n", stopped)
}
