package geoip

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func cc(t testing.TB, s string) Country {
	t.Helper()
	c, err := ParseCountry(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestCountry(t *testing.T) {
	for _, s := range []string{"AA", "DE", "fr", "ZY"} {
		c, err := ParseCountry(s)
		if err != nil || c == Unknown || c.String() != strings.ToUpper(s) {
			t.Errorf("ParseCountry(%q) = %v (%q), %v", s, c, c, err)
		}
	}
	for _, s := range []string{"ZZ", "-", "--"} {
		if c, err := ParseCountry(s); err != nil || c != Unknown {
			t.Errorf("ParseCountry(%q) = %v, %v; want Unknown", s, c, err)
		}
	}
	for _, s := range []string{"", "D", "DEU", "D1", "é"} {
		if _, err := ParseCountry(s); err == nil {
			t.Errorf("ParseCountry(%q) accepted", s)
		}
	}
}

func TestBuilderOverlapsAndMerge(t *testing.T) {
	var b Builder
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.AddPrefix(netip.MustParsePrefix("10.0.0.0/8"), cc(t, "DE")))
	must(b.AddPrefix(netip.MustParsePrefix("10.1.0.0/16"), cc(t, "FR"))) // later wins
	must(b.AddRange(addr("10.2.0.0"), addr("10.2.0.255"), Unknown))      // hole
	must(b.AddRange(addr("11.0.0.0"), addr("11.0.0.9"), cc(t, "DE")))
	must(b.AddRange(addr("11.0.0.10"), addr("11.0.0.20"), cc(t, "DE"))) // merges
	must(b.AddPrefix(netip.MustParsePrefix("2001:db8::/32"), cc(t, "US")))
	tbl := b.Table()
	cases := map[string]string{
		"10.0.0.1": "DE", "10.1.2.3": "FR", "10.2.0.7": "", "10.2.1.0": "DE", "10.255.255.255": "DE",
		"9.255.255.255": "", "11.0.0.15": "DE", "11.0.0.0": "DE", "11.0.0.21": "", "2001:db8:ffff::1": "US", "2001:db9::": "",
		"::ffff:10.1.0.1": "FR",
	}
	for a, want := range cases {
		if got := tbl.Lookup(addr(a)).String(); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	var ranges []string
	for r := range tbl.Ranges() {
		ranges = append(ranges, fmt.Sprintf("%v-%v:%v", r.From, r.To, r.Country))
	}
	want := "10.0.0.0-10.0.255.255:DE 10.1.0.0-10.1.255.255:FR 10.2.1.0-11.0.0.20:DE 2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff:US"
	if got := strings.Join(ranges, " "); got != want {
		t.Errorf("ranges:\n got %s\nwant %s", got, want)
	}
	if err := b.AddRange(addr("10.0.0.9"), addr("10.0.0.1"), Unknown); err == nil {
		t.Error("AddRange accepted start after end")
	}
}

// lpm looks addr up in prefixes by longest prefix match: what the kernel
// does with Table.Prefixes.
func lpm(ps map[netip.Prefix]Country, a netip.Addr) Country {
	a = a.Unmap()
	for bits := a.BitLen(); bits >= 0; bits-- {
		p, _ := a.Prefix(bits)
		if c, ok := ps[p]; ok {
			return c
		}
	}
	return Unknown
}

func randTable(r *rand.Rand) *Table {
	var b Builder
	for range r.IntN(30) {
		c := Country(1 + r.IntN(5))
		if r.IntN(6) == 0 {
			c = Unknown
		}
		var from, to netip.Addr
		if r.IntN(2) == 0 {
			x, y := r.Uint32N(1<<12), r.Uint32N(1<<12)
			from = netip.AddrFrom4([4]byte{10, 0, byte(min(x, y) >> 8), byte(min(x, y))})
			to = netip.AddrFrom4([4]byte{10, 0, byte(max(x, y) >> 8), byte(max(x, y))})
		} else {
			x, y := r.Uint64(), r.Uint64()
			var f, e [16]byte
			f[0], e[0] = 0x20, 0x20
			for i := range 8 {
				f[8+i], e[8+i] = byte(min(x, y)>>(56-8*i)), byte(max(x, y)>>(56-8*i))
			}
			from, to = netip.AddrFrom16(f), netip.AddrFrom16(e)
		}
		if err := b.AddRange(from, to, c); err != nil {
			panic(err)
		}
	}
	return b.Table()
}

func TestPrefixesMatchLookup(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 50 {
		tbl := randTable(r)
		ps := map[netip.Prefix]Country{}
		for p, c := range tbl.Prefixes() {
			if _, dup := ps[p]; dup {
				t.Fatalf("prefix %v yielded twice", p)
			}
			ps[p] = c
		}
		for range 2000 {
			var a netip.Addr
			if r.IntN(2) == 0 {
				x := r.Uint32N(1 << 12)
				a = netip.AddrFrom4([4]byte{10, 0, byte(x >> 8), byte(x)})
			} else {
				var b [16]byte
				b[0] = 0x20
				v := r.Uint64()
				for i := range 8 {
					b[8+i] = byte(v >> (56 - 8*i))
				}
				a = netip.AddrFrom16(b)
			}
			if got, want := lpm(ps, a), tbl.Lookup(a); got != want {
				t.Fatalf("%v: prefixes say %v, Lookup %v", a, got, want)
			}
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		tbl := randTable(r)
		blob, err := tbl.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(blob)
		if err != nil {
			t.Fatal(err)
		}
		if !sameTable(tbl, got) {
			t.Fatal("round trip changed the table")
		}
	}
	whole := &Table{starts: []u128{{}}, ends: []u128{{^uint64(0), ^uint64(0)}}, cc: []Country{1}}
	blob, _ := whole.MarshalBinary()
	if got, err := Decode(blob); err != nil || !sameTable(whole, got) {
		t.Fatalf("whole address space: %v", err)
	}
}

func sameTable(a, b *Table) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i := range a.starts {
		if a.starts[i] != b.starts[i] || a.ends[i] != b.ends[i] || a.cc[i] != b.cc[i] {
			return false
		}
	}
	return true
}

func TestDecodeRejectsCorrupt(t *testing.T) {
	tbl := randTable(rand.New(rand.NewPCG(3, 3)))
	good, _ := tbl.MarshalBinary()
	overlap := &Table{starts: []u128{{0, 10}, {0, 5}}, ends: []u128{{0, 20}, {0, 30}}, cc: []Country{1, 2}}
	bad1, _ := overlap.MarshalBinary()
	zeroCC := &Table{starts: []u128{{0, 10}}, ends: []u128{{0, 20}}, cc: []Country{0}}
	bad2, _ := zeroCC.MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     []byte("PCGEO0xxxx"),
		"truncated": good[:len(good)-3],
		"not zstd":  append(append([]byte(nil), magic...), 1, 2, 3),
		"overlap":   bad1,
		"country 0": bad2,
	} {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode = %v, want ErrCorrupt", name, err)
		}
	}
}

// writeMMDB makes a small GeoLite2-Country style database.
func writeMMDB(t testing.TB, nets map[string]string, registeredOnly map[string]string) []byte {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(n string, rec mmdbtype.Map) {
		_, ipn, err := net.ParseCIDR(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(ipn, rec); err != nil {
			t.Fatal(err)
		}
	}
	for n, c := range nets {
		insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(c)}})
	}
	for n, c := range registeredOnly {
		insert(n, mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(c)}})
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseMMDB(t *testing.T) {
	data := writeMMDB(t,
		map[string]string{"10.77.0.0/28": "DE", "10.77.0.16/28": "US", "2001:db8:cc::/48": "CN", "81.0.0.0/9": "FR"},
		map[string]string{"192.0.2.0/24": "NL"})
	if f, err := DetectFormat(data); err != nil || f != FormatMMDB {
		t.Fatalf("DetectFormat = %v, %v", f, err)
	}
	tbl, err := Parse(data, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]string{
		"10.77.0.3": "DE", "10.77.0.17": "US", "10.77.0.33": "", "2001:db8:cc:1::5": "CN",
		"81.100.0.1": "FR", "192.0.2.77": "NL", "8.8.8.8": "",
	} {
		if got := tbl.Lookup(addr(a)).String(); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	if _, err := ParseMMDB(data[:len(data)/2]); err == nil {
		t.Error("ParseMMDB accepted a truncated file")
	}
}

const dbipCSV = `1.0.0.0,1.0.0.255,AU
1.0.1.0,1.0.3.255,CN
"1.0.4.0","1.0.7.255","AU"
10.0.0.0,10.255.255.255,ZZ
2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,DE
`

func TestParseDBIPCSV(t *testing.T) {
	if f, _ := DetectFormat([]byte(dbipCSV)); f != FormatDBIPCSV {
		t.Fatalf("DetectFormat = %v", f)
	}
	tbl, err := Parse([]byte("ip_start,ip_end,country\n"+dbipCSV), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]string{"1.0.0.9": "AU", "1.0.2.0": "CN", "1.0.5.5": "AU", "10.1.1.1": "", "2001:db8:1::": "DE", "1.0.8.0": ""} {
		if got := tbl.Lookup(addr(a)).String(); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	for name, in := range map[string]string{
		"bad address":   "1.0.0.0,1.0.0.255,AU\n1.0.1.x,1.0.1.255,AU\n",
		"bad country":   "1.0.0.0,1.0.0.255,Australia\n",
		"reversed":      "1.0.0.9,1.0.0.1,AU\n",
		"mixed":         "1.0.0.0,2001:db8::,AU\n",
		"short":         "1.0.0.0,1.0.0.255\n",
		"only unknowns": "1.0.0.0,1.0.0.255,ZZ\n",
	} {
		if _, err := Parse([]byte(in), FormatDBIPCSV); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "line") && !errors.Is(err, ErrEmpty) {
			t.Errorf("%s: error does not say where: %v", name, err)
		}
	}
}

const ip2lV4 = `"16777216","16777471","AU","Australia"
"16777472","16778239","CN","China"
"167772160","184549375","-","-"
`

const ip2lV6 = `"0","281470681743359","-","-"
"281470698520576","281470698520831","AU","Australia"
"42540766411282592856903984951653826560","42540766490510755371168322545197776895","DE","Germany"
`

func TestParseIP2LocationCSV(t *testing.T) {
	for name, in := range map[string]string{"v4": ip2lV4, "v6": ip2lV6} {
		if f, _ := DetectFormat([]byte(in)); f != FormatIP2LocationCSV {
			t.Fatalf("%s: DetectFormat = %v", name, f)
		}
	}
	v4, err := Parse([]byte(ip2lV4), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]string{"1.0.0.1": "AU", "1.0.1.1": "CN", "10.0.0.1": "", "1.0.4.0": ""} {
		if got := v4.Lookup(addr(a)).String(); got != want {
			t.Errorf("v4 Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	v6, err := Parse([]byte(ip2lV6), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]string{"1.0.0.1": "AU", "::ffff:1.0.0.200": "AU", "2001:db8::1": "DE", "2001:db9::": "", "::1": ""} {
		if got := v6.Lookup(addr(a)).String(); got != want {
			t.Errorf("v6 Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	for name, in := range map[string]string{
		"not a number": "\"16777216\",\"x\",\"AU\"\n",
		"negative":     "\"16777216\",\"-5\",\"AU\"\n",
		"too big":      "\"1\",\"340282366920938463463374607431768211456\",\"AU\"\n",
		"reversed":     "\"16777471\",\"16777216\",\"AU\"\n",
	} {
		if _, err := Parse([]byte(in), FormatIP2LocationCSV); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDetectFormatRejectsUnknown(t *testing.T) {
	for _, in := range []string{"", "hello world", "<html>", "{\"a\":1}"} {
		if _, err := Parse([]byte(in), FormatAuto); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestIPv4Ranges(t *testing.T) {
	var b Builder
	b.AddRange(addr("::1"), addr("::ffff:1.0.0.255"), cc(t, "DE")) // crosses into IPv4
	b.AddRange(addr("9.0.0.0"), addr("9.0.0.9"), cc(t, "FR"))
	b.AddRange(addr("255.255.255.0"), addr("::1:0:0:0"), cc(t, "US")) // crosses out of IPv4
	b.AddRange(addr("2001:db8::"), addr("2001:db8::1"), cc(t, "CN"))
	var got []string
	for r := range b.Table().IPv4Ranges() {
		got = append(got, fmt.Sprintf("%v-%v:%v", r.From, r.To, r.Country))
	}
	want := "0.0.0.0-1.0.0.255:DE 9.0.0.0-9.0.0.9:FR 255.255.255.0-255.255.255.255:US"
	if strings.Join(got, " ") != want {
		t.Errorf("IPv4Ranges = %v, want %v", got, want)
	}
}
