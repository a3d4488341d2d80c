package dlp

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cleanJSON builds a realistic, mostly clean tool result of about size bytes:
// ids, timestamps, UUIDs, prose, URLs, counts and prices.
func cleanJSON(r *rand.Rand, size int) []byte {
	words := []string{"the", "ticket", "was", "resolved", "after", "customer", "reported", "an", "issue", "with", "billing", "portal", "login", "timeout", "deployment", "service", "region", "cluster", "status", "pending", "approved", "invoice", "quarterly", "report", "meeting", "notes", "version", "release", "build", "error", "warning"}
	var items []map[string]any
	total := 0
	for total < size {
		var text string
		for k := 0; k < 12+r.IntN(20); k++ {
			text += words[r.IntN(len(words))] + " "
		}
		it := map[string]any{
			"id":         r.IntN(1e6),
			"uuid":       fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Uint64()&0xffffffffffff),
			"created_at": fmt.Sprintf("2025-%02d-%02dT%02d:%02d:%02dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)),
			"title":      words[r.IntN(len(words))] + " " + words[r.IntN(len(words))],
			"body":       text,
			"url":        fmt.Sprintf("https://tickets.example.com/api/v2/items/%d?expand=comments", r.IntN(1e6)),
			"count":      r.IntN(5000),
			"price":      float64(r.IntN(100000)) / 100,
			"tags":       []string{words[r.IntN(len(words))], words[r.IntN(len(words))]},
			"ts":         1700000000000 + r.Int64N(1e10),
			"version":    fmt.Sprintf("%d.%d.%d", r.IntN(5), r.IntN(20), r.IntN(50)),
		}
		items = append(items, it)
		b, _ := json.Marshal(it)
		total += len(b)
	}
	out, _ := json.Marshal(map[string]any{"result": map[string]any{"items": items}})
	return out
}

// cpuTime returns the CPU time this process has used; on a shared machine
// it measures the cost per core better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchScan reports wall-clock and CPU-time figures: cpu-MB/s is the
// throughput of one core, cpu-ns/op the CPU cost of one scan.
func benchScan(b *testing.B, doc []byte, scan func([]byte)) {
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	c0 := cpuTime()
	n := 0
	for b.Loop() {
		scan(doc)
		n++
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(len(doc))*float64(n)/cpu.Seconds()/1e6, "cpu-MB/s")
}

func BenchmarkScanCleanJSON(b *testing.B) {
	s := mustScanner(b, Config{})
	doc := cleanJSON(rand.New(rand.NewPCG(7, 7)), 1<<20)
	benchScan(b, doc, func(d []byte) { s.Scan(d) })
}

func BenchmarkScan4KB(b *testing.B) {
	s := mustScanner(b, Config{})
	doc := cleanJSON(rand.New(rand.NewPCG(8, 8)), 4096)[:4096]
	benchScan(b, doc, func(d []byte) { s.Scan(d) })
}

func BenchmarkScanJSONClean(b *testing.B) {
	s := mustScanner(b, Config{})
	doc := cleanJSON(rand.New(rand.NewPCG(7, 7)), 1<<20)
	benchScan(b, doc, func(d []byte) {
		if _, err := s.ScanJSON(d); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkScanJSON4KB(b *testing.B) {
	s := mustScanner(b, Config{})
	doc := cleanJSON(rand.New(rand.NewPCG(9, 9)), 4096)
	benchScan(b, doc, func(d []byte) {
		if _, err := s.ScanJSON(d); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkApply4KB is the gateway's per-message cost: scan, decide and
// rewrite a 4 KB tool result holding two sensitive values.
func BenchmarkApply4KB(b *testing.B) {
	e, err := NewEngine(EngineConfig{Policy: Policy{Rules: []Rule{{Categories: Categories, Direction: "both", Action: ActionRedact}}}})
	if err != nil {
		b.Fatal(err)
	}
	doc := cleanJSON(rand.New(rand.NewPCG(9, 9)), 4096)
	doc = append([]byte(`{"leak":"card 4111 1111 1111 1111 mail a.b@example.com","rest":`), append(doc, '}')...)
	benchScan(b, doc, func(d []byte) {
		if _, v, err := e.Apply(Response, d); err != nil || v.Decision != Modify {
			b.Fatal(err, v.Decision)
		}
	})
}

// BenchmarkDetectorScaling scans the same clean JSON with 1, 10, 50 and
// every detector enabled: the shared prefilter keeps the cost nearly flat.
func BenchmarkDetectorScaling(b *testing.B) {
	doc := cleanJSON(rand.New(rand.NewPCG(7, 7)), 256<<10)
	all := All()
	for _, n := range []int{1, 10, 50, len(all)} {
		ids := make([]string, 0, n)
		for _, d := range all[:n] {
			ids = append(ids, d.ID)
		}
		s := mustScanner(b, Config{Detectors: ids})
		b.Run(fmt.Sprintf("detectors=%d", n), func(b *testing.B) {
			benchScan(b, doc, func(d []byte) { s.Scan(d) })
		})
	}
}

// evasiveText is about size bytes of prose in which every fourth sentence
// hides a card number the way evasion_test.go's table does: NBSP or
// zero-width separators, full-width or Arabic-Indic digits, %-encoding,
// HTML entities, base64 and hex.
func evasiveText(size int) []byte {
	card := "4111 1111 1111 1111"
	hide := []func(string) string{
		func(v string) string { return strings.ReplaceAll(v, " ", "\u00a0") },
		func(v string) string { return strings.ReplaceAll(v, " ", "\u200b") },
		func(v string) string { return mapDigits(v, 0xFF10) },
		func(v string) string { return mapDigits(v, 0x0660) },
		func(v string) string { return percentAll(v) },
		func(v string) string { return entities(v, false) },
		func(v string) string { return base64.StdEncoding.EncodeToString([]byte("card " + v)) },
		func(v string) string { return hex.EncodeToString([]byte("card " + v)) },
	}
	var b strings.Builder
	for k := 0; b.Len() < size; k++ {
		if k%4 == 3 {
			fmt.Fprintf(&b, "The customer paid with card %s yesterday. ", hide[(k/4)%len(hide)](card))
			continue
		}
		b.WriteString("The ticket was resolved after the customer reported an issue with the billing portal. ")
	}
	return []byte(b.String()[:size])
}

// BenchmarkScanEvasive4KB is the cost of the evasion paths: normalising
// and rescanning, and decoding base64/hex runs, in 4 KB of prose with
// eight hidden card numbers.
func BenchmarkScanEvasive4KB(b *testing.B) {
	s := mustScanner(b, Config{})
	doc := evasiveText(4096)
	if n := len(s.Scan(doc)); n < 8 {
		b.Fatalf("%d findings in the evasive text, want at least 8", n)
	}
	benchScan(b, doc, func(d []byte) { s.Scan(d) })
}
