package hsm

import (
	"testing"
)

// Seal/unseal throughput on SoftHSM through PKCS#11 (AES-256-GCM, 64-byte
// secrets). Run: go test -run '^$' -bench . -benchtime 2s ./hsm
func benchKeystore(b *testing.B, maxSessions int) *Keystore {
	b.Helper()
	s := newSoftHSM(b)
	cfg, _ := s.token(b, "bench")
	cfg.Logger = nil
	cfg.MaxSessions = maxSessions
	k := open(b, cfg)
	if err := k.EnsureKeys(ctxT(b)); err != nil {
		b.Fatal(err)
	}
	return k
}

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkSeal(b *testing.B) {
	k := benchKeystore(b, 0)
	ctx := ctxT(b)
	pt := make([]byte, 64)
	for b.Loop() {
		if _, err := k.Seal(ctx, "bench", 1, pt); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}

func BenchmarkUnseal(b *testing.B) {
	k := benchKeystore(b, 0)
	ctx := ctxT(b)
	sealed, err := k.Seal(ctx, "bench", 1, make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := k.Unseal(ctx, "bench", 1, sealed); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}

func BenchmarkUnsealParallel(b *testing.B) {
	k := benchKeystore(b, 8)
	ctx := ctxT(b)
	sealed, err := k.Seal(ctx, "bench", 1, make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4) // 4×GOMAXPROCS goroutines over 8 sessions
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Unseal(ctx, "bench", 1, sealed); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}

func BenchmarkMAC(b *testing.B) {
	k := benchKeystore(b, 0)
	ctx := ctxT(b)
	data := []byte("4111 1111 1111 1111")
	for b.Loop() {
		if _, err := k.MAC(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}
