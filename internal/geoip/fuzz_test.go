package geoip

import (
	"bytes"
	"net/netip"
	"testing"
)

// checkTable asserts the invariants every parsed table has.
func checkTable(t *testing.T, tbl *Table) {
	t.Helper()
	for i := range tbl.starts {
		if tbl.ends[i].less(tbl.starts[i]) || tbl.cc[i] == Unknown || tbl.cc[i] > MaxCountry {
			t.Fatalf("bad range %d", i)
		}
		if i > 0 && !tbl.ends[i-1].less(tbl.starts[i]) {
			t.Fatalf("ranges %d and %d overlap", i-1, i)
		}
	}
	blob, err := tbl.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(blob)
	if err != nil || !sameTable(tbl, back) {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzParseDBIPCSV(f *testing.F) {
	f.Add([]byte(dbipCSV))
	f.Add([]byte("ip_start,ip_end,country\n1.2.3.4,1.2.3.4,DE\n"))
	f.Add([]byte("::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,US\n"))
	f.Add([]byte("1.0.0.0,1.0.0.255,AU\n1.0.0.128,1.0.1.0,NZ\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := ParseDBIPCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkTable(t, tbl)
	})
}

func FuzzParseIP2LocationCSV(f *testing.F) {
	f.Add([]byte(ip2lV4))
	f.Add([]byte(ip2lV6))
	f.Add([]byte("\"ip_from\",\"ip_to\",\"cc\"\n\"0\",\"4294967295\",\"US\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := ParseIP2LocationCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkTable(t, tbl)
	})
}

func FuzzParseMMDB(f *testing.F) {
	f.Add(writeMMDB(f, map[string]string{"10.77.0.0/28": "DE", "2001:db8::/32": "CN"}, map[string]string{"192.0.2.0/24": "NL"}))
	f.Add(writeMMDB(f, map[string]string{"0.0.0.0/1": "US"}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := ParseMMDB(data)
		if err != nil {
			return
		}
		checkTable(t, tbl)
		tbl.Lookup(netip.MustParseAddr("10.77.0.1"))
	})
}

func FuzzDecode(f *testing.F) {
	good, _ := (&Builder{}).Table().MarshalBinary()
	f.Add(good)
	var b Builder
	b.AddPrefix(netip.MustParsePrefix("10.0.0.0/8"), 5)
	b.AddPrefix(netip.MustParsePrefix("2001:db8::/32"), 7)
	one, _ := b.Table().MarshalBinary()
	f.Add(one)
	f.Add([]byte("PCGEO1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := Decode(data)
		if err != nil {
			return
		}
		checkTable(t, tbl)
	})
}

func FuzzDetectFormat(f *testing.F) {
	f.Add([]byte(dbipCSV))
	f.Add([]byte(ip2lV4))
	f.Add([]byte("#comment\n\n,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := Parse(data, FormatAuto)
		if err == nil {
			checkTable(t, tbl)
		}
	})
}
