package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// ackedCall is one call an agent saw succeed: sent at send, answered at
// recv (its record's time, when the call arrived, lies between).
type ackedCall struct{ send, recv time.Time }

// auditLoad runs per node `per` agents of their own (a-<node>-<i>), each
// calling echo in a closed loop through that node, and keeps every call
// each saw succeed. A caller whose node is gone keeps trying (its calls
// fail) until stop.
type auditLoad struct {
	mu     sync.Mutex
	acked  map[string][]ackedCall // by agent
	failed map[string]int
	lat    []time.Duration
	stop   chan struct{}
	wg     sync.WaitGroup
}

func auditAgents(c *harness.Cluster, per int) []string {
	var out []string
	for _, n := range c.Nodes {
		for i := range per {
			out = append(out, fmt.Sprintf("a-%s-%d", n.ID(), i))
		}
	}
	return out
}

// setupAuditAgents declares the echo persona and the agents, and returns
// a key per agent that works on every node.
func setupAuditAgents(t *testing.T, c *harness.Cluster, up string, per int) map[string]string {
	t.Helper()
	yaml := echoConfig(up, "echoer", "echo-bot")
	for _, a := range auditAgents(c, per) {
		yaml += fmt.Sprintf("---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: %s}\nspec: {persona: echoer}\n", a)
	}
	c.Nodes[0].Apply(yaml)
	keys := map[string]string{}
	for _, a := range auditAgents(c, per) {
		keys[a] = c.Nodes[0].NewKey(a)
	}
	for _, n := range c.Nodes {
		waitAgentOK(t, n, "echoer", keys[fmt.Sprintf("a-%s-0", n.ID())])
	}
	return keys
}

func startAuditLoad(t *testing.T, c *harness.Cluster, keys map[string]string, per int) *auditLoad {
	t.Helper()
	l := &auditLoad{acked: map[string][]ackedCall{}, failed: map[string]int{}, stop: make(chan struct{})}
	for _, n := range c.Nodes {
		for i := range per {
			agent := fmt.Sprintf("a-%s-%d", n.ID(), i)
			cl := newAgent(t, n, "echoer", keys[agent], "2025-11-25")
			cl.HTTP.Timeout = 15 * time.Second
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for k := 0; ; k++ {
					select {
					case <-l.stop:
						return
					default:
					}
					send := time.Now()
					err := callEcho(cl, fmt.Sprintf("%s-%d", agent, k))
					recv := time.Now()
					l.mu.Lock()
					if err == nil {
						l.acked[agent] = append(l.acked[agent], ackedCall{send, recv})
						l.lat = append(l.lat, recv.Sub(send))
					} else {
						l.failed[agent]++
					}
					l.mu.Unlock()
					if err != nil {
						time.Sleep(50 * time.Millisecond)
					}
				}
			}()
		}
	}
	t.Cleanup(l.Stop)
	return l
}

func (l *auditLoad) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// recordTimes returns the times of agent's allowed echo records in the
// trail (or replica) in dir, read offline with the CLI.
func recordTimes(t *testing.T, dir, agent string) []time.Time {
	t.Helper()
	out, err := exec.Command(harness.Binary(t), "audit", "search", "--audit-dir", dir, "--agent", agent, "--tool", echoTool, "--decision", "allow", "-o", "json").Output()
	if err != nil {
		t.Fatalf("audit search %s --agent %s: %v", dir, agent, err)
	}
	var times []time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit search printed %q: %v", line, err)
		}
		times = append(times, r.Time)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return times
}

// missing returns the acknowledged calls that have no record: one agent's
// calls never overlap, so each must match its own record in order.
func missing(acked []ackedCall, times []time.Time) []ackedCall {
	var out []ackedCall
	j := 0
	for _, a := range acked {
		for j < len(times) && times[j].Before(a.send.Add(-time.Millisecond)) {
			j++ // a record of a call that was refused (strict mode may keep one)
		}
		if j < len(times) && !times[j].After(a.recv) {
			j++
			continue
		}
		out = append(out, a)
	}
	return out
}

// TestAuditStrictSurvivesNodeKills is the crash test of strict audit on a
// real cluster: agents call through every node of three; a follower is
// killed with SIGKILL under load (and restarted), then the leader. Every
// call an agent saw succeed has its record on every surviving node: in
// the node's own trail, and in each other survivor's replica of that
// node's trail (counted from the agent side). Afterwards every replica
// verifies, and a node's trail with its newest segment and checkpoints
// deleted passes verify alone but not against the anchors raft holds.
func TestAuditStrictSurvivesNodeKills(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3, "--audit-mode", "strict")
	const per = 2
	keys := setupAuditAgents(t, c, up, per)

	load := startAuditLoad(t, c, keys, per)
	time.Sleep(2 * time.Second)
	leader := c.Leader(10 * time.Second)
	var follower *harness.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	follower.Kill()
	t.Logf("killed follower %s", follower.ID())
	time.Sleep(2 * time.Second)
	follower.Start()
	waitMemberHealthy(t, c, follower, 60*time.Second)
	time.Sleep(time.Second)
	leader = c.Leader(10 * time.Second)
	leader.Kill()
	t.Logf("killed leader %s", leader.ID())
	c.Leader(30 * time.Second)
	time.Sleep(2 * time.Second)
	load.Stop()

	var survivors []*harness.Node
	for _, n := range c.Nodes {
		if n.Running() {
			survivors = append(survivors, n)
		}
	}
	total := 0
	for _, n := range c.Nodes {
		for i := range per {
			agent := fmt.Sprintf("a-%s-%d", n.ID(), i)
			acked := load.acked[agent]
			total += len(acked)
			if len(acked) == 0 && n.Running() {
				t.Errorf("agent %s on %s: no call succeeded (%d failed)", agent, n.ID(), load.failed[agent])
			}
			for _, s := range survivors {
				dir := filepath.Join(s.DataDir, "audit")
				if s != n {
					dir = filepath.Join(dir, "replicas", n.ID())
				}
				if lost := missing(acked, recordTimes(t, dir, agent)); len(lost) > 0 {
					t.Errorf("%s: %d of %d calls agent %s saw succeed through %s have no record; the first sent %s",
						dir, len(lost), len(acked), agent, n.ID(), lost[0].send.Format("15:04:05.000"))
				}
			}
		}
	}
	t.Logf("%d acknowledged calls, each found on every survivor (%d nodes); failed calls per agent: %v", total, len(survivors), load.failed)

	// The anchors as an auditor fetches them from a running node.
	anchorsCLI := filepath.Join(t.TempDir(), "anchors.json")
	if err := os.WriteFile(anchorsCLI, []byte(survivors[0].MustCLI("audit", "anchors")), 0o600); err != nil {
		t.Fatal(err)
	}

	// Replicas verify like the node's own trail (the killed leader's is
	// still open: it never restarted to close it).
	for _, s := range survivors {
		s.Stop()
	}
	bin := harness.Binary(t)
	for _, s := range survivors {
		for _, n := range c.Nodes {
			dir := filepath.Join(s.DataDir, "audit", "replicas", n.ID())
			if n == s {
				dir = filepath.Join(s.DataDir, "audit")
			}
			out, err := exec.Command(bin, "audit", "verify", "--audit-dir", dir).CombinedOutput()
			if n != s && strings.Count(string(out), "DAMAGED") == 1 && strings.Contains(string(out), "DAMAGED checkpoints.log: missing or empty") {
				// A replica whose node had not written its first checkpoint
				// (every 10 s) when this node stopped: the killed leader,
				// never restarted, or a survivor whose final checkpoint
				// came after this node stopped. It has records and no
				// checkpoint, as the node's own directory had then.
				t.Logf("replica of %s on %s: no checkpoint yet (the node died before its first)", n.ID(), s.ID())
				continue
			}
			if err != nil || !strings.Contains(string(out), ": intact: ") {
				var lines []string
				for _, l := range strings.Split(s.Logs(), "\n") {
					if strings.Contains(l, "audit") && !strings.Contains(l, "level=DEBUG") {
						lines = append(lines, l)
					}
				}
				t.Errorf("audit verify %s: %v\n%s\n%s's audit log lines:\n%s", dir, err, out, s.ID(), strings.Join(lines, "\n"))
			}
		}
	}

	// The hole anchors close: the restarted follower's newest segment and
	// its checkpoints deleted. Its own trail still verifies; against the
	// anchors another node holds, verify names the segment.
	dir := filepath.Join(follower.DataDir, "audit")
	segs, _ := filepath.Glob(filepath.Join(dir, "segment-*"))
	slices.Sort(segs)
	if len(segs) < 2 {
		t.Fatalf("%s has %d segments, want 2 (one per start)", dir, len(segs))
	}
	newest := segs[len(segs)-1]
	no := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(newest), "segment-"), ".zst"), ".log")
	os.Remove(newest)
	ck, _ := os.ReadFile(filepath.Join(dir, "checkpoints.log"))
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(string(ck)), "\n") {
		var cp struct {
			Segment int `json:"segment"`
		}
		json.Unmarshal([]byte(line), &cp)
		if fmt.Sprintf("%08d", cp.Segment) != no {
			keep = append(keep, line)
		}
	}
	os.WriteFile(filepath.Join(dir, "checkpoints.log"), []byte(strings.Join(keep, "\n")+"\n"), 0o600)
	if out, err := exec.Command(bin, "audit", "verify", "--audit-dir", dir).CombinedOutput(); err != nil {
		t.Logf("verify alone already sees the deletion (fine): %s", out)
	}
	var other *harness.Node
	for _, s := range survivors {
		if s != follower {
			other = s
		}
	}
	for _, anchors := range []string{filepath.Join(other.DataDir, "audit", "replicas", "anchors.json"), anchorsCLI} {
		out, err := exec.Command(bin, "audit", "verify", "--audit-dir", dir, "--anchors", anchors).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "segment-"+no+".log: missing: raft anchored") {
			t.Fatalf("audit verify --anchors %s after deleting %s: %v\n%s", anchors, filepath.Base(newest), err, out)
		}
		t.Logf("verify --anchors %s: %s", filepath.Base(filepath.Dir(anchors)), strings.TrimSpace(string(out)))
	}
}

// TestAuditStrictMinorityRefuses: a strict-mode node cut off from the
// majority (the two others paused) does not answer calls it cannot make
// durable: the call in flight is refused with an error, new calls get 503
// and /healthz is 503, and it serves again once the others are back.
func TestAuditStrictMinorityRefuses(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3, "--audit-mode", "strict", "--audit-strict-timeout", "2s")
	key := setupEcho(t, c, up)
	lone := c.Nodes[0]
	a := newAgent(t, lone, "echoer", key, "2025-11-25")
	if err := callEcho(a, "before"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes[1:] {
		n.Pause()
	}
	defer func() {
		for _, n := range c.Nodes[1:] {
			if n.Paused() {
				n.Resume()
			}
		}
	}()
	// Let raft notice (the leader lease is 500 ms): a process stopped a
	// moment ago may still have answered what it had in hand.
	time.Sleep(1500 * time.Millisecond)
	sent := time.Now()
	err := callEcho(a, "alone")
	if err == nil {
		var lines []string
		for _, l := range strings.Split(lone.Logs(), "\n") {
			if !strings.Contains(l, "level=DEBUG") {
				lines = append(lines, l)
			}
		}
		t.Fatalf("a minority node in strict mode answered a call (sent %s, answered after %v) it could not make durable:\n%s",
			sent.Format("15:04:05.000"), time.Since(sent), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	if !strings.Contains(err.Error(), "audit") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	t.Logf("call in flight: %v", err)
	err = callEcho(a, "alone again")
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "audit trail") {
		t.Errorf("a new call while audit is down: %v, want 503 naming the audit trail", err)
	}
	if code, body := lone.Healthz(); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz while audit is down: %d %s", code, body)
	}
	for _, n := range c.Nodes[1:] {
		n.Resume()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := callEcho(a, "back")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls after the majority came back: %v\n%s", err, lone.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitMemberHealthy waits until n serves and the leader reports it a
// healthy voter (WaitFormed wants lag 0, which a loaded cluster with audit
// batches in flight rarely shows at the moment it asks).
func waitMemberHealthy(t *testing.T, c *harness.Cluster, n *harness.Node, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.Leader(timeout).Status()
		if err == nil {
			if m := st.Member(n.ID()); m != nil && m.Voter && m.Healthy {
				if own, err := n.Status(); err == nil && own.Serving {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not a healthy voter after %v: %+v %v\n%s", n.ID(), timeout, st.Member(n.ID()), err, c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAuditAsyncLossOnNodeKill states the async mode's loss: agents call
// through every node of three (default --audit-mode async), one node is
// killed with SIGKILL under load. The survivors' replicas of its trail
// hold a prefix of its agents' acknowledged calls (no holes); the calls
// missing are those answered in the last group commit plus raft commit
// before the kill, which the test prints. Calls through the survivors all
// have their records on both survivors.
func TestAuditAsyncLossOnNodeKill(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3)
	const per = 2
	keys := setupAuditAgents(t, c, up, per)
	load := startAuditLoad(t, c, keys, per)
	time.Sleep(2 * time.Second)
	leader := c.Leader(10 * time.Second)
	var victim *harness.Node
	for _, n := range c.Nodes {
		if n != leader {
			victim = n
		}
	}
	killedAt := time.Now()
	victim.Kill()
	time.Sleep(2 * time.Second)
	load.Stop()
	time.Sleep(time.Second) // the survivors' last group commit

	lost, acked := 0, 0
	var oldest time.Duration
	for _, n := range c.Nodes {
		for i := range per {
			agent := fmt.Sprintf("a-%s-%d", n.ID(), i)
			calls := load.acked[agent]
			for _, s := range c.Nodes {
				if s == victim {
					continue
				}
				dir := filepath.Join(s.DataDir, "audit")
				if s != n {
					dir = filepath.Join(dir, "replicas", n.ID())
				}
				miss := missing(calls, recordTimes(t, dir, agent))
				if n != victim {
					if len(miss) > 0 {
						t.Errorf("%s: %d of %d calls through survivor %s have no record", dir, len(miss), len(calls), n.ID())
					}
					continue
				}
				// What survives is a prefix: every missing call comes after
				// every recorded one.
				for _, m := range miss {
					if m.send.Before(calls[len(calls)-len(miss)].send) {
						t.Errorf("%s: a call of %s answered %s has no record, but a later one has: a hole", dir, agent, m.recv.Format("15:04:05.000"))
					}
				}
				if s == leader {
					acked += len(calls)
					lost += len(miss)
					if len(miss) > 0 {
						oldest = max(oldest, killedAt.Sub(miss[0].recv))
					}
				}
			}
		}
	}
	if acked == 0 {
		t.Fatal("no call through the killed node succeeded: the load did not run")
	}
	t.Logf("async, kill -9 of %s under load: %d of %d calls it acknowledged have no record on the survivors; the oldest lost was answered %v before the kill (flush interval 100 ms + one raft commit)",
		victim.ID(), lost, acked, oldest.Round(time.Millisecond))
}
