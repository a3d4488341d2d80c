package geoip

import (
	"fmt"
)

// Country is an ISO 3166-1 alpha-2 country code packed into 1..676
// ((first-'A')*26 + (second-'A') + 1). Zero means unknown. The XDP datapath
// stores the same number, so the encoding is part of the kernel ABI.
type Country uint16

// Unknown is the country of addresses the database does not list.
const Unknown Country = 0

// MaxCountry is the largest valid Country value ("ZZ").
const MaxCountry Country = 26 * 26

// ParseCountry parses a two-letter code, case-insensitively. "ZZ", "--" and
// "-" (used by databases for unknown or reserved space) yield Unknown.
func ParseCountry(s string) (Country, error) {
	if s == "-" || s == "--" {
		return Unknown, nil
	}
	if len(s) != 2 {
		return Unknown, fmt.Errorf("country code %s: want two letters", clip(s))
	}
	a, b := upper(s[0]), upper(s[1])
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return Unknown, fmt.Errorf("country code %q: want two letters", s)
	}
	if a == 'Z' && b == 'Z' {
		return Unknown, nil
	}
	return Country(uint16(a-'A')*26 + uint16(b-'A') + 1), nil
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// String returns the two-letter code, or "" for Unknown.
func (c Country) String() string {
	if c == Unknown || c > MaxCountry {
		return ""
	}
	v := uint16(c) - 1
	return string([]byte{byte('A' + v/26), byte('A' + v%26)})
}
