//go:build linux

package xdp

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func gather(t *testing.T, d *Datapath) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(d.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, lp := range m.GetLabel() {
				name += "," + lp.GetName() + "=" + lp.GetValue()
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestDatapathFallsBackLoudly(t *testing.T) {
	newTestLoader(t) // same prerequisites: the failure below must come from the attach
	d, err := New(Config{Ifaces: []string{"pc-no-such0"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("fail-open New: %v", err)
	}
	defer d.Close()
	if d.Kernel() || !errors.Is(d.Unavailable(), ErrUnavailable) {
		t.Fatalf("Kernel() = %v, Unavailable() = %v; want userspace fallback", d.Kernel(), d.Unavailable())
	}
	if err := d.SetRules(testPolicy(t).Rules(), testGeo(t)); err != nil {
		t.Fatal(err)
	}
	if ok, r := d.Allow(mustAddr("10.77.0.11"), mustAddrPort("10.77.0.1:9001")); ok || r != ReasonPin {
		t.Fatalf("userspace Allow in fallback = %v/%v, want deny/pin", ok, r)
	}
	m := gather(t, d)
	if m["portcullis_xdp_fallback"] != 1 || m["portcullis_netpolicy_userspace_decisions_total,reason=pin"] != 1 {
		t.Fatalf("metrics do not show the fallback: %v", m)
	}
	if _, err := New(Config{Ifaces: []string{"pc-no-such0"}, FailClosed: true, Logger: testLogger(t)}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fail-closed New = %v, want ErrUnavailable", err)
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDatapathPinExpiry(t *testing.T) {
	newTestLoader(t)
	d, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Kernel() {
		t.Fatalf("kernel path not active: %v", d.Unavailable())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	rules := testPolicy(t).Rules()
	rules.Listeners[0].Pins = append(rules.Listeners[0].Pins, Pin{IP: mustAddr("10.77.0.11"), NotAfter: time.Now().Add(300 * time.Millisecond)})
	if err := d.SetRules(rules, testGeo(t)); err != nil {
		t.Fatal(err)
	}
	frame := craft(frameSpec{src: "10.77.0.11", dst: "10.77.0.1", proto: tcp, dport: 9001})
	if v, r := runFrame(t, d.Loader(), frame); v != Pass {
		t.Fatalf("pinned source before expiry: %v/%v", v, r)
	}
	// The goal is 1 s; the test asserts only that expiry takes effect by
	// itself (a loaded CI kernel can take seconds to swap maps) and prints
	// how long it took.
	expiry := rules.Listeners[0].Pins[len(rules.Listeners[0].Pins)-1].NotAfter
	deadline := expiry.Add(20 * time.Second)
	for {
		v, r := runFrame(t, d.Loader(), frame)
		if v == Drop && r == ReasonPin {
			t.Logf("expired pin gone at the NIC %v after expiry", time.Since(expiry).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired pin still admitted at the NIC 20 s after expiry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _ := d.Allow(mustAddr("10.77.0.11"), mustAddrPort("10.77.0.1:9001")); ok {
		t.Fatal("expired pin still admitted in userspace")
	}
	m := gather(t, d)
	if m["portcullis_xdp_fallback"] != 0 || m["portcullis_xdp_packets_total,reason=pin"] < 1 || m["portcullis_xdp_packets_total,reason=pass"] < 1 {
		t.Fatalf("metrics: %v", m)
	}
	rec := httptest.NewRecorder()
	StatsHandler(d).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/xdp/stats", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"pin":`) {
		t.Fatalf("stats handler: %d %s", rec.Code, rec.Body)
	}
}

// When the kernel refuses an update, the userspace check must still enforce
// the new rules (a new deny rule, a revoked pin): only the kernel lags, and
// says so.
func TestDatapathKernelFailureStillUpdatesUserspace(t *testing.T) {
	newTestLoader(t)
	d, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Kernel() {
		t.Fatalf("kernel path not active: %v", d.Unavailable())
	}
	rules := testPolicy(t).Rules()
	if err := d.SetRules(rules, testGeo(t)); err != nil {
		t.Fatal(err)
	}
	src, dst := mustAddr("203.0.113.9"), mustAddrPort("192.0.2.1:22")
	if ok, r := d.Allow(src, dst); !ok {
		t.Fatalf("before: %v", r)
	}
	// Break the kernel path, then deny the source globally.
	if err := d.Loader().Close(); err != nil {
		t.Fatal(err)
	}
	rules.GlobalDeny = append(rules.GlobalDeny, netip.MustParsePrefix("203.0.113.0/24"))
	err = d.SetRules(rules, testGeo(t))
	if !errors.Is(err, ErrKernelStale) {
		t.Fatalf("SetRules with a broken kernel path = %v, want ErrKernelStale", err)
	}
	if ok, r := d.Allow(src, dst); ok || r != ReasonGlobalDeny {
		t.Fatalf("userspace after a refused kernel update = %v/%v, want deny/global_deny", ok, r)
	}
	if s, _ := d.Stats(); s.Failed == 0 || s.LastError == "" {
		t.Fatalf("stats do not show the failed update: %+v", s)
	}
}
