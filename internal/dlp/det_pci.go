package dlp

import (
	"math/rand/v2"
	"strings"
)

type cardBrand struct {
	id     string
	name   string
	lens   []int
	ranges [][2]int // inclusive ranges of the 6-digit IIN
	gen    []string // prefixes for generated numbers
}

var cardBrands = []cardBrand{
	{"card-visa", "Visa", []int{13, 16, 19}, [][2]int{{400000, 499999}}, []string{"4"}},
	{"card-mastercard", "Mastercard", []int{16}, [][2]int{{510000, 559999}, {222100, 272099}}, []string{"51", "55", "2221", "2720"}},
	{"card-amex", "American Express", []int{15}, [][2]int{{340000, 349999}, {370000, 379999}}, []string{"34", "37"}},
	{"card-discover", "Discover", []int{16, 19}, [][2]int{{601100, 601199}, {644000, 649999}, {650000, 650001}, {650028, 652149}, {653150, 659999}}, []string{"6011", "644", "659"}},
	{"card-jcb", "JCB", []int{16, 17, 18, 19}, [][2]int{{352800, 358999}}, []string{"3528", "3589"}},
	{"card-diners", "Diners Club", []int{14, 16}, [][2]int{{300000, 305999}, {360000, 369999}, {380000, 399999}}, []string{"300", "36", "38"}},
	{"card-unionpay", "UnionPay", []int{16, 17, 18, 19}, [][2]int{{620000, 629999}, {810000, 817199}}, []string{"620", "624", "628", "8100"}},
	{"card-maestro", "Maestro", []int{12, 13, 15, 16, 19}, [][2]int{{501800, 501899}, {502000, 502099}, {503800, 503899}, {589300, 589399}, {630400, 630499}, {675900, 675999}, {676100, 676399}}, []string{"5018", "6304", "6759"}},
	{"card-mir", "Mir", []int{16, 17, 18, 19}, [][2]int{{220000, 220499}}, []string{"2200", "2204"}},
	{"card-rupay", "RuPay", []int{16}, [][2]int{{508500, 508999}, {606985, 607984}, {608001, 608500}, {652150, 653149}}, []string{"5085", "6070", "6522"}},
	{"card-verve", "Verve", []int{16, 19}, [][2]int{{506099, 506198}, {650002, 650027}}, []string{"50610", "65001"}},
}

func (cb *cardBrand) matches(d []byte) bool {
	okLen := false
	for _, l := range cb.lens {
		if l == len(d) {
			okLen = true
		}
	}
	if !okLen {
		return false
	}
	iin := num(d[:6])
	for _, r := range cb.ranges {
		if iin >= r[0] && iin <= r[1] {
			return true
		}
	}
	return false
}

// cardLayout accepts a card number written plain, in groups of four (the
// last one shorter), or 4-6-5 / 4-6-4 (Amex, Diners), with single
// separators: spaces, hyphens or dots, mixed or not ("4111.1111-1111 1111"
// is a card written to slip past a filter).
func cardLayout(c *cand) bool {
	if len(c.raw) == len(c.norm) {
		return true
	}
	for _, b := range c.raw {
		if b == '/' {
			return false
		}
	}
	n := len(c.norm)
	if n == 15 && cardGrouped(c.raw, 4, 6, 5) || n == 14 && cardGrouped(c.raw, 4, 6, 4) {
		return true
	}
	var sizes [5]int
	k := 0
	for r := n; r > 0 && k < len(sizes); r -= 4 {
		sizes[k] = min(4, r)
		k++
	}
	return cardGrouped(c.raw, sizes[:k]...)
}

// cardGrouped reports whether raw is digit groups of the given sizes
// joined by single separators.
func cardGrouped(raw []byte, sizes ...int) bool {
	p := 0
	for gi, sz := range sizes {
		for k := 0; k < sz; k++ {
			if p >= len(raw) || !isDigit(raw[p]) {
				return false
			}
			p++
		}
		if gi < len(sizes)-1 {
			if p >= len(raw) || isAlnum(raw[p]) {
				return false
			}
			p++
		}
	}
	return p == len(raw)
}

// routeCard finds the brand of a card number candidate and validates it.
func routeCard(c *cand) (*Detector, float64) {
	if c.norm[0] < '2' || c.norm[0] > '8' || !cardLayout(c) {
		return nil, 0
	}
	for i := range cardBrands {
		cb := &cardBrands[i]
		if cb.matches(c.norm) {
			if !luhn(c.norm) {
				return nil, 0
			}
			conf := 0.9
			if len(c.norm) == 13 {
				conf = 0.55 // rare today; collides with 13-digit national ids
			}
			return byID[cb.id], conf
		}
	}
	return nil, 0
}

func genCard(r *rand.Rand, cb *cardBrand) string {
	for {
		l := cb.lens[r.IntN(len(cb.lens))]
		p := pick(r, cb.gen...)
		s := p + digits(r, l-1-len(p))
		s += string(luhnDigit([]byte(s)))
		if cb.matches([]byte(s)) {
			return s
		}
	}
}

func formatCard(r *rand.Rand, s string) string {
	switch r.IntN(4) {
	case 0:
		return s
	case 1, 2:
		sep := pick(r, " ", "-")
		if len(s) == 15 {
			return groupDigits(s, sep, 4, 6, 5)
		}
		var sizes []int
		for n := len(s); n > 0; n -= 4 {
			sizes = append(sizes, min(4, n))
		}
		return groupDigits(s, sep, sizes...)
	default:
		return s
	}
}

// cardContext names a card or a card brand, in English and in the
// languages of the major card markets (Kartennummer, numéro de carte,
// tarjeta, cartão).
var cardContext = []string{"card", "credit", "debit", "cc", "pan", "payment", "cardnumber",
	"visa", "mastercard", "amex", "maestro", "discover", "jcb", "diners", "unionpay", "rupay", "verve",
	"karte", "kartennummer", "kreditkarte", "kreditkartennummer", "carte", "tarjeta", "cartao", "cartão", "carta"}

// cardNegative names other long numbers: product codes, and (marked "^":
// only as the value's own label, the word right before it or its JSON key)
// the counters and stamps of machine data, a build or version number, an
// epoch timestamp, a sequence number, which pass Luhn one time in ten.
var cardNegative = []string{"tracking", "isbn", "imei", "serial", "ean", "upc", "seed", "nonce", "hash", "checksum", "random",
	"^build", "^version", "^revision", "^timestamp", "^epoch", "^sequence", "^offset"}

func init() {
	for i := range cardBrands {
		cb := &cardBrands[i]
		d := &Detector{
			ID: cb.id, Category: PCI, Tags: tags(TagPCI), Description: cb.name + " payment card number (brand range, length, Luhn)",
			Confidence: 0.9, Context: cardContext, Negative: cardNegative, via: "card-visa", longIDs: true,
			gen: func(r *rand.Rand) (string, string) {
				return pick(r, "card: ", "paid with ", "", "PAN="), formatCard(r, genCard(r, cb))
			},
			near: func(r *rand.Rand) string { return "card: " + bump(genCard(r, cb)) },
		}
		if i == 0 {
			// one router for every brand: a candidate is looked at once
			d.via = ""
			d.minLen, d.maxLen, d.digitsOnly = 12, 19, true
			d.groupRoute = routeCard
		}
		register(d)
	}

	// Track 1: %B<PAN>^<NAME>^<YYMM><service code>...?
	track1 := func(b []byte, i int) (int, int, float64) {
		p := i
		if b[p] == '%' {
			p++
		}
		if p >= len(b) || b[p] != 'B' {
			return 0, 0, 0
		}
		p++
		ps := p
		for p < len(b) && isDigit(b[p]) && p-ps <= 19 {
			p++
		}
		if p-ps < 12 || p-ps > 19 || !luhn(b[ps:p]) || p >= len(b) || b[p] != '^' {
			return 0, 0, 0
		}
		p++
		ns := p
		for p < len(b) && b[p] != '^' && p-ns <= 26 && b[p] >= ' ' && b[p] != '"' {
			p++
		}
		if p-ns < 2 || p >= len(b) || b[p] != '^' {
			return 0, 0, 0
		}
		p++
		if len(b)-p < 7 || !allDigits(b[p:p+7]) {
			return 0, 0, 0
		}
		p += 7
		for p < len(b) && p-i < 79 && b[p] != '?' && b[p] >= ' ' && b[p] != '"' {
			p++
		}
		if p < len(b) && b[p] == '?' {
			p++
		}
		return i, p, 0.95
	}
	// Track 2: ;<PAN>=<YYMM><service code>...?
	track2 := func(b []byte, i int) (int, int, float64) {
		// i is at '='; walk back over the PAN.
		s := i
		for s > 0 && isDigit(b[s-1]) && i-s <= 19 {
			s--
		}
		if i-s < 12 || i-s > 19 || !luhn(b[s:i]) || (s > 0 && isAlnum(b[s-1])) {
			return 0, 0, 0
		}
		p := i + 1
		if len(b)-p < 7 || !allDigits(b[p:p+7]) {
			return 0, 0, 0
		}
		p += 7
		for p < len(b) && isDigit(b[p]) && p-s < 40 {
			p++
		}
		if s > 0 && b[s-1] == ';' {
			s--
		}
		if p < len(b) && b[p] == '?' {
			p++
		}
		return s, p, 0.95
	}
	genTrack1 := func(r *rand.Rand) (string, string) {
		pan := genCard(r, &cardBrands[0])
		return "swipe ", "%B" + pan + "^DOE/JANE^" + "2812" + "101" + digits(r, 12) + "?"
	}
	register(&Detector{
		ID: "track1-data", Category: PCI, Tags: tags(TagPCI), Description: "Magnetic stripe track 1 data (PAN with Luhn, name, expiry, service code)",
		Confidence: 0.95, special: '%', anchor: track1, gen: genTrack1,
		near: func(r *rand.Rand) string {
			return "%B" + bump(genCard(r, &cardBrands[0])) + "^DOE/JANE^2812101000?"
		},
	})
	register(&Detector{
		ID: "track2-data", Category: PCI, Tags: tags(TagPCI), Description: "Magnetic stripe track 2 data (PAN with Luhn = expiry and service code)",
		Confidence: 0.95, special: '=', anchor: track2,
		gen: func(r *rand.Rand) (string, string) {
			return "t2 ", ";" + genCard(r, &cardBrands[1]) + "=2812101" + digits(r, 8) + "?"
		},
		near: func(r *rand.Rand) string { return ";" + bump(genCard(r, &cardBrands[1])) + "=2812101123?" },
	})

	register(&Detector{
		ID: "card-cvv", Category: PCI, Tags: tags(TagPCI), Description: "Card verification value (CVV/CVC/CID), only next to its keyword",
		Confidence: 0.8, keywords: []string{"cvv", "cvc", "cvv2", "cvc2", "cid", "csc", "security code", "card code", "cvn"},
		kw: kwValue(24, func(v []byte) float64 {
			if (len(v) == 3 || len(v) == 4) && allDigits(v) {
				return 0.8
			}
			return 0
		}),
		gen:  func(r *rand.Rand) (string, string) { return pick(r, "CVV: ", "\"cvc\": \"", "cvv2="), digits(r, 3) },
		near: func(r *rand.Rand) string { return pick(r, "CVV: 12345", "room 123", "cvc: 12a") },
	})
	register(&Detector{
		ID: "card-expiry", Category: PCI, Tags: tags(TagPCI), Description: "Card expiry date (MM/YY, MM/YYYY), only next to its keyword",
		Confidence: 0.75, keywords: []string{"exp", "expiry", "expiration", "expires", "exp date", "thru", "expiry date"},
		kw: kwValue(24, func(v []byte) float64 {
			if !shape(v, "dd/dd", "dd/dddd", "dd-dd", "dd-dddd", "dd.dd") {
				return 0
			}
			if m := num(v[:2]); m < 1 || m > 12 {
				return 0
			}
			return 0.75
		}),
		gen: func(r *rand.Rand) (string, string) {
			m := 1 + r.IntN(12)
			mm := string([]byte{byte('0' + m/10), byte('0' + m%10)})
			return pick(r, "exp ", "Expiry: ", "valid thru "), mm + pick(r, "/28", "/2029", "-27")
		},
		near: func(r *rand.Rand) string { return pick(r, "expiry: 13/28", "exp 00/27", "meeting 12/28") },
	})
}

// tsv helper for other files
func splitFields(s string) []string { return strings.Fields(s) }
