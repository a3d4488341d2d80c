package behavior

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// BenchmarkStage measures Judge+Observe (what the behaviour stage adds to
// one governed tools/call) with the read-then-email rule, a session-scoped
// rule with a CEL condition, and the default protections, over 10, 1,000
// and 10,000 active agents each with its own session. It prints p50/p99 of one call
// and never asserts them.
//
//	go test ./internal/behavior -run '^$' -bench Stage -benchtime 100000x
func BenchmarkStage(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchStage(b, n) })
	}
}

func benchStage(b *testing.B, sessions int) {
	// The rule's count is out of reach so that it is evaluated on every
	// email and never fires (a refusal would end the benchmark).
	f := newFSM(b, world+strings.Replace(ruleYAML("read-then-email", "block", ""), "count: 200", "count: 1000000", 1)+
		"---\napiVersion: portcullis/v1\nkind: SequenceRule\nmetadata: {name: mass-mail}\nspec:\n  scope: session\n  after: {tools: [\"mail/*\"], count: 50, within: 1h}\n  then: {tools: [\"mail/send\"]}\n  condition: \"count > 50 && call.persona == 'sales'\"\n  action: stop\n")
	e, err := New(Config{State: f, Propose: f.propose})
	if err != nil {
		b.Fatal(err)
	}
	res := json.RawMessage(`{"content":[{"type":"text","text":"ticket T-1234: printer on fire, see /var/log/cups/error_log"}]}`)
	calls := make([]*gateway.BehaviourCall, sessions)
	for i := range calls {
		calls[i] = read(fmt.Sprintf("agent-%d", i), i)
	}
	d := &gateway.Decision{Decision: gateway.Allow}
	for _, c := range calls { // every session active
		e.Observe(c, d, res, false)
	}
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		c := calls[i%sessions]
		if i%20 == 0 {
			c = email(c.Agent)
		}
		i++
		t0 := time.Now()
		v := e.Judge(context.Background(), c)
		e.Observe(c, d, res, false)
		lat = append(lat, time.Since(t0))
		if v.Deny {
			b.Fatalf("refused: %s", v.Reason)
		}
	}
	slices.Sort(lat)
	if len(lat) > 100 {
		b.Logf("behaviour stage, %d active sessions: p50 %s, p99 %s per call (Judge+Observe)", sessions, lat[len(lat)/2], lat[len(lat)*99/100])
	}
}

// BenchmarkMemoryPerSession prints the heap one active agent+session costs
// (rules' windows, the runaway ring, the result token table), from 10 to
// 10,000 sessions.
//
//	go test ./internal/behavior -run '^$' -bench MemoryPerSession -benchtime 1x
func BenchmarkMemoryPerSession(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				f := newFSM(b, world+ruleYAML("read-then-email", "block", ""))
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				e, _ := New(Config{State: f, Propose: f.propose})
				res := json.RawMessage(`{"content":[{"type":"text","text":"ticket T-1234 see /var/log/x1"}]}`)
				d := &gateway.Decision{Decision: gateway.Allow}
				for i := range n {
					c := read(fmt.Sprintf("agent-%d", i), i)
					for j := range 20 {
						c.Args = map[string]any{"id": fmt.Sprint(j)}
						e.Observe(c, d, res, j%7 == 0)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/session")
				runtime.KeepAlive(e)
			}
		})
	}
}
