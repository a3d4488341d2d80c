// Package harness runs the real portcullis binary for the qa suites: it
// builds it once, starts nodes on free loopback ports in temp dirs, drives
// the CLI exactly as a user would, and stops everything when a test ends.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// RepoRoot finds the module root from the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("harness: go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Binary builds ./cmd/portcullis once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portcullis-qa-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "portcullis")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/portcullis")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeAddr returns a loopback address with a port that was free just now
// and that it has not returned before in this process (the kernel may
// hand out a just-closed port again, and one node's two listeners on the
// same port would not start).
func FreeAddr(t testing.TB) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		givenMu.Lock()
		dup := given[addr]
		given[addr] = true
		givenMu.Unlock()
		if !dup {
			return addr
		}
	}
}

var (
	givenMu sync.Mutex
	given   = map[string]bool{}
)

// Node is one running appliance process.
type Node struct {
	Bin         string
	DataDir     string
	GatewayAddr string
	AdminAddr   string
	RaftAddr    string // node-to-node port; StartNode picks a free one
	TokenFile   string
	Args        []string // extra server flags

	t    testing.TB
	mu   sync.Mutex // guards cmd, done (and logs' creation)
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	// paused is set while the process is SIGSTOPped (Pause).
	paused atomic.Bool
}

// GatewayURL is the base URL agents use.
func (n *Node) GatewayURL() string { return "http://" + n.GatewayAddr }

// AdminURL is the base URL of the admin API.
func (n *Node) AdminURL() string { return "http://" + n.AdminAddr }

// Logs returns what the node has written to stdout and stderr so far.
func (n *Node) Logs() string { return n.logs.String() }

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

// StartNode starts a dev-mode node in a fresh data dir and waits until both
// listeners answer /healthz. The node is stopped when the test ends.
func StartNode(t testing.TB, extra ...string) *Node {
	t.Helper()
	n := NewNode(t, extra...)
	n.Start()
	return n
}

// Start (re)starts the node process with the same data dir and addresses
// and waits until both listeners answer /healthz with 200; it fails the
// test if the node exits or is not healthy within 30s.
func (n *Node) Start() {
	n.t.Helper()
	if err := n.StartErr(30 * time.Second); err != nil {
		n.t.Fatalf("start node: %v", err)
	}
}

// Stop ends the node gracefully (SIGTERM, then SIGKILL after 10s).
func (n *Node) Stop() {
	cmd, done := n.proc()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused node cannot act on SIGINT
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill ends the node with SIGKILL, as a crash would.
func (n *Node) Kill() {
	if cmd, done := n.proc(); cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// PID is the node's process id.
func (n *Node) PID() int { cmd, _ := n.proc(); return cmd.Process.Pid }

// CLI runs the binary with args plus --server and --token-file, returning
// stdout and stderr separately.
func (n *Node) CLI(args ...string) (stdout, stderr string, err error) {
	args = append(args, "--server", n.AdminURL(), "--token-file", n.TokenFile)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// MustCLI is CLI that fails the test on error.
func (n *Node) MustCLI(args ...string) string {
	n.t.Helper()
	out, errOut, err := n.CLI(args...)
	if err != nil {
		n.t.Fatalf("portcullis %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// Apply writes yaml to a file in the data dir's parent and applies it.
func (n *Node) Apply(yaml string) string {
	n.t.Helper()
	f := filepath.Join(n.t.TempDir(), "apply.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		n.t.Fatal(err)
	}
	return n.MustCLI("apply", "-f", f)
}

// NewKey creates an API key for agent and returns it.
func (n *Node) NewKey(agent string, extra ...string) string {
	n.t.Helper()
	key := strings.TrimSpace(n.MustCLI(append([]string{"agent", "key", "create", agent}, extra...)...))
	if key == "" || strings.ContainsAny(key, " \n") {
		n.t.Fatalf("agent key create printed %q, want just the key", key)
	}
	return key
}

// RSS returns the node's current and peak resident set size in bytes.
func (n *Node) RSS() (cur, peak int64) { return ProcRSS(n.PID()) }

// ProcRSS reads VmRSS and VmHWM of a process (Linux).
func ProcRSS(pid int) (cur, peak int64) {
	if runtime.GOOS != "linux" {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v * 1024
		case "VmHWM:":
			peak = v * 1024
		}
	}
	return cur, peak
}

// CPU is the user+system CPU time the node's process has used so far.
func (n *Node) CPU() time.Duration { return ProcCPU(n.PID()) }

// ProcCPU reads a process's user+system CPU time from /proc/PID/stat
// (Linux; 0 elsewhere or when the process is gone).
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after its ")" are
	// fixed: utime and stime are the 12th and 13th of them (clock ticks).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on every Linux ABI Go supports
	return time.Duration(ut+st) * time.Second / ticks
}
