package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// benchTrail builds (or reuses, with PORTCULLIS_AUDIT_BENCH_DIR) a trail of
// PORTCULLIS_AUDIT_BENCH_RECORDS records (default 10M): 1000 agents, 100
// users, 20 personas, 50 tools, one record per 10 ms of simulated time.
func benchTrail(b *testing.B) (string, int) {
	n := 10_000_000
	if v := os.Getenv("PORTCULLIS_AUDIT_BENCH_RECORDS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	dir := os.Getenv("PORTCULLIS_AUDIT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir, n
	}
	os.RemoveAll(dir)
	start := time.Now()
	l, err := New(Config{Dir: dir, Node: "n1", BufferBytes: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		d := gateway.Decision{
			Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), Agent: "agent-" + strconv.Itoa(i%1000), User: "user-" + strconv.Itoa(i%97),
			Persona: "persona-" + strconv.Itoa(i%20), KeyID: "k" + strconv.Itoa(i%1000), ClientIP: "10.0.0.7", Session: "s" + strconv.Itoa(i/50),
			Revision: "2025-11-25", Method: "tools/call", Tool: "tool_" + strconv.Itoa(i%50), Upstream: "up" + strconv.Itoa(i%5),
			Decision: gateway.Allow, Latency: time.Duration(i%5000) * time.Microsecond, UpstreamStatus: "ok",
			Verdicts:   []gateway.Verdict{{Stage: "policy", Outcome: gateway.Allow}, {Stage: "dlp", Outcome: gateway.Allow}},
			ArgsDigest: fmt.Sprintf("%064x", i*7919), ResultDigest: fmt.Sprintf("%064x", i*104729), TraceID: fmt.Sprintf("%032x", i),
		}
		if i%10 == 3 {
			d.Decision, d.Reason = gateway.Deny, "tool not in persona"
		}
		if err := l.Write(d); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d records in %v", n, time.Since(start).Round(time.Second))
	os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600)
	return dir, n
}

// BenchmarkSearch10M: search latency on a 10M-record trail, and its disk
// use per million records (segments and indexes).
//
//	PORTCULLIS_AUDIT_BENCH_DIR=/tmp/audit-bench go test -run '^$' -bench Search10M -benchtime 5x ./internal/audit/
func BenchmarkSearch10M(b *testing.B) {
	dir, n := benchTrail(b)
	var seg, idx int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		switch {
		case strings.HasSuffix(e.Name(), idxSuffix):
			idx += fi.Size()
		case strings.HasPrefix(e.Name(), segPrefix):
			seg += fi.Size()
		}
	}
	perM := float64(n) / 1e6
	b.Logf("disk per million records: segments %.1f MB, indexes %.1f MB", float64(seg)/perM/1e6, float64(idx)/perM/1e6)
	mid := t0.Add(time.Duration(n/2) * 10 * time.Millisecond)
	cases := []struct {
		name string
		f    Filter
		want int
	}{
		{"agent", Filter{Agent: "agent-7"}, n / 1000},
		{"agent+decision", Filter{Agent: "agent-3", Decision: "deny"}, n / 1000},
		{"tool+1h", Filter{Tool: "tool_9", Since: mid, Until: mid.Add(time.Hour)}, min(360000, n-n/2) / 50},
		{"user+persona", Filter{User: "user-5", Persona: "persona-5"}, -1},
		{"persona-newest-100", Filter{Persona: "persona-3", Limit: 100}, 100},
		{"absent-agent", Filter{Agent: "nobody"}, 0},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			got := 0
			for b.Loop() {
				recs, err := Search(dir, c.f)
				if err != nil {
					b.Fatal(err)
				}
				got = len(recs)
			}
			if c.want >= 0 && got != c.want {
				b.Fatalf("%d records, want %d", got, c.want)
			}
			b.ReportMetric(float64(got), "records")
		})
	}
	b.Run("agent-cold", func(b *testing.B) { // as the CLI runs it: no parsed index cached
		for b.Loop() {
			indexCache.Lock()
			clear(indexCache.m)
			indexCache.bytes = 0
			indexCache.Unlock()
			if recs, err := Search(dir, Filter{Agent: "agent-7"}); err != nil || len(recs) != n/1000 {
				b.Fatalf("%d records, %v", len(recs), err)
			}
		}
	})
	b.Run("page-100", func(b *testing.B) {
		cur := uint64(n / 4)
		for b.Loop() {
			recs, next, err := Page(dir, Filter{Agent: "agent-42"}, cur, 100)
			if err != nil || len(recs) != 100 || next == 0 {
				b.Fatalf("%d records, next %d, %v", len(recs), next, err)
			}
		}
	})
}
