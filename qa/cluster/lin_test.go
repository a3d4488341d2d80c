package cluster

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// linInput is one operation on the register (Upstream lin's url).
type linInput struct {
	write bool
	value string // written value
}

// registerModel is a single register: writes set it, reads return it.
var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(linInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(linInput)
		if in.write {
			return "write " + in.value
		}
		return fmt.Sprintf("read -> %v", output)
	},
	DescribeState: func(state any) string { return state.(string) },
}

// linHistory records operations from several clients.
type linHistory struct {
	mu   sync.Mutex
	base time.Time
	ops  []porcupine.Operation
	// acked and unknown count writes by outcome.
	acked, unknown, reads int
	why                   map[string]int // unknown outcomes by node, status and message
}

func (h *linHistory) now() int64 { return time.Since(h.base).Nanoseconds() }

func (h *linHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// neverSent reports whether err says the request never reached the node
// (so the write cannot have happened).
func neverSent(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// linTarget is a node as a linearizability client sees it.
type linTarget struct {
	name string
	// apply applies a YAML document through the node's admin API; read
	// reads an Upstream's url through it.
	apply func(yaml string) (int, string, error)
	read  func(upstream string) (string, int, error)
	logs  func() string
}

// harnessTargets are c's live nodes, each through a 3 s client.
func harnessTargets(c *harness.Cluster) func() []linTarget {
	client := &http.Client{Timeout: 3 * time.Second}
	return func() []linTarget {
		var out []linTarget
		for _, n := range c.Live() {
			out = append(out, linTarget{
				name:  n.ID(),
				apply: func(yaml string) (int, string, error) { return applyHTTP(n, client, yaml) },
				read:  func(name string) (string, int, error) { return upstreamURL(n, client, name) },
				logs:  n.Logs,
			})
		}
		return out
	}
}

// linClient runs random reads and writes of Upstream lin through random
// targets until stop.
func (h *linHistory) linClient(t *testing.T, id int, targets func() []linTarget, stop chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		live := targets()
		if len(live) == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n := live[rand.IntN(len(live))]
		if rand.IntN(2) == 0 {
			v := fmt.Sprintf("http://127.0.0.1:9/c%d-%d", id, seq)
			call := h.now()
			code, body, err := n.apply(upstreamYAML("lin", v))
			ret := h.now()
			switch {
			case err == nil && code == http.StatusOK:
				h.add(porcupine.Operation{ClientId: id, Input: linInput{true, v}, Call: call, Output: "", Return: ret, Metadata: n.name})
				h.mu.Lock()
				h.acked++
				h.mu.Unlock()
			case err != nil && neverSent(err):
			case err == nil && code < 500:
				t.Errorf("write through %s: %d %s", n.name, code, body)
			default:
				if code == http.StatusInternalServerError {
					t.Errorf("write through %s: %d %s (want 503: a write in flight when the leader dies has an unknown outcome, and the user should be told to retry, not \"internal error\"); the node logged:\n%s", n.name, code, body, errorLines(n.logs(), 3))
				}
				// Timed out or failed after it was sent: it may or may not
				// have happened, at any time from now on.
				h.add(porcupine.Operation{ClientId: id, Input: linInput{true, v}, Call: call, Output: "", Return: math.MaxInt64, Metadata: n.name})
				h.mu.Lock()
				h.unknown++
				if h.why == nil {
					h.why = map[string]int{}
				}
				msg := body
				if err != nil {
					msg = err.Error()
				}
				h.why[fmt.Sprintf("%s %d %.90s", n.name, code, msg)]++
				h.mu.Unlock()
				time.Sleep(20 * time.Millisecond) // no hot loop while the cluster elects
			}
			continue
		}
		call := h.now()
		v, code, err := n.read("lin")
		ret := h.now()
		if err == nil && code == http.StatusOK {
			h.add(porcupine.Operation{ClientId: id, Input: linInput{}, Call: call, Output: v, Return: ret, Metadata: n.name})
			h.mu.Lock()
			h.reads++
			h.mu.Unlock()
		}
	}
}

// TestLinearizable records admin writes and reads of one object through
// random nodes, from several clients at once, while the leader is killed
// and restarted, and checks the history with porcupine against a register:
// every read returns the latest write, whichever node answers. Then every
// node must read a value no acknowledged write has superseded.
func TestLinearizable(t *testing.T) {
	skipShort(t)
	c := harness.StartCluster(t, 3)
	h := &linHistory{base: time.Now()}
	v0 := "http://127.0.0.1:9/initial"
	call := h.now()
	c.Nodes[0].Apply(upstreamYAML("lin", v0))
	h.add(porcupine.Operation{ClientId: 0, Input: linInput{true, v0}, Call: call, Output: "", Return: h.now()})

	const clients = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 1; i <= clients; i++ {
		wg.Add(1)
		go h.linClient(t, i, harnessTargets(c), stop, &wg)
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			close(stop)
			wg.Wait()
			stopped = true
		}
	}
	t.Cleanup(stopClients)

	time.Sleep(2 * time.Second)
	leader := c.Leader(10 * time.Second)
	leader.Kill()
	t.Logf("killed the leader %s", leader.ID())
	c.Leader(30 * time.Second)
	time.Sleep(3 * time.Second)
	leader.Start()
	t.Logf("restarted %s", leader.ID())
	time.Sleep(2 * time.Second)
	stopClients()
	c.WaitFormed(60 * time.Second)

	// Final reads through every node, after everything else.
	finals := map[string]string{}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, n := range c.Nodes {
		call := h.now()
		v, code, err := upstreamURL(n, client, "lin")
		if err != nil || code != http.StatusOK {
			t.Fatalf("final read through %s: %d %v", n.ID(), code, err)
		}
		h.add(porcupine.Operation{ClientId: clients + 1, Input: linInput{}, Call: call, Output: v, Return: h.now()})
		finals[n.ID()] = v
	}
	h.check(t, finals)
}

// check logs the history's figures and fails t unless porcupine finds it
// linearizable and no final read (finals: node → value) returns a value
// an acknowledged write replaced.
func (h *linHistory) check(t *testing.T, finals map[string]string) {
	t.Helper()
	t.Logf("history: %d operations: %d acknowledged writes, %d writes of unknown outcome, %d reads", len(h.ops), h.acked+1, h.unknown, h.reads)
	for w, n := range h.why {
		t.Logf("%d writes of unknown outcome: %s", n, w)
	}
	if h.acked < 20 || h.reads < 20 {
		t.Fatalf("too few operations to mean anything: %d acknowledged writes, %d reads", h.acked, h.reads)
	}

	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, 2*time.Minute)
	if res != porcupine.Ok {
		f := filepath.Join(os.TempDir(), fmt.Sprintf("portcullis-linearizability-%d.html", time.Now().Unix()))
		if err := porcupine.VisualizePath(registerModel, info, f); err == nil {
			t.Logf("visualization: %s", f)
		}
		t.Errorf("linearizability check: %s (want Ok)", res)
		for _, s := range staleReads(h.ops, 5) {
			t.Log(s)
		}
		t.Log(stuckAt(h.ops, info))
	}

	// No acknowledged write is lost: no node reads a value that an
	// acknowledged write superseded (one invoked after it returned).
	superseded := map[string]bool{}
	for _, w := range h.ops {
		in := w.Input.(linInput)
		if !in.write || w.Return == math.MaxInt64 {
			continue
		}
		for _, w2 := range h.ops {
			if w2.Input.(linInput).write && w2.Return != math.MaxInt64 && w2.Call > w.Return {
				superseded[in.value] = true
				break
			}
		}
	}
	for id, v := range finals {
		if superseded[v] {
			t.Errorf("%s reads %q at the end, a value an acknowledged write replaced", id, v)
		}
	}
}

// staleReads explains a violation in its simplest forms: a read that
// returned a value although another acknowledged write had been invoked
// after that value's write returned and had returned before the read was
// invoked; or a read older than one that returned before it began.
func staleReads(ops []porcupine.Operation, max int) []string {
	writes := map[string]porcupine.Operation{}
	for _, o := range ops {
		if in := o.Input.(linInput); in.write {
			writes[in.value] = o
		}
	}
	var out []string
	for _, r := range ops {
		if r.Input.(linInput).write {
			continue
		}
		w, ok := writes[r.Output.(string)]
		if !ok {
			out = append(out, fmt.Sprintf("read through %v returned %q, which no write wrote", r.Metadata, r.Output))
			continue
		}
		for _, w2 := range ops {
			in2 := w2.Input.(linInput)
			if in2.write && w2.Return != math.MaxInt64 && w2.Call > w.Return && w2.Return < r.Call {
				out = append(out, fmt.Sprintf("stale read: through %v at +%v read %q (written through %v, acknowledged at +%v), but %q was acknowledged through %v at +%v, %v before the read began",
					r.Metadata, time.Duration(r.Call), r.Output, w.Metadata, time.Duration(w.Return), in2.value, w2.Metadata, time.Duration(w2.Return), time.Duration(r.Call-w2.Return)))
				break
			}
		}
		if len(out) >= max {
			return out
		}
	}
	// A read that went back in time: it began after another read had
	// returned a value whose write was invoked after this read's value's
	// write had returned.
	for _, r1 := range ops {
		if r1.Input.(linInput).write {
			continue
		}
		v := writes[r1.Output.(string)]
		for _, r2 := range ops {
			if r2.Input.(linInput).write || r2.Call <= r1.Return {
				continue
			}
			u, ok := writes[r2.Output.(string)]
			if ok && u.Return < v.Call {
				out = append(out, fmt.Sprintf("read back in time: through %v at +%v read %q, but a read through %v that ended %v earlier (+%v) had read the newer %q (its write invoked at +%v, after %q's was acknowledged at +%v)",
					r2.Metadata, time.Duration(r2.Call), r2.Output, r1.Metadata, time.Duration(r2.Call-r1.Return), time.Duration(r1.Return), r1.Output, time.Duration(v.Call), r2.Output, time.Duration(u.Return)))
				break
			}
		}
		if len(out) >= max {
			break
		}
	}
	return out
}

// errorLines returns the last n lines of logs at level ERROR.
func errorLines(logs string, n int) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

// stuckAt describes where the longest linearization porcupine found
// stops: the state it reached and the earliest operation it could not
// place.
func stuckAt(ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
	}
	type key struct {
		client int
		call   int64
	}
	in := map[key]bool{}
	state := ""
	var lastOps []string
	for _, o := range longest {
		in[key{o.ClientId, o.Call}] = true
		if i := o.Input.(linInput); i.write {
			state = i.value
		}
		lastOps = append(lastOps, describe(o))
		if len(lastOps) > 3 {
			lastOps = lastOps[1:]
		}
	}
	var stuck *porcupine.Operation
	for i := range ops {
		o := &ops[i]
		if !in[key{o.ClientId, o.Call}] && (stuck == nil || o.Call < stuck.Call) {
			stuck = o
		}
	}
	if stuck == nil {
		return "no unplaced operation"
	}
	return fmt.Sprintf("longest linearization: %d of %d operations, register %q after: %s; earliest operation it cannot place: %s",
		len(longest), len(ops), state, strings.Join(lastOps, "; "), describe(*stuck))
}

func describe(o porcupine.Operation) string {
	ret := "never (outcome unknown)"
	if o.Return != math.MaxInt64 {
		ret = "+" + time.Duration(o.Return).String()
	}
	if i := o.Input.(linInput); i.write {
		return fmt.Sprintf("client %d write %q through %v [+%v, %s]", o.ClientId, i.value, o.Metadata, time.Duration(o.Call), ret)
	}
	return fmt.Sprintf("client %d read %q through %v [+%v, %s]", o.ClientId, o.Output, o.Metadata, time.Duration(o.Call), ret)
}
