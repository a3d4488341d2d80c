//go:build linux

package xdp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/xdp/xdptest"
)

// TestEndToEndVeth runs the appliance side in one network namespace with the
// XDP program on its veth, and clients in another: allowed sources connect
// to the Persona's listener, denied ones (global deny, CIDR, country,
// unpinned IP) cannot, the counters say why, and the appliance's TCP stack
// never sees the denied SYNs.
func TestEndToEndVeth(t *testing.T) {
	if testing.Short() && xdptest.Prereqs() != nil {
		t.Skip("needs root and iproute2; skipped with -short")
	}
	if err := xdptest.Prereqs(); err != nil {
		t.Fatalf("end-to-end XDP test: %v (CI runs it as root with iproute2 installed)", err)
	}
	pair, err := xdptest.NewPair("xdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	app, cli := pair.App, pair.Client
	for _, step := range [][]string{
		{"addr", "add", "10.77.0.1/16", "dev", pair.AppIf},
		{"route", "add", "198.51.100.0/24", "dev", pair.AppIf},
	} {
		if err := app.IP(step...); err != nil {
			t.Fatal(err)
		}
	}
	clients := []string{"10.77.0.10/16", "10.77.0.11/16", "10.77.0.20/16", "10.77.1.5/16", "198.51.100.7/24"}
	for _, a := range clients {
		if err := cli.IP("addr", "add", a, "dev", pair.ClientIf, "nodad"); err != nil {
			t.Fatal(err)
		}
	}

	l := newTestLoader(t)
	policy := testPolicy(t)
	if err := l.Update(policy); err != nil {
		t.Fatal(err)
	}
	var atts []Attachment
	if err := app.Do(func() error {
		var err error
		atts, err = l.Attach([]string{pair.AppIf}, ModeAuto)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("attached: %+v", atts)
	if len(atts) != 1 || atts[0].Mode != "native" {
		t.Errorf("veth supports native XDP; got %+v", atts)
	}

	// The appliance: the Persona's dedicated listener and an unrelated port.
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	serve := func(addr string) {
		var ln net.Listener
		if err := app.Do(func() error {
			var err error
			ln, err = net.Listen("tcp", addr)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				seen[addr+" "+netip.MustParseAddrPort(c.RemoteAddr().String()).Addr().String()]++
				mu.Unlock()
				c.Write([]byte("hi"))
				c.Close()
			}
		}()
	}
	serve("10.77.0.1:9001")
	serve("10.77.0.1:8080")

	dial := func(src, dst string, timeout time.Duration) error {
		return cli.Do(func() error {
			d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err := d.Dial("tcp", dst)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(timeout))
			b, err := io.ReadAll(c)
			if err != nil {
				return err
			}
			if string(b) != "hi" {
				return errors.New("unexpected greeting " + string(b))
			}
			return nil
		})
	}
	opensBefore, err := app.SNMP("Tcp", "PassiveOpens")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := l.Stats()

	if err := dial("10.77.0.10", "10.77.0.1:9001", 3*time.Second); err != nil {
		t.Fatalf("pinned DE client could not connect: %v", err)
	}
	if err := dial("10.77.0.11", "10.77.0.1:8080", 3*time.Second); err != nil {
		t.Fatalf("client could not reach a port without listener rules: %v", err)
	}
	denied := map[string]Reason{
		"10.77.0.11":   ReasonPin,
		"10.77.0.20":   ReasonCountry,
		"10.77.1.5":    ReasonCIDR,
		"198.51.100.7": ReasonGlobalDeny,
	}
	for src := range denied {
		err := dial(src, "10.77.0.1:9001", 400*time.Millisecond)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: dial = %v, want a timeout (SYN dropped at the NIC)", src, err)
		}
	}
	after, _ := l.Stats()
	for src, r := range denied {
		if after[r]-before[r] < 1 {
			t.Errorf("%s: %s counter did not move (%v → %v)", src, r, before, after)
		}
	}
	opensAfter, err := app.SNMP("Tcp", "PassiveOpens")
	if err != nil {
		t.Fatal(err)
	}
	if d := opensAfter - opensBefore; d != 2 {
		t.Errorf("appliance TCP stack saw %d passive opens, want exactly the 2 allowed connections", d)
	}
	mu.Lock()
	want := map[string]int{"10.77.0.1:9001 10.77.0.10": 1, "10.77.0.1:8080 10.77.0.11": 1}
	if len(seen) != len(want) || seen["10.77.0.1:9001 10.77.0.10"] != 1 || seen["10.77.0.1:8080 10.77.0.11"] != 1 {
		t.Errorf("accepted connections %v, want %v", seen, want)
	}
	mu.Unlock()

	// Revoke the pinned credential: its IP is refused from the next packet on.
	rules := policy.Rules()
	rules.Listeners = append([]ListenerRules(nil), rules.Listeners...)
	rules.Listeners[0].Pins = nil
	revoked, err := NewPolicy(rules, policy.Geo())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.Update(revoked); err != nil {
		t.Fatal(err)
	}
	t.Logf("policy swap took %v", time.Since(start))
	if err := dial("10.77.0.10", "10.77.0.1:9001", 400*time.Millisecond); err == nil {
		t.Error("revoked pin still connects")
	}
	if s, _ := l.Stats(); s[ReasonPin]-after[ReasonPin] < 1 {
		t.Error("revoked pin: pin counter did not move")
	}
	if os.Getenv("XDP_E2E_PAUSE") != "" {
		time.Sleep(time.Minute)
	}
}
