//go:build linux

package xdp

import (
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// XDP return codes.
const (
	xdpDrop = 1
	xdpPass = 2
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// newTestLoader loads the program into the kernel. Without the privilege to
// do so the test fails, unless -short is given: CI runs as root.
func newTestLoader(t testing.TB) *Loader {
	t.Helper()
	if os.Geteuid() != 0 && testing.Short() {
		t.Skip("loading XDP needs root; skipped with -short")
	}
	l, err := NewLoader(testLogger(t))
	if err != nil {
		if testing.Short() && errors.Is(err, ebpf.ErrNotSupported) {
			t.Skip(err)
		}
		t.Fatalf("load XDP program (run as root on Linux >= 5.10): %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// runFrame sends one frame through BPF_PROG_TEST_RUN and returns the
// verdict and the reason whose counter moved.
func runFrame(t testing.TB, l *Loader, frame []byte) (Verdict, Reason) {
	t.Helper()
	before, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	ret, err := l.Program().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("prog.Run: %v", err)
	}
	after, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	reason := Reason(255)
	for i := range after {
		switch d := after[i] - before[i]; {
		case d == 1 && reason == 255:
			reason = Reason(i)
		case d != 0:
			t.Fatalf("counters moved unexpectedly: before %v after %v", before, after)
		}
	}
	switch ret {
	case xdpPass:
		return Pass, reason
	case xdpDrop:
		return Drop, reason
	}
	t.Fatalf("unexpected XDP return code %d", ret)
	return 0, 0
}

func TestProgramTable(t *testing.T) {
	l := newTestLoader(t)
	if err := l.Update(testPolicy(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range frameCases() {
		if len(c.frame) < 14 {
			continue // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet
		}
		v, r := runFrame(t, l, c.frame)
		if v != c.verdict || r != c.reason {
			t.Errorf("%s: kernel = %v/%v, want %v/%v", c.name, v, r, c.verdict, c.reason)
		}
	}
}

func TestEmptyPolicyPassesEverything(t *testing.T) {
	l := newTestLoader(t)
	for _, c := range frameCases() {
		if len(c.frame) < 14 || c.reason == ReasonMalformed {
			continue
		}
		if v, r := runFrame(t, l, c.frame); v != Pass || r != ReasonPass {
			t.Errorf("%s: empty policy gave %v/%v", c.name, v, r)
		}
	}
}

func TestUpdateSwapsPolicy(t *testing.T) {
	l := newTestLoader(t)
	frame := craft(frameSpec{src: "10.77.0.11", dst: "10.77.0.1", proto: tcp, dport: 9001})
	p := testPolicy(t)
	if err := l.Update(p); err != nil {
		t.Fatal(err)
	}
	if v, r := runFrame(t, l, frame); v != Drop || r != ReasonPin {
		t.Fatalf("before pinning: %v/%v, want drop/pin", v, r)
	}
	// Pin the source (a new credential), then revoke it again.
	rules := p.Rules()
	rules.Listeners = append([]ListenerRules(nil), rules.Listeners...)
	rules.Listeners[0].Pins = append(rules.Listeners[0].Pins, Pin{IP: mustAddr("10.77.0.11")})
	p2, err := NewPolicy(rules, p.Geo())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Update(p2); err != nil {
		t.Fatal(err)
	}
	if v, r := runFrame(t, l, frame); v != Pass || r != ReasonPass {
		t.Fatalf("after pinning: %v/%v, want pass", v, r)
	}
	if err := l.Update(p); err != nil {
		t.Fatal(err)
	}
	if v, r := runFrame(t, l, frame); v != Drop || r != ReasonPin {
		t.Fatalf("after revoking: %v/%v, want drop/pin", v, r)
	}
}

// TestUpdateIsAtomic alternates two policies while packets run. Under A the
// packet passes, under B it hits the global deny list; only a packet that
// saw A's global list with B's pins would be dropped for "pin".
func TestUpdateIsAtomic(t *testing.T) {
	l := newTestLoader(t)
	src := mustAddr("10.77.0.11")
	base := testPolicy(t).Rules()
	mk := func(globalDeny bool, pinned bool) *Policy {
		r := base
		r.GlobalDeny = nil
		if globalDeny {
			r.GlobalDeny = pfx("10.77.0.11/32")
		}
		r.Listeners = append([]ListenerRules(nil), base.Listeners...)
		r.Listeners[0].Pins = nil
		if pinned {
			r.Listeners[0].Pins = []Pin{{IP: src}}
		}
		p, err := NewPolicy(r, testGeo(t))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := mk(false, true), mk(true, false)
	frame := craft(frameSpec{src: src.String(), dst: "10.77.0.1", proto: tcp, dport: 9001})
	if err := l.Update(a); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := l.Program().Run(&ebpf.RunOptions{Data: frame, Repeat: 200}); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := range 40 {
		p := a
		if i%2 == 0 {
			p = b
		}
		if err := l.Update(p); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if c[ReasonPass] == 0 || c[ReasonGlobalDeny] == 0 {
		t.Fatalf("both policies should have been seen: %v", c)
	}
	if c[ReasonPin] != 0 {
		t.Fatalf("%d packets saw half a policy (pin drops): %v", c[ReasonPin], c)
	}
	t.Logf("counters: %v", c.ByName())
}
