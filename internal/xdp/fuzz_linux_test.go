//go:build linux

package xdp

import (
	"testing"

	"github.com/cilium/ebpf"
)

// FuzzProgramMatchesReference runs fuzzed frames through the kernel program
// and the Go reference model; they must agree on the verdict.
func FuzzProgramMatchesReference(f *testing.F) {
	for _, c := range frameCases() {
		if len(c.frame) >= 14 {
			f.Add(c.frame)
		}
	}
	l := newTestLoader(f)
	p := testPolicy(f)
	if err := l.Update(p); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 4096 {
			return // BPF_PROG_TEST_RUN needs an Ethernet header; jumbo sizes add nothing
		}
		ret, err := l.Program().Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := p.Decide(frame)
		got := Pass
		if ret == xdpDrop {
			got = Drop
		}
		if got != want {
			t.Fatalf("kernel %v, reference %v for %x", got, want, frame)
		}
	})
}
