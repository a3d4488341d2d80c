package dlp

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
)

// phoneCountries maps calling codes to national significant number lengths.
var phoneCountries = map[string][2]int{
	"1": {10, 10}, "7": {10, 10}, "20": {9, 10}, "27": {9, 9}, "30": {10, 10}, "31": {9, 9}, "32": {8, 9}, "33": {9, 9},
	"34": {9, 9}, "39": {6, 11}, "41": {9, 9}, "43": {4, 13}, "44": {9, 10}, "45": {8, 8}, "46": {7, 10}, "47": {8, 8},
	"48": {9, 9}, "49": {6, 13}, "52": {10, 10}, "55": {10, 11}, "61": {9, 9}, "62": {8, 12}, "63": {10, 10}, "64": {8, 10},
	"65": {8, 8}, "66": {8, 9}, "81": {9, 10}, "82": {8, 10}, "84": {9, 10}, "86": {10, 11}, "90": {10, 10}, "91": {10, 10},
	"92": {10, 10}, "234": {8, 10}, "254": {9, 9}, "351": {9, 9}, "353": {7, 9}, "358": {5, 12}, "972": {8, 9},
	"971": {8, 9}, "966": {9, 9},
	// the rest of Europe, Latin America, Africa and Asia (ITU-T E.164
	// national significant number lengths)
	"36": {8, 9}, "40": {9, 9}, "51": {8, 9}, "53": {8, 8}, "54": {10, 11}, "56": {9, 9}, "57": {8, 10}, "58": {10, 10},
	"60": {8, 10}, "94": {9, 9}, "95": {7, 10}, "98": {10, 10}, "212": {9, 9}, "213": {8, 9}, "216": {8, 8},
	"233": {9, 9}, "255": {9, 9}, "256": {9, 9}, "352": {4, 11}, "354": {7, 9}, "356": {8, 8}, "357": {8, 8},
	"359": {8, 9}, "370": {8, 8}, "371": {8, 8}, "372": {7, 8}, "380": {9, 9}, "381": {8, 9}, "385": {8, 9},
	"386": {8, 8}, "420": {9, 9}, "421": {9, 9}, "852": {8, 8}, "853": {8, 8}, "880": {10, 10}, "886": {8, 9},
	"961": {7, 8}, "962": {8, 9}, "965": {8, 8}, "968": {8, 8}, "974": {8, 8},
}

func nanpValid(d []byte) bool {
	if len(d) != 10 || d[0] < '2' || d[3] < '2' {
		return false
	}
	if d[1] == '1' && d[2] == '1' || d[4] == '1' && d[5] == '1' {
		return false // N11 service codes
	}
	return true
}

// intlPhoneValid validates an E.164 number (digits after '+').
func intlPhoneValid(d []byte) bool {
	for l := 1; l <= 3 && l < len(d); l++ {
		r, ok := phoneCountries[string(d[:l])]
		if !ok {
			continue
		}
		nsn := d[l:]
		// Italy keeps the 0 of its landline numbers (+39 02 …)
		if len(nsn) < r[0] || len(nsn) > r[1] || nsn[0] == '0' && string(d[:l]) != "39" {
			return false
		}
		switch string(d[:l]) {
		case "1":
			return nanpValid(nsn)
		case "44":
			// 1/2 geographic, 3 non-geographic, 5 corporate and VoIP, 7
			// mobile, 8 freephone (also 9 digits: 800 …), 9 premium
			return len(nsn) == 10 && bytesIn(nsn[0], "1235789") || len(nsn) == 9 && (nsn[0] == '1' || nsn[0] == '8' && nsn[1] == '0')
		case "91":
			return nsn[0] >= '2'
		}
		return true
	}
	return false
}

// parseIPv4 parses a dotted quad without leading zeros.
func parseIPv4(b []byte) (o [4]int, ok bool) {
	k, p := 0, 0
	for k < 4 {
		s := p
		v := 0
		for p < len(b) && isDigit(b[p]) && p-s < 3 {
			v = v*10 + int(b[p]-'0')
			p++
		}
		if p == s || v > 255 || (p-s > 1 && b[s] == '0') {
			return o, false
		}
		o[k] = v
		k++
		if k < 4 {
			if p >= len(b) || b[p] != '.' {
				return o, false
			}
			p++
		}
	}
	return o, p == len(b)
}

func dateValue(v []byte) (y, m, d int, ok bool) {
	switch {
	case shape(v, "dddd-dd-dd", "dddd/dd/dd", "dddd.dd.dd"):
		y, m, d = num(v[:4]), num(v[5:7]), num(v[8:10])
	case shape(v, "dd/dd/dddd", "dd.dd.dddd", "dd-dd-dddd"):
		y, m, d = num(v[6:10]), num(v[3:5]), num(v[:2])
		if m > 12 { // US order MM/DD/YYYY
			m, d = d, m
		}
	default:
		return 0, 0, 0, false
	}
	return y, m, d, validDate(y, m, d) && y >= 1900 && y <= 2030
}

func init() {
	register(&Detector{
		ID: "email", Category: PII, Tags: tags(TagGDPR), Description: "Email address",
		Confidence: 0.85, special: '@',
		anchor: func(b []byte, i int) (int, int, float64) {
			s := i
			for s > 0 && i-s < 64 && (isAlnum(b[s-1]) || bytesIn(b[s-1], "._%+-")) {
				s--
			}
			if s == i || b[s] == '.' || b[i-1] == '.' {
				return 0, 0, 0
			}
			p := i + 1
			dots, lastDot := 0, -1
			for p < len(b) && p-i < 253 && (isAlnum(b[p]) || b[p] == '-' || b[p] == '.') {
				if b[p] == '.' {
					if p == i+1 || b[p-1] == '.' {
						return 0, 0, 0
					}
					dots++
					lastDot = p
				}
				p++
			}
			if p > i+1 && b[p-1] == '.' {
				p--
				dots--
				lastDot = -1
				for k := p - 1; k > i; k-- {
					if b[k] == '.' {
						lastDot = k
						break
					}
				}
			}
			if dots < 1 || lastDot < 0 || p-lastDot-1 < 2 || !allIn(b[lastDot+1:p], isAlpha) {
				return 0, 0, 0
			}
			return s, p, 0.85
		},
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "contact: ", "\"email\": \"", "From: "), pick(r, "jane.doe", "m.rossi", "k_tanaka+news") + "@" + pick(r, "example.com", "mail.example.org", "corp.example.co.uk")
		},
		near: fixedNear("user@localhost", "@mention", "a@b", "name@domain.c0m"),
	})
	register(&Detector{
		ID: "phone-intl", Category: PII, Tags: tags(TagGDPR), Description: "International phone number (+country code, per-country length)",
		Confidence: 0.8, Context: []string{"phone", "tel", "mobile", "cell", "call", "whatsapp", "fax"},
		minLen: 8, maxLen: 15, digitsOnly: true,
		group: func(c *cand) float64 {
			if c.pre != '+' || !intlPhoneValid(c.norm) {
				return 0
			}
			c.usePre = true
			return 0.8
		},
		gen: func(r *rand.Rand) (string, string) {
			return "tel ", pick(r, "+1 415 555 "+digits(r, 4), "+44 20 7946 "+digits(r, 4), "+49 30 "+digits(r, 8), "+33 6 12 34 "+digits(r, 2)+" "+digits(r, 2), "+91 98765 "+digits(r, 5), "+81 3 1234 "+digits(r, 4))
		},
		near: fixedNear("+44 20 7946", "+1 011 555 0100", "+999 1234 5678", "+33 0612345678"),
	})
	register(&Detector{
		ID: "phone-nanp", Category: PII, Tags: tags(TagGDPR), Description: "North American phone number (NPA/NXX rules, formatted)",
		Confidence: 0.7, Context: []string{"phone", "tel", "mobile", "cell", "call", "fax"}, Negative: []string{"ssn", "order", "invoice"},
		minLen: 10, maxLen: 11, digitsOnly: true,
		group: func(c *cand) float64 {
			d := c.norm
			if len(d) == 11 {
				if d[0] != '1' || !shape(c.raw, "d-ddd-ddd-dddd", "d ddd ddd dddd", "d (ddd) ddd-dddd") {
					return 0
				}
				d = d[1:]
			} else if c.pre == '(' && shape(c.raw, "ddd) ddd-dddd", "ddd)ddd-dddd") {
				c.usePre = true
			} else if !shape(c.raw, "ddd-ddd-dddd", "ddd.ddd.dddd", "ddd ddd dddd") {
				return 0
			}
			if !nanpValid(d) {
				return 0
			}
			return 0.7
		},
		gen: func(r *rand.Rand) (string, string) {
			n := pick(r, "415", "212", "646") + "-" + pick(r, "555", "867", "234") + "-" + digits(r, 4)
			return "call ", pick(r, n, "("+n[:3]+") "+n[4:])
		},
		near: fixedNear("call 123-456-7890", "call 415-111-2222", "id 4155550100"),
	})
	register(&Detector{
		ID: "phone-uk", Category: PII, Tags: tags(TagGDPR), Description: "UK national phone number (0 + area/mobile prefix, 11 digits; 10 in a few areas and for 0800)",
		Confidence: 0.65, Context: []string{"phone", "tel", "mobile", "call"},
		minLen: 10, maxLen: 11, digitsOnly: true,
		group: func(c *cand) float64 {
			d := c.norm
			// 01/02 geographic, 03 non-geographic, 05 corporate and VoIP,
			// 07 mobile, 08 freephone and shared cost
			if d[0] != '0' || !bytesIn(d[1], "123578") {
				return 0
			}
			if len(d) == 10 {
				// ten digits: the small areas (016977 2xxx) and 0800 xxxxxx,
				// only grouped as such and only next to a phone word
				if d[1] == '1' && shape(c.raw, "dddddd dddd", "ddddd ddddd") || string(d[:4]) == "0800" && shape(c.raw, "dddd dddddd") {
					return 0.45
				}
				return 0
			}
			if d[1] == '5' || d[1] == '8' {
				// not a mobile or area number: only grouped, like the others
				if shape(c.raw, "ddd dddd dddd", "dddd ddd dddd") {
					return 0.65
				}
				return 0
			}
			if len(c.raw) == 11 {
				if d[1] == '7' {
					return 0.45
				}
				return 0.4
			}
			if shape(c.raw, "ddddd dddddd", "dddd ddd dddd", "ddd dddd dddd") {
				return 0.65
			}
			return 0
		},
		gen: func(r *rand.Rand) (string, string) {
			return "mobile ", pick(r, "07700 9"+digits(r, 5), "020 7946 "+digits(r, 4), "0161 496 "+digits(r, 4))
		},
		near: fixedNear("mobile 05700 900123", "ref 0770 0900 123x"),
	})
	register(&Detector{
		ID: "phone-fr", Category: PII, Tags: tags(TagGDPR), Description: "French national phone number (0X XX XX XX XX)",
		Confidence: 0.7, Context: []string{"téléphone", "telephone", "tel", "portable", "phone"},
		minLen: 10, maxLen: 10, digitsOnly: true,
		group: func(c *cand) float64 {
			d := c.norm
			if d[0] != '0' || d[1] == '0' {
				return 0
			}
			if shape(c.raw, "dd dd dd dd dd", "dd.dd.dd.dd.dd") {
				return 0.7
			}
			if len(c.raw) == 10 && (d[1] == '6' || d[1] == '7') {
				return 0.4
			}
			return 0
		},
		gen: func(r *rand.Rand) (string, string) {
			return "tél ", "0" + pick(r, "6", "1", "7") + " " + digits(r, 2) + " " + digits(r, 2) + " " + digits(r, 2) + " " + digits(r, 2)
		},
		near: fixedNear("tél 00 12 34 56 78", "v 06 12 34 56"),
	})
	register(&Detector{
		ID: "ipv4", Category: PII, Tags: tags(TagGDPR), Description: "IPv4 address",
		Confidence: 0.7, Context: []string{"ip", "addr", "address", "client", "host", "remote", "src", "dst", "from"}, Negative: []string{"version", "oid", "snmp"},
		minLen: 4, maxLen: 12, digitsOnly: true, needsSep: true,
		group: func(c *cand) float64 {
			o, ok := parseIPv4(c.raw)
			if !ok || o[0] == 0 {
				return 0
			}
			if o[0] == 10 || o[0] == 127 || o[0] == 192 && o[1] == 168 || o[0] == 172 && o[1]&0xf0 == 16 {
				return 0.6
			}
			return 0.7
		},
		gen: func(r *rand.Rand) (string, string) {
			return "client ip ", strconv.Itoa(11+r.IntN(180)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
		},
		near: fixedNear("client ip 256.1.2.3", "1.2.3", "ip 10.0.0.300"),
	})
	register(&Detector{
		ID: "ipv6", Category: PII, Tags: tags(TagGDPR), Description: "IPv6 address",
		Confidence: 0.7, special: ':',
		anchor: func(b []byte, i int) (int, int, float64) {
			if i == 0 || !(isHex(b[i-1]) || b[i-1] == ':') && !(i+1 < len(b) && b[i+1] == ':') {
				return 0, 0, 0
			}
			s := i
			for s > 0 && i-s < 5 && isHex(b[s-1]) {
				s--
			}
			if s > 0 && (isAlnum(b[s-1]) || b[s-1] == ':' || b[s-1] == '.') {
				return 0, 0, 0
			}
			p := i
			colons, dbl := 0, false
			for p < len(b) && p-s < 45 && (isHex(b[p]) || b[p] == ':' || b[p] == '.') {
				if b[p] == ':' {
					colons++
					if p+1 < len(b) && b[p+1] == ':' {
						dbl = true
					}
				}
				p++
			}
			for p > i && b[p-1] == '.' { // the full stop of "client IP: fe80::1."
				p--
			}
			if p < len(b) && isAlnum(b[p]) || !(dbl && colons >= 2 || colons == 7) {
				return 0, 0, 0
			}
			a, err := netip.ParseAddr(string(b[s:p]))
			if err != nil || !a.Is6() || a.IsUnspecified() {
				return 0, 0, 0
			}
			return s, p, 0.7
		},
		gen: func(r *rand.Rand) (string, string) {
			return "src ", "2001:db8:" + fromSet(r, setHexLower, 4) + "::" + fromSet(r, "123456789abcdef", 1) + fromSet(r, setHexLower, 2)
		},
		near: fixedNear("time 12:30:45", "2001:db8:::1", "a::b::c"),
	})
	register(&Detector{
		ID: "mac-address", Category: PII, Tags: tags(TagGDPR), Description: "MAC (EUI-48) hardware address",
		Confidence: 0.7, special: ':', minLen: 12, maxLen: 12, needsSep: true,
		group: func(c *cand) float64 {
			if !shape(c.raw, "hh-hh-hh-hh-hh-hh") || sameBytes(c.norm) {
				return 0
			}
			return 0.7
		},
		anchor: func(b []byte, i int) (int, int, float64) {
			s := i - 2
			if s < 0 || i+15 > len(b) || !shape(b[s:s+17], "hh:hh:hh:hh:hh:hh") {
				return 0, 0, 0
			}
			if s > 0 && (isAlnum(b[s-1]) || b[s-1] == ':') || s+17 < len(b) && (isAlnum(b[s+17]) || b[s+17] == ':') {
				return 0, 0, 0
			}
			if sameBytes(normAlnum(b[s : s+17])) {
				return 0, 0, 0
			}
			return s, s + 17, 0.7
		},
		gen: func(r *rand.Rand) (string, string) {
			sep := pick(r, ":", "-")
			v := ""
			for k := range 6 {
				if k > 0 {
					v += sep
				}
				v += fromSet(r, "0123456789ABCDEF", 2)
			}
			return "hwaddr ", v
		},
		near: fixedNear("hwaddr 00:00:00:00:00:00", "t 12:34:56:78", "00:1A:2B:3C:4D:5E:6F"),
	})
	register(&Detector{
		ID: "date-of-birth", Category: PII, Tags: tags(TagGDPR, TagHIPAA), Description: "Date of birth, next to its keyword",
		Confidence: 0.8, keywords: []string{"dob", "birth", "born", "birthday", "birthdate", "dateofbirth", "geburtsdatum", "nacimiento", "naissance"},
		kw: kwValue(32, func(v []byte) float64 {
			if _, _, _, ok := dateValue(v); ok {
				return 0.8
			}
			return 0
		}),
		gen: func(r *rand.Rand) (string, string) {
			y, m, d := randDate(r)
			return pick(r, "DOB: ", "date of birth ", "\"birthDate\": \""), pick(r, strconv.Itoa(y)+"-"+two(m)+"-"+two(d), two(d)+"/"+two(m)+"/"+strconv.Itoa(y))
		},
		near: fixedNear("DOB: 1985-13-45", "created 2024-01-15", "born 31/02/1990"),
	})
	register(&Detector{
		ID: "passport-number", Category: PII, Tags: tags(TagGDPR), Description: "Passport number, next to its keyword",
		Confidence: 0.8, keywords: []string{"passport", "passportno", "passportnumber", "reisepass", "pasaporte", "passeport"},
		kw: kwValue(32, func(v []byte) float64 {
			if len(v) < 6 || len(v) > 9 || !allIn(v, func(c byte) bool { return isUpper(c) || isDigit(c) }) {
				return 0
			}
			dg := 0
			for _, c := range v {
				if isDigit(c) {
					dg++
				}
			}
			if dg < 5 {
				return 0
			}
			return 0.8
		}),
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "passport no ", "Passport: ", "\"passportNumber\": \""), pick(r, digits(r, 9), "C0"+fromSet(r, "123456789", 5)+"K")
		},
		near: fixedNear("passport: expired", "passport photo 12", "passport: 1234"),
	})
	register(&Detector{
		ID: "driver-license", Category: PII, Tags: tags(TagGDPR), Description: "Driver licence number, next to its keyword",
		Confidence: 0.75, keywords: []string{"licence", "license", "dl", "driving", "dln", "licencenumber", "licensenumber", "führerschein"},
		kw: kwValue(32, func(v []byte) float64 {
			if len(v) < 5 || len(v) > 16 || !allIn(v, func(c byte) bool { return isUpper(c) || isDigit(c) }) {
				return 0
			}
			dg := 0
			for _, c := range v {
				if isDigit(c) {
					dg++
				}
			}
			if dg < 4 {
				return 0
			}
			return 0.75
		}),
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "driver license: ", "driving licence no ", "DL# "), pick(r, "D"+digits(r, 7), fromSet(r, setUpper, 5)+digits(r, 6)+fromSet(r, setUpper, 2)+digits(r, 1))
		},
		near: fixedNear("license: MIT", "license: Apache-2.0", "licence 123"),
	})
}
