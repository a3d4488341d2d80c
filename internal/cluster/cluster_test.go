package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// kvFSM is a tiny deterministic key/value state machine for tests. Commands
// are JSON {"k":..., "v":...}; a command with k == "" fails.
type kvFSM struct {
	mu       sync.Mutex
	data     map[string]string
	restores int
}

type kvCmd struct {
	K, V string
}

func newKV() *kvFSM { return &kvFSM{data: map[string]string{}} }

func (f *kvFSM) Apply(l *raft.Log) any {
	var c kvCmd
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if c.K == "" {
		return errors.New("empty key")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[c.K] = c.V
	return len(f.data)
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.data)
	return kvSnap(b), err
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	var m map[string]string
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = m
	f.restores++
	return nil
}

func (f *kvFSM) get(k string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data[k]
}

func (f *kvFSM) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.data)
}

type kvSnap []byte

func (s kvSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (kvSnap) Release() {}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func startNode(t testing.TB, dir string, fsm raft.FSM, bootstrap bool, mut ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		NodeID:    "node-" + filepath.Base(dir),
		DataDir:   dir,
		BindAddr:  "127.0.0.1:0",
		FSM:       fsm,
		Logger:    testLogger(t),
		Bootstrap: bootstrap,
		// Fast elections keep the tests short.
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
	}
	for _, m := range mut {
		m(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func ready(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

func apply(t testing.TB, n *Node, k, v string) any {
	t.Helper()
	b, _ := json.Marshal(kvCmd{K: k, V: v})
	resp, err := n.Apply(context.Background(), b)
	if err != nil {
		t.Fatalf("Apply(%s=%s): %v", k, v, err)
	}
	return resp
}

func TestRestartReplaysLog(t *testing.T) {
	dir := t.TempDir()
	fsm := newKV()
	n := startNode(t, dir, fsm, true)
	ready(t, n)
	for i := range 5 {
		if got := apply(t, n, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)); got != i+1 {
			t.Fatalf("apply response = %v, want %d", got, i+1)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	fsm2 := newKV()
	n2 := startNode(t, dir, fsm2, true) // Bootstrap again must be a no-op.
	ready(t, n2)
	if fsm2.len() != 5 || fsm2.get("k3") != "v3" {
		t.Fatalf("after restart the state has %d keys (k3=%q), want 5 (k3=v3)", fsm2.len(), fsm2.get("k3"))
	}
	if fsm2.restores != 0 {
		t.Fatalf("restored from a snapshot although none was taken")
	}
	// The restarted node still accepts writes.
	apply(t, n2, "after", "restart")
	if fsm2.get("after") != "restart" {
		t.Fatal("write after restart not applied")
	}
}

func TestRestartRestoresCompressedSnapshot(t *testing.T) {
	dir := t.TempDir()
	fsm := newKV()
	n := startNode(t, dir, fsm, true)
	ready(t, n)
	big := strings.Repeat("compressible ", 2000)
	apply(t, n, "big", big)
	apply(t, n, "a", "1")
	if err := n.Snapshot(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	apply(t, n, "b", "2") // after the snapshot: must come back from the log
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The snapshot on disk is a zstd frame, much smaller than the state.
	states, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(states) != 1 {
		t.Fatalf("found %d snapshots on disk, want 1", len(states))
	}
	raw, err := os.ReadFile(states[0])
	if err != nil {
		t.Fatal(err)
	}
	if !isZstd(raw) {
		t.Fatalf("snapshot on disk is not zstd-compressed (starts %x)", raw[:min(8, len(raw))])
	}
	if len(raw) > len(big)/10 {
		t.Fatalf("snapshot is %d bytes for %d bytes of state: not compressed", len(raw), len(big))
	}

	fsm2 := newKV()
	n2 := startNode(t, dir, fsm2, false)
	ready(t, n2)
	if fsm2.restores != 1 {
		t.Fatalf("FSM restored %d times, want 1 (from the snapshot)", fsm2.restores)
	}
	if fsm2.get("big") != big || fsm2.get("a") != "1" || fsm2.get("b") != "2" {
		t.Fatalf("state after snapshot restore + log replay is wrong: %d keys", fsm2.len())
	}
}

func TestApplyReturnsFSMError(t *testing.T) {
	n := startNode(t, t.TempDir(), newKV(), true)
	ready(t, n)
	b, _ := json.Marshal(kvCmd{K: "", V: "x"})
	_, err := n.Apply(context.Background(), b)
	if err == nil || err.Error() != "empty key" {
		t.Fatalf("Apply of a bad command: err = %v, want the FSM's error", err)
	}
}

func TestApplyOnNonLeader(t *testing.T) {
	n := startNode(t, t.TempDir(), newKV(), false) // never bootstrapped: no leader
	_, err := n.Apply(context.Background(), []byte(`{"K":"a"}`))
	var nle *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
		t.Fatalf("Apply on a node without a cluster: err = %v, want ErrNotLeader", err)
	}
	if nle.LeaderID != "" {
		t.Fatalf("leader = %q, want none", nle.LeaderID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := n.WaitReady(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("WaitReady without a leader: %v, want ErrNoLeader", err)
	}
}

// TestJoinVoter checks the join hook: a second node added as a voter
// receives the replicated state, and a write on it names the leader.
func TestJoinVoter(t *testing.T) {
	fsm1, fsm2 := newKV(), newKV()
	n1 := startNode(t, filepath.Join(t.TempDir(), "1"), fsm1, true)
	ready(t, n1)
	apply(t, n1, "before", "join")
	n2 := startNode(t, filepath.Join(t.TempDir(), "2"), fsm2, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.AddVoter(ctx, n2.cfg.NodeID, n2.Addr()); err != nil {
		t.Fatalf("AddVoter: %v", err)
	}
	apply(t, n1, "after", "join")
	deadline := time.Now().Add(10 * time.Second)
	for fsm2.get("after") != "join" || fsm2.get("before") != "join" {
		if time.Now().After(deadline) {
			t.Fatalf("follower did not receive the replicated state: %d keys", fsm2.len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := n2.Apply(ctx, []byte(`{"K":"x","V":"y"}`))
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.LeaderID != n1.cfg.NodeID || nle.LeaderAddr != n1.Addr() {
		t.Fatalf("Apply on follower: %v, want NotLeaderError naming %s", err, n1.cfg.NodeID)
	}
	st := n1.Status()
	if st.State != "Leader" || len(st.Members) != 2 {
		t.Fatalf("status = %+v, want leader with 2 members", st)
	}
	if err := n1.RemoveServer(ctx, n2.cfg.NodeID); err != nil {
		t.Fatalf("RemoveServer: %v", err)
	}
	if got := len(n1.Status().Members); got != 1 {
		t.Fatalf("members after remove = %d, want 1", got)
	}
}

// forwardTo stands in for the mutual-TLS RPC to the leader.
type forwardTo struct {
	leader *Node
	calls  int
}

func (f *forwardTo) Forward(ctx context.Context, leaderID, leaderAddr string, cmd []byte) (any, error) {
	f.calls++
	if leaderID != f.leader.cfg.NodeID || leaderAddr != f.leader.Addr() {
		return nil, fmt.Errorf("forwarded to %s at %s, not the leader", leaderID, leaderAddr)
	}
	return f.leader.Apply(ctx, cmd)
}

// TestFollowerForwardsWrites checks the forwarding hook: a write on a
// follower goes to the leader and comes back replicated.
func TestFollowerForwardsWrites(t *testing.T) {
	fsm1, fsm2 := newKV(), newKV()
	n1 := startNode(t, filepath.Join(t.TempDir(), "1"), fsm1, true)
	ready(t, n1)
	fw := &forwardTo{leader: n1}
	n2 := startNode(t, filepath.Join(t.TempDir(), "2"), fsm2, false, func(c *Config) { c.Forwarder = fw })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.AddVoter(ctx, n2.cfg.NodeID, n2.Addr()); err != nil {
		t.Fatal(err)
	}
	// Wait until the follower knows its leader.
	for n2.Status().LeaderID == "" {
		if ctx.Err() != nil {
			t.Fatal("follower never learned the leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp := apply(t, n2, "via", "follower")
	if fw.calls != 1 || resp != 1 {
		t.Fatalf("forwarder called %d times, response %v", fw.calls, resp)
	}
	for fsm2.get("via") != "follower" {
		if ctx.Err() != nil {
			t.Fatal("the forwarded write did not replicate back to the follower")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigValidation(t *testing.T) {
	base := Config{NodeID: "n", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", FSM: newKV()}
	for name, mut := range map[string]func(*Config){
		"no node id":  func(c *Config) { c.NodeID = "" },
		"no data dir": func(c *Config) { c.DataDir = "" },
		"no fsm":      func(c *Config) { c.FSM = nil },
		"no address":  func(c *Config) { c.BindAddr = "" },
		"unspecified": func(c *Config) { c.BindAddr = "0.0.0.0:0" },
		"bad address": func(c *Config) { c.BindAddr = "not an address" },
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			mut(&c)
			n, err := New(c)
			if err == nil {
				n.Close()
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	n := startNode(t, t.TempDir(), newKV(), true)
	ready(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(context.Background(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v, want ErrClosed", err)
	}
}

// TestRaftLogsReachSlog checks that raft's hclog output arrives in slog.
func TestRaftLogsReachSlog(t *testing.T) {
	var buf syncBuffer
	n, err := New(Config{
		NodeID: "logger", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", FSM: newKV(), Bootstrap: true,
		Logger:           slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ready(t, n)
	out := buf.String()
	if !strings.Contains(out, "from=raft") || !strings.Contains(out, "entering leader state") {
		t.Fatalf("raft's log lines did not reach slog:\n%s", out)
	}
	// hclog.Fmt values are rendered, not printed as a format string.
	if strings.Contains(out, "%+v") || !strings.Contains(out, "Suffrage:Voter") {
		t.Fatalf("raft's log lines did not reach slog:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func BenchmarkApply(b *testing.B) {
	n := startNode(b, b.TempDir(), newKV(), true)
	ready(b, n)
	cmd, _ := json.Marshal(kvCmd{K: "k", V: strings.Repeat("v", 256)})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := n.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/apply")
}

// TestSecondNodeOnSameDataDirFails checks that opening a data dir that a
// running node holds fails with a clear error instead of waiting forever
// for the raft log's file lock.
func TestSecondNodeOnSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	startNode(t, dir, newKV(), true)
	done := make(chan error, 1)
	go func() {
		n, err := New(Config{NodeID: "second", DataDir: dir, BindAddr: "127.0.0.1:0", FSM: newKV(), Logger: testLogger(t)})
		if err == nil {
			n.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("second New on the same data dir: %v, want ErrDataDirInUse naming the cause", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("second New on the same data dir still waiting after 15s")
	}
}
