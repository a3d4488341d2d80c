//go:build linux

package xdp

import (
	"net/netip"
	"testing"
)

// BenchmarkUpdatePin measures what a credential issuance or revocation
// costs: a policy that differs from the live one only in one pinned IP.
func BenchmarkUpdatePin(b *testing.B) {
	l := newTestLoader(b)
	p := testPolicy(b)
	rules := p.Rules()
	i := 0
	for b.Loop() {
		i++
		r := rules
		r.Listeners = append([]ListenerRules(nil), rules.Listeners...)
		r.Listeners[0].Pins = append(append([]Pin(nil), r.Listeners[0].Pins...), Pin{IP: netip.AddrFrom4([4]byte{10, 77, 0, byte(i)})})
		np, err := NewPolicy(r, p.Geo())
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Update(np); err != nil {
			b.Fatal(err)
		}
	}
}
