package xdp

import "testing"

// FuzzDecide feeds arbitrary frames to the reference parser and decision:
// no panic, and a malformed verdict only ever comes with a drop.
func FuzzDecide(f *testing.F) {
	for _, c := range frameCases() {
		f.Add(c.frame)
	}
	p := testPolicy(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		v, r := p.Decide(frame)
		if (r == ReasonPass) != (v == Pass) {
			t.Fatalf("verdict %v with reason %v", v, r)
		}
		pkt, res := ParseFrame(frame)
		if res == parseIP && pkt.HasPort && pkt.LaterFrag {
			t.Fatal("a later fragment cannot carry ports")
		}
	})
}
