package geoip

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Format names a GeoIP database format.
type Format string

// Formats.
const (
	FormatAuto           Format = ""
	FormatMMDB           Format = "mmdb"
	FormatDBIPCSV        Format = "dbip-csv"
	FormatIP2LocationCSV Format = "ip2location-csv"
)

// ParseFormat accepts "", "auto" and the Format names.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case "", "auto":
		return FormatAuto, nil
	case FormatMMDB, FormatDBIPCSV, FormatIP2LocationCSV:
		return f, nil
	}
	return FormatAuto, fmt.Errorf("geoip format %q: want mmdb, dbip-csv or ip2location-csv", s)
}

// ErrEmpty is returned for a database that maps no address to a country.
var ErrEmpty = errors.New("geoip: database lists no country ranges")

// mmdbMarker starts the metadata section of every MMDB file.
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

// DetectFormat guesses the format from the content.
func DetectFormat(data []byte) (Format, error) {
	if bytes.Contains(data[max(0, len(data)-128*1024):], mmdbMarker) {
		return FormatMMDB, nil
	}
	for line := range bytes.Lines(data[:min(len(data), 64*1024)]) {
		l := strings.TrimSpace(string(line))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		first, _, _ := strings.Cut(l, ",")
		first = strings.Trim(first, `"`)
		switch {
		case strings.ContainsAny(first, ".:"):
			return FormatDBIPCSV, nil
		case first != "" && strings.Trim(first, "0123456789") == "":
			return FormatIP2LocationCSV, nil
		}
		if !strings.Contains(l, ",") {
			break
		}
		// Perhaps a header line: look at the next one.
	}
	return FormatAuto, errors.New("geoip: unrecognized database format (want MMDB, DB-IP CSV or IP2Location CSV)")
}

// Parse imports a database in the given format (FormatAuto detects it).
func Parse(data []byte, f Format) (*Table, error) {
	if f == FormatAuto {
		var err error
		if f, err = DetectFormat(data); err != nil {
			return nil, err
		}
	}
	var (
		t   *Table
		err error
	)
	switch f {
	case FormatMMDB:
		t, err = ParseMMDB(data)
	case FormatDBIPCSV:
		t, err = ParseDBIPCSV(bytes.NewReader(data))
	case FormatIP2LocationCSV:
		t, err = ParseIP2LocationCSV(bytes.NewReader(data))
	default:
		return nil, fmt.Errorf("geoip: unknown format %q", f)
	}
	if err != nil {
		return nil, err
	}
	if t.Len() == 0 {
		return nil, ErrEmpty
	}
	return t, nil
}

// mmdbRecord is the part of a (GeoLite2/GeoIP2/DB-IP) country record we use.
type mmdbRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// ParseMMDB imports a MaxMind DB file. A network's country is its
// country.iso_code, else its registered_country.iso_code.
func ParseMMDB(data []byte) (*Table, error) {
	db, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geoip: mmdb: %w", err)
	}
	defer db.Close()
	var b Builder
	cache := map[uintptr]Country{}
	seen := 0
	for res := range db.Networks() {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("geoip: mmdb: %w", err)
		}
		// A search tree whose nodes share children (legal to the reader)
		// yields exponentially many networks: bound the walk.
		if seen++; seen > maxRanges {
			return nil, fmt.Errorf("geoip: mmdb: more than %d networks (a hostile or broken search tree)", maxRanges)
		}
		c, ok := cache[res.Offset()]
		if !ok {
			var rec mmdbRecord
			if err := res.Decode(&rec); err != nil {
				return nil, fmt.Errorf("geoip: mmdb: network %v: %w", res.Prefix(), err)
			}
			code := rec.Country.ISOCode
			if code == "" {
				code = rec.RegisteredCountry.ISOCode
			}
			if code != "" {
				if c, err = ParseCountry(code); err != nil {
					return nil, fmt.Errorf("geoip: mmdb: network %v: %w", res.Prefix(), err)
				}
			}
			cache[res.Offset()] = c
		}
		if c == Unknown {
			continue
		}
		if err := b.AddPrefix(res.Prefix(), c); err != nil {
			return nil, fmt.Errorf("geoip: mmdb: %w", err)
		}
	}
	return b.Table(), nil
}

// csvRows yields the records of a CSV file, skipping blank and # lines.
func csvRows(r io.Reader, each func(line int, rec []string) error) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.Comment = '#'
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if err := each(line, rec); err != nil {
			return err
		}
	}
}

// ParseDBIPCSV imports DB-IP's country CSV: start,end,country with IPv4 or
// IPv6 addresses (the lite and commercial country editions). Extra columns
// are ignored; a header line is skipped.
func ParseDBIPCSV(r io.Reader) (*Table, error) {
	var b Builder
	err := csvRows(r, func(line int, rec []string) error {
		if len(rec) < 3 {
			return fmt.Errorf("line %d: want start,end,country", line)
		}
		from, err := parseAddr(rec[0])
		if err != nil {
			if line == 1 {
				return nil // header
			}
			return fmt.Errorf("line %d: start address %s", line, err)
		}
		to, err := parseAddr(rec[1])
		if err != nil {
			return fmt.Errorf("line %d: end address %s", line, err)
		}
		if from.Is4() != to.Is4() {
			return fmt.Errorf("line %d: range %v-%v mixes IPv4 and IPv6", line, from, to)
		}
		c, err := ParseCountry(strings.TrimSpace(rec[2]))
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := b.AddRange(from, to, c); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("geoip: dbip csv: %w", err)
	}
	return b.Table(), nil
}

var (
	maxV4   = big.NewInt(0xffffffff)
	maxU128 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
)

// ParseIP2LocationCSV imports IP2Location's country CSV (DB1 and up):
// "ip_from","ip_to","cc",... with decimal IP numbers. A range whose end is
// at most 2^32-1 is IPv4; otherwise the numbers are IPv6 (the IPv6 editions
// give IPv4 as ::ffff:a.b.c.d). "-" means unknown.
func ParseIP2LocationCSV(r io.Reader) (*Table, error) {
	var b Builder
	var fromN, toN big.Int
	err := csvRows(r, func(line int, rec []string) error {
		if len(rec) < 3 {
			return fmt.Errorf("line %d: want ip_from,ip_to,country_code", line)
		}
		if !parseIPNumber(&fromN, rec[0]) {
			if line == 1 {
				return nil // header
			}
			return fmt.Errorf("line %d: ip_from %s: not an IP number", line, clip(rec[0]))
		}
		if !parseIPNumber(&toN, rec[1]) {
			return fmt.Errorf("line %d: ip_to %s: not an IP number", line, clip(rec[1]))
		}
		v4 := toN.Cmp(maxV4) <= 0 && fromN.Cmp(maxV4) <= 0
		from, to := numToAddr(&fromN, v4), numToAddr(&toN, v4)
		c, err := ParseCountry(strings.TrimSpace(rec[2]))
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := b.AddRange(from, to, c); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("geoip: ip2location csv: %w", err)
	}
	return b.Table(), nil
}

// maxFieldEcho bounds how much of a bad field an error repeats: the error
// goes back to the uploader and into the log, and a field may be megabytes.
const maxFieldEcho = 64

// clip quotes a field for an error message, cut to maxFieldEcho bytes.
func clip(s string) string {
	if len(s) > maxFieldEcho {
		return fmt.Sprintf("%q... (%d bytes)", s[:maxFieldEcho], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// parseAddr parses a textual address; its error quotes at most
// maxFieldEcho bytes of the field.
func parseAddr(field string) (netip.Addr, error) {
	s := strings.TrimSpace(field)
	// The longest address text (IPv4-mapped IPv6 with a zone) is well under
	// 64 bytes; refuse longer ones before parsing.
	if len(s) <= maxFieldEcho {
		if a, err := netip.ParseAddr(s); err == nil {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: not an IP address", clip(field))
}

// parseIPNumber sets n to the decimal IP number in field, at most 2^128-1.
// Longer digit strings are refused before big.Int parses them (in time
// that grows faster than their length).
func parseIPNumber(n *big.Int, field string) bool {
	s := strings.TrimLeft(strings.TrimSpace(field), "0")
	if s == "" && strings.TrimSpace(field) != "" {
		s = "0"
	}
	if len(s) > 39 { // 2^128-1 has 39 digits
		return false
	}
	_, ok := n.SetString(s, 10)
	return ok && n.Sign() >= 0 && n.Cmp(maxU128) <= 0
}

func numToAddr(n *big.Int, v4 bool) netip.Addr {
	if v4 {
		var a [4]byte
		n.FillBytes(a[:])
		return netip.AddrFrom4(a)
	}
	var a [16]byte
	n.FillBytes(a[:])
	return netip.AddrFrom16(a)
}
