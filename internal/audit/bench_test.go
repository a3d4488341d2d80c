package audit

import (
	"crypto/ecdsa"
	"os"
	"testing"
	"time"
)

// BenchmarkWrite: records/s through Write with the default group commit
// (100 ms fsync rounds, 1 MiB buffer, 64 MiB segments, HSM-signed
// checkpoints), including the final flush and Close.
func BenchmarkWrite(b *testing.B) {
	signer := hsmSigner(b, "audit-checkpoints")
	dir := b.TempDir()
	l := newLog(b, Config{Dir: dir, Node: "n1", Signer: signer})
	stop := make(chan struct{})
	go func() { // Run's flush ticker, without a context
		t := time.NewTicker(l.cfg.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.Flush()
			}
		}
	}()
	d := decision(1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := l.Write(d); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(st.MaxFlush.Microseconds())/1e3, "max-flush-ms")
}

// BenchmarkVerify: MB/s of uncompressed segment bytes verified (zstd,
// chain hashes, seq checks, checkpoint signatures).
func BenchmarkVerify(b *testing.B) {
	signer := hsmSigner(b, "audit-checkpoints")
	dir := b.TempDir()
	l := newLog(b, Config{Dir: dir, Node: "n1", Signer: signer, SegmentBytes: 8 << 20})
	for i := range 100_000 {
		if err := l.Write(decision(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	pub := signer.Public().(*ecdsa.PublicKey)
	r, err := Verify(dir, pub)
	if err != nil || !r.OK() {
		b.Fatalf("%v %v", err, r.Problems)
	}
	b.SetBytes(r.Bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := Verify(dir, pub); err != nil || !r.OK() {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.Records), "records/trail")
	var disk int64
	segs, _ := listSegments(dir)
	for _, s := range segs {
		if fi, err := os.Stat(s.Path); err == nil {
			disk += fi.Size()
		}
	}
	b.ReportMetric(float64(disk)/float64(r.Records), "disk-B/record")
	b.ReportMetric(float64(r.Bytes)/float64(r.Records), "raw-B/record")
}

// BenchmarkSearch: a linear scan of 100k records for one agent's records.
func BenchmarkSearch(b *testing.B) {
	dir := b.TempDir()
	l := newLog(b, Config{Dir: dir, Node: "n1", SegmentBytes: 8 << 20})
	for i := range 100_000 {
		if err := l.Write(decision(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if recs, err := Search(dir, Filter{Agent: "agent-1", Decision: "deny"}); err != nil || len(recs) == 0 {
			b.Fatal(err)
		}
	}
}
