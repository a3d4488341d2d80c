package audit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkStrictWrite: records/s and latency per record through the
// strict path on one node with a Replicator whose commit is the receiving
// node's replica write (what raft adds on a cluster is measured in qa's
// TestAuditFigures): 32 concurrent writers, pipelined group commit.
func BenchmarkStrictWrite(b *testing.B) {
	dir := b.TempDir()
	rs, err := OpenReplicas(b.TempDir(), "n2", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	l := newLog(b, Config{Dir: dir, Node: "n1", Strict: true})
	r, err := NewReplicator(l, ReplicatorConfig{Propose: func(_ context.Context, s *Shipment) error { return rs.Apply("n1", s.Payload) }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.Run(ctx) }()
	go func() { defer wg.Done(); r.Run(ctx) }()
	sink := l.StrictSink()
	d := decision(1)
	b.ReportAllocs()
	b.SetParallelism(16) // x GOMAXPROCS writers
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := sink.WriteDurable(context.Background(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	el := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	l.Close()
	st := r.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/float64(max(st.Shipments, 1)), "records/batch")
}

// BenchmarkBatchDecodeApply: records/s a node takes in from another's
// batches (decompress, chain check, replica append).
func BenchmarkBatchDecodeApply(b *testing.B) {
	l := newLog(b, Config{Dir: b.TempDir(), Node: "n1", SegmentBytes: 1 << 30})
	var parts []Part
	l.flushMu.Lock()
	l.ship = func(p Part) { parts = append(parts, p) }
	l.flushMu.Unlock()
	const per = 1000
	for i := range 20 * per {
		l.Write(decision(i))
		if i%per == per-1 {
			l.Flush()
		}
	}
	var payloads [][]byte
	for _, p := range parts {
		pl, err := (&Batch{Parts: []Part{p}}).Encode()
		if err != nil {
			b.Fatal(err)
		}
		payloads = append(payloads, pl)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rs, err := OpenReplicas(b.TempDir(), "n2", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, pl := range payloads {
			if err := rs.Apply("n1", pl); err != nil {
				b.Fatal(err)
			}
		}
		n += 20 * per
		b.StopTimer()
		rs.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(len(payloads[0]))/per, "bytes/record-compressed")
}
