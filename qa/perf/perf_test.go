package perf

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

var (
	full  = flag.Bool("perf", false, "run the full-length measurement (make perf); otherwise a short smoke run")
	rates = flag.String("perf.rates", "500,2000", "calls per second of the fixed-rate phases, comma-separated")
	conc  = flag.Int("perf.conc", 32, "concurrent callers for the throughput phase")
)

type echoIn = harness.EchoIn
type echoOut = harness.EchoOut

func startUpstream(t *testing.T) string { return harness.StartEchoUpstream(t, "perf-upstream") }

type result struct {
	name      string
	calls     int
	errors    int
	lat       []time.Duration
	perSecond float64
	firstErr  string
}

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

// fixedRate issues calls at rate per second for d (open loop: latency counts
// from the scheduled start, so a stalled server cannot hide its queue).
func fixedRate(c *harness.RawClient, name, tool string, rate int, d time.Duration) *result {
	res := &result{name: name}
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := c.CallTool(tool, map[string]any{"text": "hello"})
			lat[i] = time.Since(at)
			if err == nil && r.Error != nil {
				err = fmt.Errorf("%d %s", r.Error.Code, r.Error.Message)
			}
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}(i)
	}
	wg.Wait()
	slices.Sort(lat)
	res.calls, res.errors, res.lat = n, int(errs.Load()), lat
	if v := firstErr.Load(); v != nil {
		res.firstErr = v.(string)
	}
	res.perSecond = float64(n) / time.Since(start).Seconds()
	return res
}

// throughput runs conc closed-loop callers for d and counts completions.
func throughput(c *harness.RawClient, name, tool string, conc int, d time.Duration) *result {
	res := &result{name: name}
	var calls, errs atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				r, err := c.CallTool(tool, map[string]any{"text": "hello"})
				calls.Add(1)
				if err != nil || r.Error != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.calls, res.errors = int(calls.Load()), int(errs.Load())
	res.perSecond = float64(res.calls) / time.Since(start).Seconds()
	return res
}

const config = `
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: bench}
spec: {url: "%s"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: echo}
spec:
  description: Echo text
  tools: [{tool: bench/echo, args: {text: {maxLength: 100}}}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: bencher}
spec: {skills: [echo]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: bench-bot}
spec: {persona: bencher}
`

// TestGatewayOverhead prints the gateway's added latency, its throughput
// relative to the upstream called directly, and its memory under load. It
// fails only if calls fail.
func TestGatewayOverhead(t *testing.T) {
	fixedDur, tputDur := 2*time.Second, 2*time.Second
	if *full {
		fixedDur, tputDur = 10*time.Second, 5*time.Second
	}
	up := startUpstream(t)
	node := harness.StartNode(t)
	node.Apply(fmt.Sprintf(config, up))
	key := node.NewKey("bench-bot")

	direct := harness.NewRawClient(up, "", *conc)
	gw := harness.NewRawClient(node.GatewayURL()+"/p/bencher/mcp", key, *conc)
	// The gateway exposes the upstream's tool with the upstream's name as prefix.
	targets := []struct {
		c    *harness.RawClient
		tool string
	}{{direct, "echo"}, {gw, "bench_echo"}}
	for _, tg := range targets {
		if err := tg.c.Initialize(); err != nil {
			t.Fatalf("initialize %s: %v\n%s", tg.c.URL, err, node.Logs())
		}
		r, err := tg.c.CallTool(tg.tool, map[string]any{"text": "warm"})
		if err != nil || r.Error != nil {
			t.Fatalf("first call via %s: %v %+v\n%s", tg.c.URL, err, r, node.Logs())
		}
	}

	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if cur, _ := node.RSS(); cur > peak.Load() {
					peak.Store(cur)
				}
			}
		}
	}()
	idleRSS, _ := node.RSS()

	type phase struct {
		rate            int
		direct, gateway *result
		cpuPerCall      time.Duration // appliance CPU time per gateway call
	}
	var phases []phase
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			t.Fatalf("-perf.rates: %q is not a positive number", f)
		}
		ph := phase{rate: r, direct: fixedRate(direct, "direct", "echo", r, fixedDur)}
		cpu0 := node.CPU()
		ph.gateway = fixedRate(gw, "gateway", "bench_echo", r, fixedDur)
		ph.cpuPerCall = (node.CPU() - cpu0) / time.Duration(max(ph.gateway.calls, 1))
		phases = append(phases, ph)
	}
	cpu0 := node.CPU()
	tput := []*result{
		throughput(direct, "direct", "echo", *conc, tputDur),
		throughput(gw, "gateway", "bench_echo", *conc, tputDur),
	}
	tputCPU := (node.CPU() - cpu0) / time.Duration(max(tput[1].calls, 1))
	close(stop)
	_, hwm := node.RSS()

	var b strings.Builder
	var rows []*result
	for _, ph := range phases {
		rows = append(rows, ph.direct, ph.gateway)
		fmt.Fprintf(&b, "\ntools/call, fixed rate %d/s for %v (open loop), same client, upstream = go-sdk streamable HTTP\n", ph.rate, fixedDur)
		fmt.Fprintf(&b, "%-8s %7s %6s %9s %9s %9s %9s\n", "target", "calls", "errors", "p50", "p90", "p99", "max")
		for _, r := range []*result{ph.direct, ph.gateway} {
			fmt.Fprintf(&b, "%-8s %7d %6d %9v %9v %9v %9v\n", r.name, r.calls, r.errors, r.pct(.5).Round(time.Microsecond), r.pct(.9).Round(time.Microsecond), r.pct(.99).Round(time.Microsecond), r.pct(1).Round(time.Microsecond))
		}
		fmt.Fprintf(&b, "added by the gateway: p50 %v, p99 %v; appliance CPU %v per call\n", (ph.gateway.pct(.5) - ph.direct.pct(.5)).Round(time.Microsecond), (ph.gateway.pct(.99) - ph.direct.pct(.99)).Round(time.Microsecond), ph.cpuPerCall.Round(time.Microsecond))
	}
	fmt.Fprintf(&b, "max throughput, %d closed-loop callers for %v: direct %.0f calls/s, gateway %.0f calls/s (%.0f%% of direct), appliance CPU %v per call\n", *conc, tputDur, tput[0].perSecond, tput[1].perSecond, 100*tput[1].perSecond/tput[0].perSecond, tputCPU.Round(time.Microsecond))
	fmt.Fprintf(&b, "appliance RSS: idle %.1f MiB, peak under load %.1f MiB (VmHWM %.1f MiB)\n", mib(idleRSS), mib(peak.Load()), mib(hwm))
	t.Log(b.String())
	if *full {
		os.MkdirAll("../out", 0o755)
		os.WriteFile("../out/perf.txt", []byte(b.String()), 0o644)
	}
	for _, r := range append(rows, tput...) {
		if r.errors > 0 {
			t.Errorf("%s: %d of %d calls failed; first: %s", r.name, r.errors, r.calls, r.firstErr)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
