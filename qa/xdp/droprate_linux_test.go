//go:build linux

package xdpqa

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/portcullis-gw/portcullis/internal/xdp"
	"github.com/portcullis-gw/portcullis/internal/xdp/xdptest"
)

var full = flag.Bool("xdp.full", false, "measure with 10k, 100k and 1M prefixes for 3 s each (otherwise a short smoke run)")

// genPrefixes makes n disjoint IPv4 prefixes (/16../24 where they fit), one
// per aligned region of the address space outside 0/8 and 10/8.
func genPrefixes(r *rand.Rand, n int) []netip.Prefix {
	shift := 32
	for (uint64(1)<<shift)*uint64(n) > 1<<31 {
		shift--
	}
	out := make([]netip.Prefix, 0, n)
	for i := range n {
		base := uint64(1)<<31 + uint64(i)<<shift // 128.0.0.0 and up
		bits := max(32-shift, 16) + r.IntN(max(24-max(32-shift, 16)+1, 1))
		bits = min(max(bits, 32-shift), 32)
		size := uint64(1) << (32 - bits)
		start := base + size*uint64(r.Int64N(int64((uint64(1)<<shift)/size)))
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(start))
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), bits))
	}
	return out
}

// frames builds UDP frames from random addresses inside the prefixes.
func frames(r *rand.Rand, ps []netip.Prefix, srcMAC, dstMAC net.HardwareAddr, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := ps[r.IntN(len(ps))]
		a := p.Addr().As4()
		v := binary.BigEndian.Uint32(a[:]) + uint32(r.Uint64N(uint64(1)<<(32-p.Bits())))
		binary.BigEndian.PutUint32(a[:], v)
		eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: a[:], DstIP: net.IP{10, 88, 0, 1}}
		udp := &layers.UDP{SrcPort: 40000, DstPort: 9000}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(make([]byte, 18))); err != nil {
			panic(err)
		}
		out[i] = append([]byte(nil), buf.Bytes()...)
	}
	return out
}

// blast sends the frames round-robin out of iface in ns for d, from one
// thread, and returns how many were sent.
func blast(ns *xdptest.NS, iface string, fr [][]byte, d time.Duration) (int, error) {
	sent := 0
	err := ns.Do(func() error {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index}); err != nil {
			return err
		}
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			for range 256 {
				if _, err := unix.Write(fd, fr[sent%len(fr)]); err != nil {
					if err == unix.ENOBUFS || err == unix.EAGAIN {
						continue
					}
					return err
				}
				sent++
			}
		}
		return nil
	})
	return sent, err
}

// nftPassed reads how many packets got past the drop rule: a counter in a
// separate table at a later ingress priority. (Listing the table that holds
// the set would make nft fetch every element: minutes for 1M.)
func nftPassed(t *testing.T, ns *xdptest.NS) uint64 {
	out, err := ns.Exec("nft", "-j", "list", "table", "netdev", "pccount")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Nftables []struct {
			Counter *struct {
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("nft counter: %v: %s", err, out)
	}
	for _, e := range v.Nftables {
		if e.Counter != nil {
			return e.Counter.Packets
		}
	}
	t.Fatalf("nft counter not found: %s", out)
	return 0
}

// rxPackets reads the interface's received-packet count.
func rxPackets(t *testing.T, ns *xdptest.NS, iface string) uint64 {
	out, err := ns.Exec("ip", "-s", "-j", "link", "show", iface)
	if err != nil {
		t.Fatal(err)
	}
	var v []struct {
		Stats64 struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
		t.Fatalf("ip link stats: %v: %s", err, out)
	}
	return v[0].Stats64.RX.Packets
}

func TestDropRateVsNftables(t *testing.T) {
	if testing.Short() {
		t.Skip("traffic measurement; skipped with -short")
	}
	if err := xdptest.Prereqs(); err != nil {
		t.Fatalf("drop-rate comparison: %v", err)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("nft (Debian package nftables) is missing; .ci/packages.d/xdp lists it")
	}
	sizes, rounds, dur := []int{10_000}, 3, 300*time.Millisecond
	if *full {
		sizes, rounds, dur = []int{10_000, 100_000, 1_000_000}, 5, 2*time.Second
	}
	if s := os.Getenv("XDPQA_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			var n int
			fmt.Sscan(f, &n)
			sizes = append(sizes, n)
		}
	}
	pair, err := xdptest.NewPair("xdpq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := pair.App.IP("addr", "add", "10.88.0.1/24", "dev", pair.AppIf); err != nil {
		t.Fatal(err)
	}
	// No IPv6 neighbour discovery chatter in the counters.
	for _, ns := range []*xdptest.NS{pair.App, pair.Client} {
		if _, err := ns.Exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"); err != nil {
			t.Fatal(err)
		}
	}
	var appMAC, cliMAC net.HardwareAddr
	pair.App.Do(func() error { i, err := net.InterfaceByName(pair.AppIf); appMAC = i.HardwareAddr; return err })
	pair.Client.Do(func() error { i, err := net.InterfaceByName(pair.ClientIf); cliMAC = i.HardwareAddr; return err })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := xdp.NewLoader(log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	report := []string{fmt.Sprintf("XDP vs nftables drop rate on veth: one AF_PACKET sender thread, 2 shared cores, %d rounds of %v per method, median (best):", rounds, dur)}
	for _, n := range sizes {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		ps := genPrefixes(r, n)
		fr := frames(r, ps, cliMAC, appMAC, 4096)
		p, err := xdp.NewPolicy(xdp.Rules{GlobalDeny: ps}, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := l.Update(p); err != nil {
			t.Fatal(err)
		}
		xdpLoad := time.Since(start)
		// The same prefixes in an nftables interval set at the earliest
		// nftables hook (netdev ingress). It stays loaded during the XDP
		// phases, where XDP drops first and nftables must see nothing.
		var sb strings.Builder
		fmt.Fprintf(&sb, "table netdev pcbench {\n set deny { type ipv4_addr; flags interval; elements = { ")
		for i, p := range ps {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(p.String())
		}
		fmt.Fprintf(&sb, " } }\n chain ingress { type filter hook ingress device %q priority -500; policy accept; ip saddr @deny drop; }\n}\n", pair.AppIf)
		fmt.Fprintf(&sb, "table netdev pccount {\n counter c {}\n chain ingress { type filter hook ingress device %q priority -499; policy accept; ip daddr 10.88.0.1 udp dport 9000 counter name \"c\"; }\n}\n", pair.AppIf)
		file := filepath.Join(t.TempDir(), "rules.nft")
		if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, err := pair.App.Exec("nft", "-f", file); err != nil {
			t.Fatal(err)
		}
		nftLoad := time.Since(start)

		methods := []string{"xdp-native", "xdp-generic", "nftables"}
		rates := map[string][]float64{}
		for range rounds {
			for _, m := range methods {
				var mode xdp.AttachMode
				switch m {
				case "xdp-native":
					mode = xdp.ModeNative
				case "xdp-generic":
					mode = xdp.ModeGeneric
				}
				if m != "nftables" {
					if err := pair.App.Do(func() error { _, err := l.Attach([]string{pair.AppIf}, mode); return err }); err != nil {
						t.Fatal(err)
					}
				}
				xb, _ := l.Stats()
				nb, rb := nftPassed(t, pair.App), rxPackets(t, pair.App, pair.AppIf)
				sent, err := blast(pair.Client, pair.ClientIf, fr, dur)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // let NAPI / backlog drain
				xa, _ := l.Stats()
				na, ra := nftPassed(t, pair.App), rxPackets(t, pair.App, pair.AppIf)
				if err := l.Detach(); err != nil {
					t.Fatal(err)
				}
				xd, passed := xa[xdp.ReasonGlobalDeny]-xb[xdp.ReasonGlobalDeny], na-nb
				dropped := xd
				if m == "nftables" {
					dropped = ra - rb - passed
					if passed != 0 {
						t.Errorf("nftables: %d denied packets got past the set", passed)
					}
				} else if passed != 0 {
					t.Errorf("%s: %d packets got past XDP to nftables", m, passed)
				}
				if dropped == 0 || dropped > uint64(sent) {
					t.Fatalf("prefixes=%d %s: sent %d, dropped %d", n, m, sent, dropped)
				}
				rates[m] = append(rates[m], float64(dropped)/dur.Seconds())
			}
		}
		for _, tbl := range []string{"pcbench", "pccount"} {
			if _, err := pair.App.Exec("nft", "delete", "table", "netdev", tbl); err != nil {
				t.Fatal(err)
			}
		}
		med := map[string]float64{}
		line := fmt.Sprintf("prefixes=%-8d", n)
		for _, m := range methods {
			slices.Sort(rates[m])
			med[m] = rates[m][len(rates[m])/2]
			line += fmt.Sprintf("  %s %7.0f/s (%7.0f)", m, med[m], rates[m][len(rates[m])-1])
		}
		line += fmt.Sprintf("  ratio native/nft %.2f  generic/nft %.2f  (load: xdp %v, nft %v; nft also evaluates one counting rule)",
			med["xdp-native"]/med["nftables"], med["xdp-generic"]/med["nftables"], xdpLoad.Round(time.Millisecond), nftLoad.Round(time.Millisecond))
		t.Log(line)
		report = append(report, "  "+line)
	}
	fmt.Println(strings.Join(report, "\n"))
}
