package dlp

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

var ibanLengths = func() map[string]int {
	m := map[string]int{}
	for _, f := range strings.Fields(`AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24
	DE22 DK18 DO28 EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23
	IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 NO15
	PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22
	VG24 XK20
	AX18 GF27 GP27 LY25 MF27 MN20 MQ27 NC27 NI28 OM23 PF27 PM27 RE27 RU33 SD18 SO23 TF27 WF27 YE30 YT27
	BI27 DJ27 FK18 HN28 IR26
	AO25 BF28 BJ28 BL27 CF27 CG27 CI28 CM27 CV25 DZ26 GA27 GQ27 GW25 KM27 MA28 MG27 ML28 MZ25 NE28 SN28
	TD27 TG28`) { // the SWIFT registry, then national IBANs outside it (Iran, the franc zones, …)
		n, _ := strconv.Atoi(f[2:])
		m[f[:2]] = n
	}
	return m
}()

// afterKind reports whether the word ending before b[i] (one separator
// between) is "checking" or "savings": a "checking account 7692330170".
func afterKind(b []byte, i int) bool {
	if i < 1 || (b[i-1] != ' ' && b[i-1] != '_' && b[i-1] != '-') {
		return false
	}
	j := i - 1
	k := j
	for k > 0 && isAlpha(b[k-1]) && j-k < 8 {
		k--
	}
	w := string(bytesLower(b[k:j]))
	return (w == "checking" || w == "savings") && (k == 0 || !isAlpha(b[k-1]))
}

func validIBAN(n []byte) bool {
	if len(n) < 15 || len(n) > 34 || !isUpper(n[0]) || !isUpper(n[1]) || !isDigit(n[2]) || !isDigit(n[3]) {
		return false
	}
	if ibanLengths[string(n[:2])] != len(n) {
		return false
	}
	for _, c := range n[4:] {
		if !isDigit(c) && !isUpper(c) {
			return false
		}
	}
	var buf [34]byte
	r := append(append(buf[:0], n[4:]...), n[:4]...)
	return mod97(r) == 1
}

func genIBAN(r *rand.Rand) string {
	cc := pick(r, "DE", "GB", "FR", "ES", "IT", "NL", "BE", "CH", "PL", "SE", "NO", "AT", "IE", "PT", "FI")
	l := ibanLengths[cc]
	bban := digits(r, l-4)
	if cc == "GB" || cc == "NL" || cc == "IE" {
		bban = fromSet(r, setUpper, 4) + digits(r, l-8)
	}
	chk := 98 - mod97([]byte(bban+cc+"00"))
	return cc + string([]byte{byte('0' + chk/10), byte('0' + chk%10)}) + bban
}

func spaced4(s string) string {
	var parts []string
	for len(s) > 4 {
		parts = append(parts, s[:4])
		s = s[4:]
	}
	return strings.Join(append(parts, s), " ")
}

var isoCountries = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`AD AE AF AG AI AL AM AO AR AS AT AU AW AZ BA BB BD BE BF BG BH BI BJ BM BN BO BR BS BT BW BY BZ
	CA CD CF CG CH CI CK CL CM CN CO CR CU CV CY CZ DE DJ DK DM DO DZ EC EE EG ER ES ET FI FJ FM FO FR GA GB GD GE GG GH GI GL GM GN
	GQ GR GT GU GW GY HK HN HR HT HU ID IE IL IM IN IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT
	LU LV LY MA MC MD ME MG MH MK ML MM MN MO MR MS MT MU MV MW MX MY MZ NA NE NG NI NL NO NP NR NZ OM PA PE PG PH PK PL PR PS PT PW
	PY QA RO RS RU RW SA SB SC SD SE SG SI SK SL SM SN SO SR SS ST SV SY SZ TC TD TG TH TJ TL TM TN TO TR TT TV TW TZ UA UG US UY UZ
	VA VC VE VG VI VN VU WS XK YE ZA ZM ZW
	AQ AX BL BQ BV CC CW CX EH FK GF GP GS HM IO MF MP MQ NC NF NU PF PM PN RE SH SJ SX TF TK UM WF YT`) {
		m[c] = true
	}
	return m
}()

func abaValid(d []byte) bool {
	if len(d) != 9 || !allDigits(d) {
		return false
	}
	p := num(d[:2])
	if !(p <= 12 || (p >= 21 && p <= 32) || (p >= 61 && p <= 72) || p == 80) {
		return false
	}
	return weighted(d, []int{3, 7, 1, 3, 7, 1, 3, 7, 1})%10 == 0
}

func genABA(r *rand.Rand) string {
	return genRetry(r, func() string { return pick(r, "0", "1", "2") + digits(r, 8) }, func(s string) bool { return abaValid([]byte(s)) })
}

var usAcctKW = kwValue(32, func(v []byte) float64 {
	if len(v) >= 8 && len(v) <= 17 && allDigits(v) {
		return 0.7
	}
	return 0
})

func bytesLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = lowerByte(c)
	}
	return out
}

func init() {
	register(&Detector{
		ID: "iban", Category: Banking, Tags: tags(TagPCI, TagGDPR), Description: "International Bank Account Number (per-country length, mod 97)",
		Confidence: 0.95, Context: []string{"iban", "account", "bank", "transfer"},
		minLen: 15, maxLen: 34,
		group: func(c *cand) float64 {
			if !validIBAN(c.norm) {
				return 0
			}
			if len(c.raw) != len(c.norm) && (!uniformSeps(c.raw) || c.raw[4] != ' ' && c.raw[4] != '-') {
				return 0
			}
			return 0.95
		},
		gen: func(r *rand.Rand) (string, string) {
			v := genIBAN(r)
			if r.IntN(2) == 0 {
				v = spaced4(v)
			}
			return pick(r, "IBAN: ", "pay to ", ""), v
		},
		near: func(r *rand.Rand) string { return "IBAN " + bump(genIBAN(r)) },
	})
	register(&Detector{
		ID: "aba-routing", Category: Banking, Tags: tags(TagPCI), Description: "US ABA routing transit number (prefix ranges, 3-7-1 checksum), next to its keyword",
		Confidence: 0.85, keywords: []string{"routing", "aba", "rtn", "transit", "routingnumber"},
		kw: kwValue(32, func(v []byte) float64 {
			if abaValid(v) {
				return 0.85
			}
			return 0
		}),
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "routing number: ", "ABA ", "\"routingNumber\": \""), genABA(r)
		},
		near: func(r *rand.Rand) string { return "routing number: " + bump(genABA(r)) },
	})
	register(&Detector{
		ID: "swift-bic", Category: Banking, Tags: tags(TagPCI), Description: "SWIFT/BIC code (bank, ISO country, location, branch), next to its keyword",
		Confidence: 0.8, keywords: []string{"swift", "bic", "swiftcode", "bicswift"},
		kw: kwValue(24, func(v []byte) float64 {
			if (len(v) != 8 && len(v) != 11) || !allIn(v[:4], isUpper) || !isoCountries[string(v[4:6])] || !allIn(v[6:], func(c byte) bool { return isUpper(c) || isDigit(c) }) {
				return 0
			}
			return 0.8
		}),
		gen:  fixed("SWIFT: ", "DEUTDEFF", "NWBKGB2L", "BNPAFRPPXXX", "CHASUS33", "COBADEFF600"),
		near: fixedNear("SWIFT: DEUTQQFF", "bic: DEUT", "SWIFT: deutdeff"),
	})
	register(&Detector{
		ID: "uk-sort-code", Category: Banking, Tags: tags(TagPCI, TagGDPR), Description: "UK bank sort code, next to its keyword",
		Confidence: 0.75, keywords: []string{"sort", "sortcode"},
		kw: kwValue(24, func(v []byte) float64 {
			if shape(v, "dd-dd-dd", "dd dd dd", "dddddd") {
				return 0.75
			}
			return 0
		}),
		gen:  func(r *rand.Rand) (string, string) { return "sort code ", groupDigits(digits(r, 6), "-", 2, 2, 2) },
		near: fixedNear("sort code 12-34-5", "sorted 12-34-56 items", "sort code 1234-56"),
	})
	register(&Detector{
		ID: "uk-bank-account", Category: Banking, Tags: tags(TagPCI, TagGDPR), Description: "UK sort code followed by an 8-digit account number",
		Confidence: 0.6, Context: []string{"account", "sort", "bank", "acct"},
		minLen: 14, maxLen: 14, digitsOnly: true, needsSep: true,
		group: func(c *cand) float64 {
			if shape(c.raw, "dd-dd-dd dddddddd", "dd-dd-dd-dddddddd", "dd dd dd dddddddd") {
				return 0.6
			}
			return 0
		},
		gen: func(r *rand.Rand) (string, string) {
			return "acct ", groupDigits(digits(r, 6), "-", 2, 2, 2) + " " + digits(r, 8)
		},
		near: func(r *rand.Rand) string { return "ref 12-34-56 1234567" },
	})
	register(&Detector{
		ID: "us-bank-account", Category: Banking, Tags: tags(TagPCI), Description: "US bank account number (8-17 digits), next to its keyword",
		Confidence: 0.7, keywords: []string{"accountnumber", "acct", "account", "accountno"},
		kw: func(b []byte, from int) (int, int, float64) {
			// bare "account" must be followed by "number", "no" or "#", or
			// follow "checking" or "savings"
			if from >= 7 && lowerByte(b[from-7]) == 'a' && string(bytesLower(b[from-7:from])) == "account" && !afterKind(b, from-7) {
				p := from
				for p < len(b) && (b[p] == ' ' || b[p] == '_' || b[p] == '-') {
					p++
				}
				rest := bytesLower(b[p:min(len(b), p+6)])
				switch {
				case len(rest) >= 6 && string(rest[:6]) == "number":
					from = p + 6
				case len(rest) >= 2 && string(rest[:2]) == "no" && (len(rest) == 2 || !isAlpha(rest[2])):
					from = p + 2
				case len(rest) >= 1 && rest[0] == '#':
					from = p + 1
				default:
					return 0, 0, 0
				}
			}
			return usAcctKW(b, from)
		},
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "account number: ", "acct# "), digits(r, 8+r.IntN(6))
		},
		near: fixedNear("account number: 1234567", "account balance 12"),
	})
	register(&Detector{
		ID: "au-bsb", Category: Banking, Tags: tags(TagPCI), Description: "Australian BSB number, next to its keyword",
		Confidence: 0.75, keywords: []string{"bsb"},
		kw: kwValue(20, func(v []byte) float64 {
			if shape(v, "ddd-ddd", "dddddd", "ddd ddd") {
				return 0.75
			}
			return 0
		}),
		gen:  func(r *rand.Rand) (string, string) { return "BSB: ", digits(r, 3) + "-" + digits(r, 3) },
		near: fixedNear("BSB: 12-345", "bsb 1234567"),
	})
	register(&Detector{
		ID: "in-ifsc", Category: Banking, Tags: tags(TagPCI), Description: "Indian IFSC bank branch code, next to its keyword",
		Confidence: 0.8, keywords: []string{"ifsc", "ifsccode"},
		kw: kwValue(20, func(v []byte) float64 {
			if shape(v, "AAAA0XXXXXX") {
				return 0.8
			}
			return 0
		}),
		gen:  fixed("IFSC: ", "SBIN0001234", "HDFC0000123", "ICIC0006789"),
		near: fixedNear("IFSC: SBIN1001234", "IFSC: SBI00012345"),
	})
}
