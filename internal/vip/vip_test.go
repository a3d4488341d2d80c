package vip

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func base() Config {
	return Config{
		VIP:       netip.MustParsePrefix("10.0.0.100/24"),
		Interface: "eth0",
		RouterID:  51,
		Priority:  100,
	}
}

func TestRenderMulticastDefaults(t *testing.T) {
	out, err := Render(base())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"vrrp_script portcullis_healthz {",
		`script "/usr/bin/curl --silent --fail --output /dev/null --max-time 1 --insecure https://127.0.0.1:8443/healthz"`,
		"    fall 2\n", "    rise 2\n", "    interval 1\n",
		"vrrp_instance portcullis {", "    state BACKUP\n", "    interface eth0\n",
		"    virtual_router_id 51\n", "    priority 100\n", "    advert_int 1\n",
		"10.0.0.100/24 dev eth0", "track_script {\n        portcullis_healthz",
		"enable_script_security", "script_user nobody",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", want, s)
		}
	}
	for _, not := range []string{"unicast_peer", "authentication", "nopreempt", "weight"} {
		if strings.Contains(s, not) {
			t.Errorf("default config has %q:\n%s", not, s)
		}
	}
}

func TestRenderUnicastAuthCA(t *testing.T) {
	c := base()
	c.Peers = []netip.Addr{netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.13")}
	c.SourceIP = netip.MustParseAddr("10.0.0.11")
	c.HealthURL = "https://10.0.0.11:8443/healthz"
	c.HealthCA = "/etc/portcullis/ca.pem"
	c.AuthPass = "s3cr3t"
	c.Interval, c.Fall, c.Rise = 2*time.Second, 3, 4
	c.NoPreempt = true
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"unicast_src_ip 10.0.0.11\n", "unicast_peer {\n        10.0.0.12\n        10.0.0.13\n    }",
		"--cacert /etc/portcullis/ca.pem https://10.0.0.11:8443/healthz", "--max-time 2",
		"auth_type PASS\n        auth_pass s3cr3t\n", "nopreempt", "fall 3", "rise 4", "interval 2",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "--insecure") {
		t.Errorf("a check with a CA file skips verification:\n%s", s)
	}
	c.HealthURL, c.HealthCA = "http://127.0.0.1:8080/healthz", ""
	out, _ = Render(c)
	if strings.Contains(string(out), "--insecure") || strings.Contains(string(out), "--cacert") {
		t.Errorf("an http check has TLS options:\n%s", out)
	}
}

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no vip", func(c *Config) { c.VIP = netip.Prefix{} }, "--vip) is required"},
		{"ipv6", func(c *Config) { c.VIP = netip.MustParsePrefix("fd00::10/64") }, "not IPv4"},
		{"loopback", func(c *Config) { c.VIP = netip.MustParsePrefix("127.0.0.5/8") }, "not a unicast address"},
		{"prefix", func(c *Config) { c.VIP = netip.MustParsePrefix("10.0.0.1/4") }, "want /8 to /32"},
		{"iface", func(c *Config) { c.Interface = "eth0\n}" }, "interface (--iface)"},
		{"no iface", func(c *Config) { c.Interface = "" }, "interface (--iface)"},
		{"router id", func(c *Config) { c.RouterID = 256 }, "want 1 to 255"},
		{"no router id", func(c *Config) { c.RouterID = 0 }, "want 1 to 255"},
		{"priority", func(c *Config) { c.Priority = 255 }, "want 1 to 254"},
		{"peer is vip", func(c *Config) { c.Peers = []netip.Addr{c.VIP.Addr()} }, "is the cluster address itself"},
		{"peer twice", func(c *Config) {
			c.Peers = []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2")}
		}, "listed twice"},
		{"src without peers", func(c *Config) { c.SourceIP = netip.MustParseAddr("10.0.0.1") }, "give the other nodes with --peer"},
		{"url scheme", func(c *Config) { c.HealthURL = "ftp://127.0.0.1/healthz" }, "want http(s)://"},
		{"url injection", func(c *Config) { c.HealthURL = "https://127.0.0.1/healthz\"\n}" }, "not allowed"},
		{"url shell", func(c *Config) { c.HealthURL = "https://127.0.0.1/$(reboot)" }, "not allowed"},
		{"url creds", func(c *Config) { c.HealthURL = "https://u:p@127.0.0.1/healthz" }, "without credentials"},
		{"ca relative", func(c *Config) { c.HealthCA = "ca.pem" }, "absolute path"},
		{"interval", func(c *Config) { c.Interval = 1500 * time.Millisecond }, "whole seconds"},
		{"fall", func(c *Config) { c.Fall = -1 }, "fall (--fall)"},
		{"pass long", func(c *Config) { c.AuthPass = "123456789" }, "at most 8"},
		{"pass space", func(c *Config) { c.AuthPass = "a b" }, "printable ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			out, err := Render(c)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render: %v, want an ErrInvalid mentioning %q", err, tc.want)
			}
			if out != nil {
				t.Fatalf("Render wrote a configuration for invalid input:\n%s", out)
			}
		})
	}
	c := base()
	c.AuthPass = "hunter22"
	c.Priority = 0
	if _, err := Render(c); err == nil || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("error %v must not repeat the password", err)
	}
}

func TestParsePeers(t *testing.T) {
	got, err := ParsePeers([]string{"10.0.0.12,10.0.0.13", "10.0.0.14"})
	if err != nil || len(got) != 3 || got[2] != netip.MustParseAddr("10.0.0.14") {
		t.Fatalf("ParsePeers = %v, %v", got, err)
	}
	if _, err := ParsePeers([]string{"10.0.0.300"}); err == nil || !strings.Contains(err.Error(), `peer "10.0.0.300"`) {
		t.Fatalf("bad peer: %v", err)
	}
}

// FuzzRender feeds arbitrary text to every string field: Render either
// refuses it or writes a configuration in which each input stays inside
// its own line and no input adds a directive, a block or a quote.
func FuzzRender(f *testing.F) {
	f.Add("10.0.0.100/24", "eth0", "https://127.0.0.1:8443/healthz", "10.0.0.12,10.0.0.13", "pw", "/etc/ca.pem", 51, 100)
	f.Add("192.168.1.10/32", "br-lan.10", "http://[::1]:80/healthz", "", "", "", 1, 254)
	f.Add("10.0.0.1/24", "eth0\n}", "https://x/\"\nvrrp_instance y {", "1.2.3.4 5.6.7.8", "a\"b", "/a b", 0, 0)
	f.Fuzz(func(t *testing.T, vipS, iface, url, peers, pass, ca string, rid, prio int) {
		c := Config{Interface: iface, HealthURL: url, AuthPass: pass, HealthCA: ca, RouterID: rid, Priority: prio}
		if p, err := netip.ParsePrefix(vipS); err == nil {
			c.VIP = p
		}
		if ps, err := ParsePeers([]string{peers}); err == nil {
			c.Peers = ps
		}
		out, err := Render(c)
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			return
		}
		ref, err := Render(Config{VIP: c.VIP, Interface: "eth0", RouterID: 1, Priority: 1, Peers: c.Peers})
		if err != nil {
			t.Fatalf("reference config: %v", err)
		}
		count := func(b []byte, s string) int { return bytes.Count(b, []byte(s)) }
		for _, tok := range []string{"{", "}", "\n", `"`, "vrrp_", "script "} {
			if count(out, tok) != count(ref, tok)+extra(c, tok) {
				t.Fatalf("input changed the structure (%q: %d vs %d):\n%s", tok, count(out, tok), count(ref, tok), out)
			}
		}
	})
}

// extra is how many more of tok a config with c's optional blocks has
// than the reference.
func extra(c Config, tok string) int {
	n := 0
	if c.AuthPass != "" {
		switch tok {
		case "{", "}":
			n++
		case "\n":
			n += 4
		}
	}
	return n
}
