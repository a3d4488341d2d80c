//go:build linux

package xdp

import (
	"math/rand/v2"

	"github.com/cilium/ebpf"
	"testing"
)

// TestDifferential checks that the kernel program and the Go reference model
// agree, verdict and reason, on 100,000 random frames against random
// policies.
func TestDifferential(t *testing.T) {
	l := newTestLoader(t)
	const policies, perPolicy = 50, 2000
	r := rand.New(rand.NewPCG(0x5eed, uint64(0xd1ff)))
	prev, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Reason]int{}
	mismatches := 0
	for pi := range policies {
		rules := randRules(r)
		p, err := NewPolicy(rules, randGeo(r))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Update(p); err != nil {
			t.Fatal(err)
		}
		for range perPolicy {
			frame := randFrame(r)
			wantV, wantR := p.Decide(frame)
			ret, err := l.Program().Run(&ebpf.RunOptions{Data: frame})
			if err != nil {
				t.Fatal(err)
			}
			cur, err := l.Stats()
			if err != nil {
				t.Fatal(err)
			}
			gotR := Reason(255)
			for i := range cur {
				if cur[i] != prev[i] {
					gotR = Reason(i)
				}
			}
			prev = cur
			gotV := Pass
			if ret == xdpDrop {
				gotV = Drop
			}
			seen[wantR]++
			if gotV != wantV || gotR != wantR {
				mismatches++
				if mismatches <= 10 {
					t.Errorf("policy %d: kernel %v/%v, reference %v/%v\nrules: %+v\nframe: %x", pi, gotV, gotR, wantV, wantR, rules, frame)
				}
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d frames disagree", mismatches, policies*perPolicy)
	}
	for _, reason := range Reasons() {
		if seen[reason] < 100 {
			t.Errorf("reason %v seen only %d times: random generator too narrow (%v)", reason, seen[reason], seen)
		}
	}
	t.Logf("%d frames agree; reasons: %v", policies*perPolicy, seen)
}
