// Package vip gives a Portcullis cluster one address that survives the loss
// of a node: it writes the keepalived (VRRP) configuration of one node.
//
// Every node of the cluster runs keepalived with the configuration Render
// produces. keepalived checks the local node's gateway GET /healthz every
// Interval (curl, TLS verification optional for a self-signed listener);
// a node whose check fails Fall times in a row (refused connection, or 503:
// still starting, or state older than --max-stale) goes to the VRRP FAULT
// state and gives the address up; of the healthy nodes the one with the
// highest Priority holds it and announces it with gratuitous ARP. A FAULT
// node never takes the address, whatever its priority.
//
// Why keepalived and not the raft leader announcing the address itself:
// every node serves agents, so the address need not follow the leader; a
// node that is the leader but cannot serve (stale, overloaded listener) must
// lose the address, and a health check of the listener agents use is the
// right signal. keepalived is the Debian-packaged standard for that, has no
// code in Portcullis's data path, and an operator can read and adjust its
// configuration. The cost: VRRP needs the nodes on one L2 segment (or
// unicast peers on a routed one) and PASS authentication is only a guard
// against mistakes, not against an attacker on that segment.
package vip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of the fields left zero.
const (
	DefaultHealthURL = "https://127.0.0.1:8443/healthz"
	DefaultInterval  = time.Second
	DefaultFall      = 2
	DefaultRise      = 2
	DefaultAdvert    = time.Second
	DefaultCurl      = "/usr/bin/curl"
	DefaultName      = "portcullis"
)

// Config is one node's share of the cluster address.
type Config struct {
	// VIP is the cluster address with its prefix length, e.g. 10.0.0.100/24.
	VIP netip.Prefix
	// Interface is the network interface that carries VIP (e.g. eth0).
	Interface string
	// RouterID is the VRRP virtual router id, 1-255: the same on every node
	// of one cluster, different from any other VRRP group on the segment.
	RouterID int
	// Priority, 1-254, orders the healthy nodes: the highest holds VIP.
	// Give each node a different one.
	Priority int
	// Peers are the other nodes' addresses for unicast VRRP (for segments
	// that drop multicast, e.g. most clouds). Empty: multicast 224.0.0.18.
	Peers []netip.Addr
	// SourceIP is this node's address for unicast VRRP (optional: keepalived
	// takes the interface's primary address).
	SourceIP netip.Addr
	// HealthURL is the local node's gateway /healthz (DefaultHealthURL).
	HealthURL string
	// HealthCA, if set, is a PEM file curl verifies the gateway's certificate
	// with; otherwise an https check skips verification (the check talks to
	// the local node, usually over loopback, where a self-signed
	// certificate is common). The check runs as user nobody, who must be
	// able to read it.
	HealthCA string
	// Interval between checks (whole seconds, DefaultInterval); a check
	// taking longer than the interval fails.
	Interval time.Duration
	// Fall is how many failed checks in a row give the address up; Rise how
	// many good ones make the node eligible again.
	Fall, Rise int
	// Advert is the VRRP advertisement interval (whole seconds, DefaultAdvert):
	// the backups take over about 3 × Advert after the holder falls silent.
	Advert time.Duration
	// AuthPass, if set, is the VRRP PASS authentication (1-8 printable
	// characters, the same on every node). It is sent in clear text.
	AuthPass string
	// NoPreempt keeps the address where it is when a node of higher
	// priority comes back (one move less; the default moves it back).
	NoPreempt bool
	// Curl is the curl binary (DefaultCurl).
	Curl string
	// Name names the keepalived instance and check (DefaultName).
	Name string
}

// Sentinel errors Validate wraps, for callers that need to tell them apart.
var (
	ErrInvalid = errors.New("invalid cluster address configuration")
)

var (
	ifaceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	pathRE  = regexp.MustCompile(`^/[A-Za-z0-9_./+-]*$`)
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.HealthURL == "" {
		c.HealthURL = DefaultHealthURL
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Advert == 0 {
		c.Advert = DefaultAdvert
	}
	if c.Curl == "" {
		c.Curl = DefaultCurl
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	return c
}

// Validate reports the first problem of c (after defaults), naming the
// field. Everything Render writes comes from a validated field, so no
// input can add a directive to the configuration.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !c.VIP.IsValid() {
		return invalid("the cluster address (--vip) is required, as ADDRESS/PREFIX, e.g. 10.0.0.100/24")
	}
	if !c.VIP.Addr().Is4() {
		return invalid("the cluster address %s is not IPv4: this configuration uses VRRPv2, which carries IPv4 only", c.VIP)
	}
	if c.VIP.Addr().IsLoopback() || c.VIP.Addr().IsMulticast() || c.VIP.Addr().IsUnspecified() || c.VIP.Addr().IsLinkLocalUnicast() {
		return invalid("the cluster address %s is not a unicast address agents can reach", c.VIP.Addr())
	}
	if c.VIP.Bits() < 8 || c.VIP.Bits() > 32 {
		return invalid("the cluster address prefix /%d: want /8 to /32 (the prefix of the interface's subnet)", c.VIP.Bits())
	}
	if !ifaceRE.MatchString(c.Interface) {
		return invalid("interface (--iface) %q: want a Linux interface name (1-15 letters, digits, . _ -)", c.Interface)
	}
	if c.RouterID < 1 || c.RouterID > 255 {
		return invalid("virtual router id (--router-id) %d: want 1 to 255, the same on every node", c.RouterID)
	}
	if c.Priority < 1 || c.Priority > 254 {
		return invalid("priority (--priority) %d: want 1 to 254, a different one on each node", c.Priority)
	}
	seen := map[netip.Addr]bool{}
	for _, p := range c.Peers {
		if !p.IsValid() || !p.Is4() || p.IsUnspecified() || p.IsMulticast() {
			return invalid("peer %s: want the IPv4 address of another node", p)
		}
		if p == c.VIP.Addr() {
			return invalid("peer %s is the cluster address itself: list the other nodes' own addresses", p)
		}
		if p == c.SourceIP {
			return invalid("peer %s is this node's own --src-ip", p)
		}
		if seen[p] {
			return invalid("peer %s is listed twice", p)
		}
		seen[p] = true
	}
	if c.SourceIP.IsValid() {
		if !c.SourceIP.Is4() || c.SourceIP.IsUnspecified() || c.SourceIP.IsMulticast() {
			return invalid("source address (--src-ip) %s: want this node's own IPv4 address", c.SourceIP)
		}
		if len(c.Peers) == 0 {
			return invalid("a source address (--src-ip) is for unicast VRRP: give the other nodes with --peer too")
		}
		if c.SourceIP == c.VIP.Addr() {
			return invalid("source address (--src-ip) %s is the cluster address: give this node's own address", c.SourceIP)
		}
	}
	if err := checkHealthURL(c.HealthURL); err != nil {
		return err
	}
	if c.HealthCA != "" && !pathRE.MatchString(c.HealthCA) {
		return invalid("health CA file (--health-ca) %q: want an absolute path of letters, digits and . _ / + -", c.HealthCA)
	}
	if err := wholeSeconds("check interval (--interval)", c.Interval, 1, 3600); err != nil {
		return err
	}
	if err := wholeSeconds("advertisement interval (--advert)", c.Advert, 1, 255); err != nil {
		return err
	}
	if c.Fall < 1 || c.Fall > 100 {
		return invalid("fall (--fall) %d: want 1 to 100 failed checks", c.Fall)
	}
	if c.Rise < 1 || c.Rise > 100 {
		return invalid("rise (--rise) %d: want 1 to 100 good checks", c.Rise)
	}
	if c.AuthPass != "" {
		if len(c.AuthPass) > 8 {
			return invalid("VRRP password: %d characters, keepalived uses at most 8", len(c.AuthPass))
		}
		for _, r := range c.AuthPass {
			if r <= ' ' || r > '~' || r == '"' || r == '\\' || r == '#' || r == '!' {
				return invalid("VRRP password: only printable ASCII without spaces, quotes, backslash, # or !")
			}
		}
	}
	if !pathRE.MatchString(c.Curl) {
		return invalid("curl binary %q: want an absolute path", c.Curl)
	}
	if !nameRE.MatchString(c.Name) {
		return invalid("instance name %q: want 1-32 letters, digits, _ or -", c.Name)
	}
	return nil
}

func wholeSeconds(what string, d time.Duration, lo, hi int) error {
	if d%time.Second != 0 || d < time.Duration(lo)*time.Second || d > time.Duration(hi)*time.Second {
		return invalid("%s %s: want whole seconds from %ds to %ds (keepalived counts in seconds)", what, d, lo, hi)
	}
	return nil
}

// checkHealthURL accepts an http(s) URL without anything the keepalived
// parser or a shell would read specially.
func checkHealthURL(s string) error {
	for _, r := range s {
		if r <= ' ' || r > '~' || strings.ContainsRune(`"'\#!;{}`+"`$", r) {
			return invalid("health URL (--health-url) %q: spaces, quotes, backslash and # ! ; { } ` $ are not allowed", s)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid("health URL (--health-url) %q: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return invalid("health URL (--health-url) %q: want http(s)://HOST:PORT/healthz of the local node's gateway listener, without credentials", s)
	}
	return nil
}

// Render writes keepalived.conf for c, or the first validation error.
func Render(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	var b bytes.Buffer
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	check := c.Name + "_healthz"

	fmt.Fprintf(&b, "# keepalived.conf for one Portcullis node (portcullis cluster vip-config).\n")
	fmt.Fprintf(&b, "# The cluster address %s is held by the healthy node of highest priority.\n", c.VIP)
	fmt.Fprintf(&b, "global_defs {\n")
	fmt.Fprintf(&b, "    router_id %s_%d_%d\n", c.Name, c.RouterID, c.Priority)
	fmt.Fprintf(&b, "    enable_script_security\n")
	fmt.Fprintf(&b, "    script_user nobody\n")
	fmt.Fprintf(&b, "}\n\n")

	// The check: curl exits non-zero on a refused connection, a timeout
	// and (with --fail) on any status of 400 or more, 503 included.
	args := []string{c.Curl, "--silent", "--fail", "--output", "/dev/null", "--max-time", secs(c.Interval)}
	if strings.HasPrefix(c.HealthURL, "https:") {
		if c.HealthCA != "" {
			args = append(args, "--cacert", c.HealthCA)
		} else {
			args = append(args, "--insecure")
		}
	}
	args = append(args, c.HealthURL)
	fmt.Fprintf(&b, "# GET /healthz of the local gateway: 200 serves agents; 503 (starting, or\n")
	fmt.Fprintf(&b, "# state older than --max-stale) or no answer fails the check.\n")
	fmt.Fprintf(&b, "vrrp_script %s {\n", check)
	fmt.Fprintf(&b, "    script \"%s\"\n", strings.Join(args, " "))
	fmt.Fprintf(&b, "    interval %s\n", secs(c.Interval))
	fmt.Fprintf(&b, "    timeout %s\n", secs(c.Interval))
	fmt.Fprintf(&b, "    fall %d\n", c.Fall)
	fmt.Fprintf(&b, "    rise %d\n", c.Rise)
	fmt.Fprintf(&b, "}\n\n")

	fmt.Fprintf(&b, "vrrp_instance %s {\n", c.Name)
	fmt.Fprintf(&b, "    state BACKUP\n")
	fmt.Fprintf(&b, "    interface %s\n", c.Interface)
	fmt.Fprintf(&b, "    virtual_router_id %d\n", c.RouterID)
	fmt.Fprintf(&b, "    priority %d\n", c.Priority)
	fmt.Fprintf(&b, "    advert_int %s\n", secs(c.Advert))
	if c.NoPreempt {
		fmt.Fprintf(&b, "    nopreempt\n")
	}
	if len(c.Peers) > 0 {
		if c.SourceIP.IsValid() {
			fmt.Fprintf(&b, "    unicast_src_ip %s\n", c.SourceIP)
		}
		fmt.Fprintf(&b, "    unicast_peer {\n")
		for _, p := range c.Peers {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		fmt.Fprintf(&b, "    }\n")
	}
	if c.AuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", c.AuthPass)
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s dev %s\n    }\n", c.VIP, c.Interface)
	// Without a weight a failing check puts the instance in FAULT: it
	// gives the address up and never takes it while the check fails.
	fmt.Fprintf(&b, "    track_script {\n        %s\n    }\n", check)
	fmt.Fprintf(&b, "}\n")
	return b.Bytes(), nil
}

// ParsePeers parses a list of peer addresses (comma or space separated),
// as --peer takes them.
func ParsePeers(list []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, item := range list {
		for _, f := range strings.FieldsFunc(item, func(r rune) bool { return r == ',' || r == ' ' }) {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, invalid("peer %q: want an IPv4 address such as 10.0.0.12", f)
			}
			out = append(out, a)
		}
	}
	return out, nil
}
