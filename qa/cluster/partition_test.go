package cluster

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

const maxStale = 3 * time.Second

// followers returns the nodes other than the leader.
func followers(c *harness.Cluster, leader *harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range c.Nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// TestMinorityGoesStale is the third story: a node cut off from
// the majority (the two others SIGSTOPped) keeps serving agents from its
// last state only until --max-stale, then answers 503 (healthz, agent
// calls, status, metrics say why); when the others come back it catches up
// and serves again by itself.
func TestMinorityGoesStale(t *testing.T) {
	skipShort(t)
	for _, role := range []string{"follower", "leader"} {
		t.Run(role, func(t *testing.T) { minorityGoesStale(t, role) })
	}
}

// minorityGoesStale cuts one node (a follower, or the leader, which then
// steps down) off from the two others.
func minorityGoesStale(t *testing.T, role string) {
	up := startUpstream(t)
	c := harness.StartCluster(t, 3, "--max-stale", maxStale.String())
	key := setupEcho(t, c, up)
	leader := c.Leader(10 * time.Second)
	m := followers(c, leader)[0]
	if role == "leader" {
		m = leader
	}
	agent := newAgent(t, m, "echoer", key, "2025-11-25")
	if err := callEcho(agent, "before"); err != nil {
		t.Fatal(err)
	}

	var others []*harness.Node
	for _, n := range c.Nodes {
		if n != m {
			others = append(others, n)
		}
	}
	for _, n := range others {
		n.Pause()
	}
	pausedAt := time.Now()
	// At first the minority node still serves from its last state.
	if err := callEcho(agent, "just cut off"); err != nil {
		t.Errorf("call on %s right after it lost the others: %v", m.ID(), err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var code int
	var body string
	for {
		if code, body = m.Healthz(); code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s /healthz still %d %s 30s after losing the majority (max-stale %v)", m.ID(), code, body, maxStale)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s refused after %v (max-stale %v)", m.ID(), time.Since(pausedAt).Round(time.Millisecond), maxStale)
	if !strings.Contains(body, `"status":"stale"`) {
		t.Errorf("%s /healthz when stale: %d %s, want status stale", m.ID(), code, body)
	}
	err := callEcho(agent, "stale")
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "max-stale") {
		t.Errorf("agent call on the stale %s: %v, want HTTP 503 naming --max-stale", m.ID(), err)
	}
	if s := staleness(t, m); s <= maxStale.Seconds() {
		t.Errorf("portcullis_cluster_staleness_seconds on the stale %s = %v, want > %v", m.ID(), s, maxStale.Seconds())
	}

	for _, n := range others {
		n.Resume()
	}
	// It serves again by itself, the same session included.
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, body = m.Healthz()
		err = callEcho(agent, "healed")
		if code == http.StatusOK && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s 30s after the others came back: healthz %d %s, call %v\n%s", m.ID(), code, body, err, c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := staleness(t, m); s > maxStale.Seconds() {
		t.Errorf("portcullis_cluster_staleness_seconds on the healed %s = %v", m.ID(), s)
	}
	c.WaitFormed(30 * time.Second)
}

var stalenessRe = regexp.MustCompile(`(?m)^portcullis_cluster_staleness_seconds ([0-9.e+-]+)$`)

// staleness reads portcullis_cluster_staleness_seconds from n's /metrics.
func staleness(t *testing.T, n *harness.Node) float64 {
	t.Helper()
	code, b, err := n.AdminDo(http.MethodGet, "/metrics", "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d %v", n.ID(), code, err)
	}
	mm := stalenessRe.FindSubmatch(b)
	if mm == nil {
		t.Fatalf("/metrics on %s has no portcullis_cluster_staleness_seconds", n.ID())
	}
	v, err := strconv.ParseFloat(string(mm[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRevokedWhileAway: a key revoked and a persona deleted through the
// majority while a node was stopped are refused by that node once it is
// back, from its first answer on: it never honours them past the
// staleness bound.
func TestRevokedWhileAway(t *testing.T) {
	skipShort(t)
	up := startUpstream(t)
	c := harness.StartCluster(t, 3, "--max-stale", maxStale.String())
	key := setupEcho(t, c, up)
	leader := c.Leader(10 * time.Second)
	// A second persona (same skill) for an agent that will be deleted.
	leader.Apply(`apiVersion: portcullis/v1
kind: Persona
metadata: {name: doomed}
spec: {skills: [echo]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: doomed-bot}
spec: {persona: doomed}
`)
	revoked := leader.NewKey("echo-bot")
	doomedKey := leader.NewKey("doomed-bot")
	m := followers(c, leader)[0]
	for _, k := range []struct{ persona, key string }{{"echoer", revoked}, {"doomed", doomedKey}, {"echoer", key}} {
		waitAgentOK(t, m, k.persona, k.key)
	}
	revokedAgent := newAgent(t, m, "echoer", revoked, "2025-11-25")
	doomedAgent := newAgent(t, m, "doomed", doomedKey, "2025-11-25")

	m.Pause()
	id := strings.SplitN(strings.TrimPrefix(revoked, "pck_"), "_", 2)[0]
	leader.MustCLI("agent", "key", "revoke", "echo-bot", id)
	leader.MustCLI("delete", "agent", "doomed-bot")
	leader.MustCLI("delete", "persona", "doomed")
	revokedAt := time.Now()
	time.Sleep(maxStale + time.Second)
	m.Resume()
	resumedAt := time.Now()

	// From the moment it is back, every call with the revoked key or to
	// the deleted persona is refused; calls with the live key work again
	// once it has caught up.
	var honoured []string
	for time.Since(resumedAt) < 5*time.Second {
		for name, a := range map[string]*harness.RawClient{"revoked key": revokedAgent, "deleted persona": doomedAgent} {
			if err := callEcho(a, "still?"); err == nil {
				honoured = append(honoured, fmt.Sprintf("%s honoured %v after the revocation, %v after SIGCONT", name, time.Since(revokedAt).Round(time.Millisecond), time.Since(resumedAt).Round(time.Millisecond)))
			}
		}
	}
	if len(honoured) > 0 {
		t.Errorf("%s (max-stale %v) served what the majority had revoked or deleted, %d times; first: %s; last: %s", m.ID(), maxStale, len(honoured), honoured[0], honoured[len(honoured)-1])
	}
	waitAgentOK(t, m, "echoer", key)
	for name, a := range map[string]*harness.RawClient{"revoked key": revokedAgent, "deleted persona": doomedAgent} {
		err := callEcho(a, "caught up")
		if err == nil || strings.Contains(err.Error(), "HTTP 503") {
			t.Errorf("%s on %s after it caught up: %v, want refused (not 503)", name, m.ID(), err)
		}
	}
	fresh := harness.NewRawClient(endpoint(m, "echoer"), revoked, 1)
	if err := fresh.Initialize(); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("initialize with the revoked key on %s: %v, want HTTP 401", m.ID(), err)
	}
}
