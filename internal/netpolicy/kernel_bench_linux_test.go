//go:build linux

package netpolicy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

// BenchmarkCommitToKernel measures what the issue bounds by one second: from
// a committed key revocation (applied by the FSM) until the rules without
// the key's address are in the kernel, on a node with 200 pinning personas
// and 5000 keys. Needs root (the XDP program is loaded, not attached).
func BenchmarkCommitToKernel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("loads the XDP program: needs root")
	}
	s := bigState(b)
	d, err := xdp.New(xdp.Config{FailClosed: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	e, err := New(Config{State: s, Datapath: d})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	idx := s.Current().Index
	i := 0
	var worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		idx++
		cmd := &state.Command{Op: state.OpKeyRevoke, Time: time.Now(), KeyID: fmt.Sprintf("k%05d", i)}
		raw, _ := cmd.Encode()
		if err, ok := s.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: raw}).(error); ok {
			b.Fatal(err)
		}
		for e.Index() < idx {
			time.Sleep(50 * time.Microsecond)
		}
		worst = max(worst, time.Since(start))
		i++
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
