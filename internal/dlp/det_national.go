package dlp

import (
	"math/rand/v2"
	"strconv"
)

// idSpec is a national identifier recognised from a group candidate.
type idSpec struct {
	id, desc     string
	tags         []string
	min, max     int
	digitsOnly   bool
	context      []string
	formatted    float64 // confidence when written in its usual layout
	plain        float64 // confidence when written as a bare run
	layout       func(c *cand) bool
	valid        func(n []byte) bool
	gen          func(r *rand.Rand) string // a valid normalized value
	format       func(r *rand.Rand, v string) string
	nearOverride func(r *rand.Rand) string
}

func regID(sp idSpec) {
	if sp.tags == nil {
		sp.tags = tags(TagGDPR)
	}
	d := &Detector{
		ID: sp.id, Category: NationalID, Tags: sp.tags, Description: sp.desc,
		Confidence: sp.formatted, Context: sp.context, Negative: []string{"tracking", "phone", "tel", "fax", "isbn", "timestamp", "ts", "epoch", "millis", "created", "updated", "seed", "nonce", "hash", "checksum"},
		minLen: sp.min, maxLen: sp.max, digitsOnly: sp.digitsOnly,
	}
	d.group = func(c *cand) float64 {
		if c.pre == '+' || !sp.valid(c.norm) { // +… is a phone number
			return 0
		}
		if false {
			return 0
		}
		if len(c.raw) == len(c.norm) {
			return sp.plain
		}
		if sp.layout != nil && sp.layout(c) {
			return sp.formatted
		}
		return 0
	}
	ctx := sp.context[0] + ": "
	d.gen = func(r *rand.Rand) (string, string) {
		v := sp.gen(r)
		if sp.format != nil && r.IntN(3) > 0 {
			v = sp.format(r, v)
		}
		return ctx, v
	}
	d.near = func(r *rand.Rand) string {
		if sp.nearOverride != nil {
			return sp.nearOverride(r)
		}
		return ctx + bump(sp.gen(r))
	}
	register(d)
}

func grouped(sizes ...int) func(c *cand) bool {
	return func(c *cand) bool { return plainOrGrouped(c, sizes...) }
}

func rawIs(pats ...string) func(c *cand) bool {
	return func(c *cand) bool { return shape(c.raw, pats...) }
}

func dateOK(yy, mm, dd int) bool { return validDate(yy, mm, dd) }

func two(n int) string { return string([]byte{byte('0' + n/10%10), byte('0' + n%10)}) }

// randDate returns a plausible birth date.
func randDate(r *rand.Rand) (y, m, d int) {
	return 1940 + r.IntN(65), 1 + r.IntN(12), 1 + r.IntN(28)
}

// fill draws random payloads until the check function yields a valid value.
func fill(r *rand.Rand, mk func() string, valid func([]byte) bool) string {
	return genRetry(r, mk, func(s string) bool { return valid([]byte(s)) })
}

func ssnValid(n []byte) bool {
	a, g, s := num(n[:3]), num(n[3:5]), num(n[5:])
	if a == 0 || a == 666 || a >= 900 || g == 0 || s == 0 {
		return false
	}
	v := string(n)
	return v != "078051120" && v != "219099999" && v != "123456789"
}

func nhsValid(n []byte) bool {
	s := weighted(n, []int{10, 9, 8, 7, 6, 5, 4, 3, 2})
	c := 11 - s%11
	if c == 11 {
		c = 0
	}
	return c != 10 && c == dv(n[9])
}

func ninoValid(n []byte) bool {
	if !shape(n, "AAddddddA") {
		return false
	}
	a, b := n[0], n[1]
	if bytesIn(a, "DFIQUV") || bytesIn(b, "DFIOQUV") {
		return false
	}
	switch string(n[:2]) {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return false
	}
	return n[8] >= 'A' && n[8] <= 'D'
}

func bytesIn(c byte, set string) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}

const dniLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

func dniValid(n []byte) bool {
	return shape(n, "ddddddddA") && dniLetters[num(n[:8])%23] == n[8]
}

func nieValid(n []byte) bool {
	if !shape(n, "AdddddddA") || !bytesIn(n[0], "XYZ") {
		return false
	}
	return dniLetters[(int(n[0]-'X')*10000000+num(n[1:8]))%23] == n[8]
}

func cpfValid(n []byte) bool {
	if sameDigits(n) {
		return false
	}
	for k := 9; k <= 10; k++ {
		s := 0
		for i := 0; i < k; i++ {
			s += dv(n[i]) * (k + 1 - i)
		}
		c := s * 10 % 11 % 10
		if c != dv(n[k]) {
			return false
		}
	}
	return true
}

func sameDigits(n []byte) bool {
	for _, c := range n {
		if c != n[0] {
			return false
		}
	}
	return true
}

func cnpjValid(n []byte) bool {
	if len(n) != 14 || !isDigit(n[12]) || !isDigit(n[13]) || sameDigits(n) {
		return false
	}
	for _, c := range n[:12] {
		if !isDigit(c) && !isUpper(c) {
			return false
		}
	}
	w1 := []int{5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	w2 := []int{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	c1 := weighted(n, w1) % 11
	if c1 < 2 {
		c1 = 0
	} else {
		c1 = 11 - c1
	}
	c2 := weighted(n, w2) % 11
	if c2 < 2 {
		c2 = 0
	} else {
		c2 = 11 - c2
	}
	return c1 == dv(n[12]) && c2 == dv(n[13])
}

func aadhaarValid(n []byte) bool { return n[0] >= '2' && verhoeff(n) && !sameDigits(n[:11]) }

func panValid(n []byte) bool {
	return shape(n, "AAAAAddddA") && bytesIn(n[3], "ABCFGHLJPTK")
}

func tfnValid(n []byte) bool {
	return weighted(n, []int{1, 4, 3, 7, 5, 8, 6, 9, 10})%11 == 0 && !sameDigits(n)
}

func abnValid(n []byte) bool {
	if n[0] == '0' {
		return false
	}
	w := []int{10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19}
	s := (dv(n[0]) - 1) * w[0]
	for i := 1; i < 11; i++ {
		s += dv(n[i]) * w[i]
	}
	return s%89 == 0
}

func medicareAUValid(n []byte) bool {
	if n[0] < '2' || n[0] > '6' {
		return false
	}
	return weighted(n, []int{1, 3, 7, 9, 1, 3, 7, 9})%10 == dv(n[8])
}

func peselValid(n []byte) bool {
	c := (10 - weighted(n, []int{1, 3, 7, 9, 1, 3, 7, 9, 1, 3})%10) % 10
	if c != dv(n[10]) {
		return false
	}
	y, m, d := num(n[:2]), num(n[2:4]), num(n[4:6])
	switch {
	case m > 80:
		y, m = 1800+y, m-80
	case m > 60:
		y, m = 2200+y, m-60
	case m > 40:
		y, m = 2100+y, m-40
	case m > 20:
		y, m = 2000+y, m-20
	default:
		y += 1900
	}
	return validDate(y, m, d)
}

const hetuChars = "0123456789ABCDEFHJKLMNPRSTUVWXY"

func hetuValid(raw []byte) bool {
	// DDMMYY C NNN X where C is the century sign.
	if len(raw) != 11 || !allDigits(raw[:6]) || !allDigits(raw[7:10]) || !bytesIn(raw[6], "-+ABCDEFUVWXY") {
		return false
	}
	if !validDate(2000, num(raw[2:4]), num(raw[:2])) {
		return false
	}
	v := num(raw[:6])*1000 + num(raw[7:10])
	return hetuChars[v%31] == raw[10]
}

func rrnValid(n []byte) bool {
	if !validDate(2000, num(n[2:4]), num(n[4:6])) || n[6] < '1' || n[6] > '8' {
		return false
	}
	c := (11 - weighted(n, []int{2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5})%11) % 10
	return c == dv(n[12])
}

func tcknValid(n []byte) bool {
	if n[0] == '0' {
		return false
	}
	odd := dv(n[0]) + dv(n[2]) + dv(n[4]) + dv(n[6]) + dv(n[8])
	even := dv(n[1]) + dv(n[3]) + dv(n[5]) + dv(n[7])
	if ((odd*7-even)%10+10)%10 != dv(n[9]) {
		return false
	}
	s := 0
	for i := 0; i < 10; i++ {
		s += dv(n[i])
	}
	return s%10 == dv(n[10])
}

func steuerIDValid(n []byte) bool {
	if n[0] == '0' {
		return false
	}
	var cnt [10]int
	for _, c := range n[:10] {
		cnt[dv(c)]++
	}
	multi, zeros := 0, 0
	for _, k := range cnt {
		switch {
		case k == 0:
			zeros++
		case k > 3:
			return false
		case k > 1:
			multi++
		}
	}
	if multi != 1 || (zeros != 1 && zeros != 2) {
		return false
	}
	p := 10
	for _, c := range n[:10] {
		s := (dv(c) + p) % 10
		if s == 0 {
			s = 10
		}
		p = s * 2 % 11
	}
	c := 11 - p
	if c == 10 {
		c = 0
	}
	return c == dv(n[10])
}

var cfOdd = [36]int{1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23}

func cfVal(c byte) int {
	if isDigit(c) {
		return int(c - '0')
	}
	return int(c-'A') + 10
}

func codiceFiscaleValid(n []byte) bool {
	// omocodia letters may replace digits
	if len(n) != 16 || !shape(n, "AAAAAAXXAXXAXXXA") || !bytesIn(n[8], "ABCDEHLMPRST") {
		return false
	}
	s := 0
	for i := 0; i < 15; i++ {
		v := cfVal(n[i])
		if i%2 == 0 {
			s += cfOdd[v]
		} else if isDigit(n[i]) {
			s += v
		} else {
			s += int(n[i] - 'A')
		}
	}
	return byte('A'+s%26) == n[15]
}

func bsnValid(n []byte) bool {
	s := weighted(n, []int{9, 8, 7, 6, 5, 4, 3, 2}) - dv(n[8])
	return s%11 == 0 && num(n) > 0 && !sameDigits(n)
}

func nirValid(n []byte) bool {
	if len(n) != 15 || (n[0] != '1' && n[0] != '2') {
		return false
	}
	if m := num(n[3:5]); !(m >= 1 && m <= 12 || m == 20 || m >= 30 && m <= 42 || m >= 50) {
		return false
	}
	body := make([]byte, 13)
	copy(body, n[:13])
	adj := 0
	if body[5] == 'A' || body[5] == 'B' {
		if body[5] == 'A' {
			adj = 1000000
		} else {
			adj = 2000000
		}
		body[5] = '0'
	}
	if !allDigits(body) || !allDigits(n[13:]) {
		return false
	}
	v, _ := strconv.ParseInt(string(body), 10, 64)
	v -= int64(adj)
	return int(97-v%97) == num(n[13:])
}

func cnIDValid(n []byte) bool {
	if len(n) != 18 || !allDigits(n[:17]) || !(isDigit(n[17]) || n[17] == 'X') {
		return false
	}
	if !validDate(num(n[6:10]), num(n[10:12]), num(n[12:14])) || num(n[6:8]) < 18 || num(n[6:8]) > 20 {
		return false
	}
	s := weighted(n, []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2})
	return "10X98765432"[s%11] == n[17]
}

func sinValid(n []byte) bool { return n[0] != '0' && n[0] != '8' && luhn(n) && !sameDigits(n) }

func zaIDValid(n []byte) bool {
	return validDate(2000, num(n[2:4]), num(n[4:6])) && (n[10] == '0' || n[10] == '1') && luhn(n)
}

func pnrValid(n []byte) bool {
	d := n
	if len(n) != 10 && len(n) != 12 { // YYMMDDNNNC or YYYYMMDDNNNC, never 11
		return false
	}
	if len(n) == 12 {
		if y := num(n[:2]); y != 18 && y != 19 && y != 20 {
			return false
		}
		d = n[2:]
	}
	m, dd := num(d[2:4]), num(d[4:6])
	if dd > 60 {
		dd -= 60 // samordningsnummer
	}
	return validDate(2000, m, dd) && luhn(d)
}

func fnrValid(n []byte) bool {
	dd := num(n[:2])
	if dd > 40 {
		dd -= 40
	}
	if !validDate(2000, num(n[2:4]), dd) {
		return false
	}
	k1 := 11 - weighted(n, []int{3, 7, 6, 1, 8, 9, 4, 5, 2})%11
	if k1 == 11 {
		k1 = 0
	}
	k2 := 11 - weighted(n, []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2})%11
	if k2 == 11 {
		k2 = 0
	}
	return k1 < 10 && k2 < 10 && k1 == dv(n[9]) && k2 == dv(n[10])
}

func cprValid(n []byte) bool {
	return validDate(2000, num(n[2:4]), num(n[:2])) && weighted(n, []int{4, 3, 2, 7, 6, 5, 4, 3, 2, 1})%11 == 0
}

func beNNValid(n []byte) bool {
	c := num(n[9:])
	b := int64(num(n[:9]))
	if 97-b%97 == int64(c) {
		return validDate(2000, num(n[2:4]), num(n[4:6])) || num(n[2:4]) == 0
	}
	return 97-(2000000000+b)%97 == int64(c)
}

func nifPTValid(n []byte) bool {
	// AT's first digits: 1-3 people, 45 non-residents, 5 companies, 6
	// public bodies, 70-79 estates, funds and assigned numbers, 8 sole
	// traders, 90/91 condominiums, 98/99 non-resident and civil companies
	switch {
	case bytesIn(n[0], "1235689"):
	case n[0] == '4' && n[1] == '5', n[0] == '7' && bytesIn(n[1], "01245789"):
	default:
		return false
	}
	c := 11 - weighted(n, []int{9, 8, 7, 6, 5, 4, 3, 2})%11
	if c >= 10 {
		c = 0
	}
	return c == dv(n[8])
}

func ean13Valid(n []byte) bool {
	s := 0
	for i := 0; i < 12; i++ {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		s += dv(n[i]) * w
	}
	return (10-s%10)%10 == dv(n[12])
}

func ahvValid(n []byte) bool { return string(n[:3]) == "756" && ean13Valid(n) }

const ppsLetters = "WABCDEFGHIJKLMNOPQRSTUV"

func ppsValid(n []byte) bool {
	if !(shape(n, "dddddddA") || shape(n, "dddddddAA")) {
		return false
	}
	s := weighted(n, []int{8, 7, 6, 5, 4, 3, 2})
	if len(n) == 9 && n[8] != 'W' {
		s += (int(n[8]-'A') + 1) * 9
	}
	return ppsLetters[s%23] == n[7]
}

func curpValid(n []byte) bool {
	if !shape(n, "AAAAddddddAAAAAAXd") || (n[10] != 'H' && n[10] != 'M' && n[10] != 'X') {
		return false
	}
	const dict = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"
	s := 0
	for i := 0; i < 17; i++ {
		v := 0
		for k := 0; k < len(dict); k++ {
			if dict[k] == n[i] {
				v = k
				break
			}
		}
		s += v * (18 - i)
	}
	return (10-s%10)%10 == dv(n[17])
}

func rutValid(n []byte) bool {
	body := n[:len(n)-1]
	if n[len(n)-1] == 'k' { // written lower case as often as upper
		n = append(body[:len(body):len(body)], 'K')
	}
	if !allDigits(body) {
		return false
	}
	s, m := 0, 2
	for i := len(body) - 1; i >= 0; i-- {
		s += dv(body[i]) * m
		m++
		if m > 7 {
			m = 2
		}
	}
	c := 11 - s%11
	want := byte('0' + c)
	switch c {
	case 11:
		want = '0'
	case 10:
		want = 'K'
	}
	return n[len(n)-1] == want
}

func nricValid(n []byte) bool {
	if !shape(n, "AdddddddA") || !bytesIn(n[0], "STFGM") {
		return false
	}
	s := weighted(n[1:], []int{2, 7, 6, 5, 4, 3, 2})
	switch n[0] {
	case 'T', 'G':
		s += 4
	case 'M':
		s += 3
	}
	switch n[0] {
	case 'S', 'T':
		return "JZIHGFEDCBA"[s%11] == n[8]
	case 'F', 'G':
		return "XWUTRQPNMLK"[s%11] == n[8]
	default:
		return "KLJNPQRTUWX"[s%11] == n[8]
	}
}

func hkidValid(n []byte) bool {
	var s int
	var body []byte
	switch {
	case shape(n, "Addddddx"):
		s = 36*9 + (int(n[0]-'A')+10)*8
		body = n[1:7]
	case shape(n, "AAddddddx"):
		s = (int(n[0]-'A')+10)*9 + (int(n[1]-'A')+10)*8
		body = n[2:8]
	default:
		return false
	}
	for i, c := range body {
		s += dv(c) * (7 - i)
	}
	c := (11 - s%11) % 11
	last := n[len(n)-1]
	if c == 10 {
		return last == 'A'
	}
	return last == byte('0'+c)
}

func myNumberValid(n []byte) bool {
	s := 0
	for i := 1; i <= 11; i++ {
		p := dv(n[11-i])
		q := i + 1
		if i > 6 {
			q = i - 5
		}
		s += p * q
	}
	c := 0
	if s%11 > 1 {
		c = 11 - s%11
	}
	return c == dv(n[11])
}

func roCNPValid(n []byte) bool {
	if n[0] < '1' || n[0] > '8' {
		return false
	}
	if !validDate(2000, num(n[3:5]), num(n[5:7])) {
		return false
	}
	c := weighted(n, []int{2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9}) % 11
	if c == 10 {
		c = 1
	}
	return c == dv(n[12])
}

func egnValid(n []byte) bool {
	m := num(n[2:4])
	if m > 40 {
		m -= 40
	} else if m > 20 {
		m -= 20
	}
	if !validDate(2000, m, num(n[4:6])) {
		return false
	}
	c := weighted(n, []int{2, 4, 8, 5, 10, 9, 7, 3, 6}) % 11
	if c == 10 {
		c = 0
	}
	return c == dv(n[9])
}

func rodneValid(n []byte) bool {
	m := num(n[2:4])
	switch {
	case m > 70:
		m -= 70
	case m > 50:
		m -= 50
	case m > 20:
		m -= 20
	}
	if !validDate(2000, m, num(n[4:6])) {
		return false
	}
	v, _ := strconv.ParseInt(string(n), 10, 64)
	if v%11 == 0 {
		return true
	}
	f, _ := strconv.ParseInt(string(n[:9]), 10, 64)
	return f%11 == 10 && n[9] == '0'
}

func isikukoodValid(n []byte) bool {
	if n[0] < '1' || n[0] > '6' || !validDate(2000, num(n[3:5]), num(n[5:7])) {
		return false
	}
	c := weighted(n, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 1}) % 11
	if c == 10 {
		c = weighted(n, []int{3, 4, 5, 6, 7, 8, 9, 1, 2, 3}) % 11
		if c == 10 {
			c = 0
		}
	}
	return c == dv(n[10])
}

func init() {
	regID(idSpec{id: "us-ssn", desc: "US Social Security Number (SSA area/group/serial rules)", tags: tags(TagGDPR, TagSOC2, TagHIPAA),
		min: 9, max: 9, digitsOnly: true, context: []string{"ssn", "social", "security", "ss"},
		formatted: 0.8, plain: 0.35, layout: rawIs("ddd-dd-dddd", "ddd dd dddd"),
		valid: func(n []byte) bool { return ssnValid(n) && n[0] != '9' },
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return digits(r, 9) }, func(n []byte) bool { return ssnValid(n) && n[0] != '9' })
		},
		format:       func(r *rand.Rand, v string) string { return groupDigits(v, "-", 3, 2, 4) },
		nearOverride: fixedNear("ssn: 000-12-3456", "ssn: 666-12-3456", "ssn: 123-00-4567", "id 912-45-6789x"),
	})
	regID(idSpec{id: "us-itin", desc: "US Individual Taxpayer Identification Number (9xx, group 50-65/70-88/90-92/94-99)", tags: tags(TagGDPR, TagSOC2),
		min: 9, max: 9, digitsOnly: true, context: []string{"itin", "taxpayer", "tax"},
		formatted: 0.8, plain: 0.35, layout: rawIs("ddd-dd-dddd", "ddd dd dddd"),
		valid: func(n []byte) bool {
			g := num(n[3:5])
			return n[0] == '9' && (g >= 50 && g <= 65 || g >= 70 && g <= 88 || g >= 90 && g <= 92 || g >= 94)
		},
		gen:          func(r *rand.Rand) string { return "9" + digits(r, 2) + two(70+r.IntN(18)) + digits(r, 4) },
		format:       func(r *rand.Rand, v string) string { return groupDigits(v, "-", 3, 2, 4) },
		nearOverride: fixedNear("itin: 912-45-6789", "itin: 900-93-1234"),
	})
	regID(idSpec{id: "uk-nhs", desc: "UK NHS number (mod 11)", tags: tags(TagGDPR, TagHIPAA),
		min: 10, max: 10, digitsOnly: true, context: []string{"nhs", "health", "patient"},
		formatted: 0.75, plain: 0.4, layout: grouped(3, 3, 4), valid: nhsValid,
		gen:    func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 10) }, nhsValid) },
		format: func(r *rand.Rand, v string) string { return groupDigits(v, " ", 3, 3, 4) },
	})
	regID(idSpec{id: "uk-nino", desc: "UK National Insurance number (prefix rules, suffix A-D)",
		min: 9, max: 9, context: []string{"nino", "insurance", "ni"},
		formatted: 0.8, plain: 0.8, layout: rawIs("AA dd dd dd A", "AA-dd-dd-dd-A"), valid: ninoValid,
		gen: func(r *rand.Rand) string {
			return pick(r, "AB", "CE", "JH", "SK", "WP") + digits(r, 6) + pick(r, "A", "B", "C", "D")
		},
		format: func(r *rand.Rand, v string) string {
			return v[:2] + " " + v[2:4] + " " + v[4:6] + " " + v[6:8] + " " + v[8:]
		},
		nearOverride: fixedNear("nino: QQ123456C", "nino: AB123456E", "nino: GB123456A"),
	})
	regID(idSpec{id: "es-dni", desc: "Spanish DNI (8 digits + mod 23 letter)",
		min: 9, max: 9, context: []string{"dni", "nif", "documento"},
		formatted: 0.85, plain: 0.85, layout: rawIs("dddddddd-A", "dddddddd A"), valid: dniValid,
		gen: func(r *rand.Rand) string {
			d := digits(r, 8)
			return d + string(dniLetters[num([]byte(d))%23])
		},
		nearOverride: func(r *rand.Rand) string {
			d := digits(r, 8)
			return "dni: " + d + string(dniLetters[(num([]byte(d))+1)%23])
		},
	})
	regID(idSpec{id: "es-nie", desc: "Spanish NIE (X/Y/Z + 7 digits + mod 23 letter)",
		min: 9, max: 9, context: []string{"nie", "extranjero"},
		formatted: 0.85, plain: 0.85, layout: rawIs("A-ddddddd-A", "Addddddd-A"), valid: nieValid,
		gen: func(r *rand.Rand) string {
			p := pick(r, "X", "Y", "Z")
			d := digits(r, 7)
			return p + d + string(dniLetters[(int(p[0]-'X')*10000000+num([]byte(d)))%23])
		},
		nearOverride: fixedNear("nie: X1234567A", "nie: W1234567L"),
	})
	regID(idSpec{id: "br-cpf", desc: "Brazilian CPF (two mod 11 check digits)",
		min: 11, max: 11, digitsOnly: true, context: []string{"cpf"},
		formatted: 0.9, plain: 0.45, layout: rawIs("ddd.ddd.ddd-dd"), valid: cpfValid,
		gen: func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 11) }, cpfValid) },
		format: func(r *rand.Rand, v string) string {
			return v[:3] + "." + v[3:6] + "." + v[6:9] + "-" + v[9:]
		},
	})
	// since July 2026 the RFB also issues alphanumeric CNPJs: twelve
	// characters 0-9A-Z, each worth its ASCII code − 48, and the same two
	// mod 11 check digits (IN RFB 2.229/2024)
	regID(idSpec{id: "br-cnpj", desc: "Brazilian CNPJ company number (numeric or alphanumeric, two mod 11 check digits)",
		min: 14, max: 14, context: []string{"cnpj"},
		formatted: 0.9, plain: 0.45, layout: rawIs("XX.XXX.XXX/XXXX-dd"), valid: cnpjValid,
		gen: func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 14) }, cnpjValid) },
		format: func(r *rand.Rand, v string) string {
			return v[:2] + "." + v[2:5] + "." + v[5:8] + "/" + v[8:12] + "-" + v[12:]
		},
	})
	regID(idSpec{id: "in-aadhaar", desc: "Indian Aadhaar number (Verhoeff)",
		min: 12, max: 12, digitsOnly: true, context: []string{"aadhaar", "aadhar", "uid", "uidai"},
		formatted: 0.8, plain: 0.45, layout: grouped(4, 4, 4), valid: aadhaarValid,
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return string('2'+byte(r.IntN(8))) + digits(r, 11) }, aadhaarValid)
		},
		format: func(r *rand.Rand, v string) string { return groupDigits(v, " ", 4, 4, 4) },
	})
	regID(idSpec{id: "in-pan", desc: "Indian Permanent Account Number (holder type letter)",
		min: 10, max: 10, context: []string{"pan", "income", "tax"},
		formatted: 0.75, plain: 0.75, valid: panValid,
		gen: func(r *rand.Rand) string {
			return fromSet(r, setUpper, 3) + pick(r, "P", "C", "H", "F") + fromSet(r, setUpper, 1) + digits(r, 4) + fromSet(r, setUpper, 1)
		},
		nearOverride: fixedNear("pan: ABCDZ1234F", "pan: ABCD1234FF"),
	})
	regID(idSpec{id: "au-tfn", desc: "Australian Tax File Number (weighted mod 11)",
		// "file" alone is everywhere ("the number on file is …"): only the
		// phrase counts, and it names a TFN, so it keeps a SIN away
		min: 9, max: 9, digitsOnly: true, context: []string{"tfn", "tax", "tax file"},
		formatted: 0.45, plain: 0.35, layout: grouped(3, 3, 3), valid: tfnValid,
		gen:    func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 9) }, tfnValid) },
		format: func(r *rand.Rand, v string) string { return groupDigits(v, " ", 3, 3, 3) },
	})
	regID(idSpec{id: "au-abn", desc: "Australian Business Number (weighted mod 89)", tags: tags(TagSOC2),
		min: 11, max: 11, digitsOnly: true, context: []string{"abn", "business"},
		formatted: 0.7, plain: 0.4, layout: grouped(2, 3, 3, 3), valid: abnValid,
		gen:    func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 11) }, abnValid) },
		format: func(r *rand.Rand, v string) string { return groupDigits(v, " ", 2, 3, 3, 3) },
	})
	regID(idSpec{id: "au-medicare", desc: "Australian Medicare card number (weighted check digit)", tags: tags(TagGDPR, TagHIPAA),
		min: 10, max: 11, digitsOnly: true, context: []string{"medicare"},
		formatted: 0.6, plain: 0.4, layout: func(c *cand) bool { return plainOrGrouped(c, 4, 5, 1) || plainOrGrouped(c, 4, 5, 1, 1) },
		valid: medicareAUValid, nearOverride: func(r *rand.Rand) string {
			return "medicare: " + bumpAt(fill(r, func() string { return string('2'+byte(r.IntN(5))) + digits(r, 9) }, medicareAUValid), 8)
		},
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return string('2'+byte(r.IntN(5))) + digits(r, 9) }, medicareAUValid)
		},
		format: func(r *rand.Rand, v string) string { return groupDigits(v, " ", 4, 5, 1) },
	})
	regID(idSpec{id: "pl-pesel", desc: "Polish PESEL (date with century in month, weighted check)",
		min: 11, max: 11, digitsOnly: true, context: []string{"pesel"},
		formatted: 0.45, plain: 0.45, valid: peselValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			if y >= 2000 {
				m += 20
			}
			return fill(r, func() string { return two(y) + two(m) + two(d) + digits(r, 5) }, peselValid)
		},
	})
	register(&Detector{
		ID: "fi-hetu", Category: NationalID, Tags: tags(TagGDPR), Description: "Finnish personal identity code HETU (century sign, mod 31 check character)",
		Confidence: 0.9, Context: []string{"hetu", "henkilötunnus", "henkilotunnus", "sotu"},
		minLen: 10, maxLen: 11,
		group: func(c *cand) float64 {
			if hetuValid(c.raw) {
				return 0.9
			}
			return 0
		},
		gen: func(r *rand.Rand) (string, string) {
			y, m, d := randDate(r)
			sign := "-"
			if y >= 2000 {
				sign = "A"
			}
			nnn := 2 + r.IntN(897)
			v := (d*10000+m*100+y%100)*1000 + nnn
			return "hetu: ", two(d) + two(m) + two(y) + sign + strconv.Itoa(1000 + nnn)[1:] + string(hetuChars[v%31])
		},
		near: fixedNear("hetu: 131052-308A", "hetu: 321052-308T", "1310523081"),
	})
	regID(idSpec{id: "kr-rrn", desc: "South Korean resident registration number (date, weighted check)",
		min: 13, max: 13, digitsOnly: true, context: []string{"rrn", "resident", "주민등록번호"},
		formatted: 0.85, plain: 0.45, layout: rawIs("dddddd-ddddddd"), valid: rrnValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(y) + two(m) + two(d) + pick(r, "1", "2", "3", "4") + digits(r, 6) }, rrnValid)
		},
		format: func(r *rand.Rand, v string) string { return v[:6] + "-" + v[6:] },
	})
	regID(idSpec{id: "tr-tckn", desc: "Turkish identity number T.C. Kimlik No (two check digits)",
		min: 11, max: 11, digitsOnly: true, context: []string{"tckn", "kimlik", "tc"},
		formatted: 0.45, plain: 0.45, valid: tcknValid,
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return string('1'+byte(r.IntN(9))) + digits(r, 10) }, tcknValid)
		},
	})
	regID(idSpec{id: "de-steuer-id", desc: "German tax identification number Steuer-ID (digit rules, ISO 7064 mod 11,10)",
		min: 11, max: 11, digitsOnly: true, context: []string{"steuer", "steuerid", "idnr", "identifikationsnummer", "steueridentifikationsnummer"},
		formatted: 0.45, plain: 0.45, layout: grouped(2, 3, 3, 3), valid: steuerIDValid,
		gen: func(r *rand.Rand) string {
			return fill(r, func() string {
				p := r.Perm(10)
				p[r.IntN(9)+1] = p[0]
				b := make([]byte, 10)
				for i, x := range p {
					b[i] = byte('0' + x)
				}
				if b[0] == '0' {
					b[0] = '1'
				}
				return string(b) + string('0'+byte(r.IntN(10)))
			}, steuerIDValid)
		},
	})
	regID(idSpec{id: "it-codice-fiscale", desc: "Italian codice fiscale (month letter, odd/even check character)",
		min: 16, max: 16, context: []string{"codice", "fiscale", "cf"},
		formatted: 0.9, plain: 0.9, valid: codiceFiscaleValid,
		gen: func(r *rand.Rand) string {
			for {
				v := fromSet(r, setUpper, 6) + digits(r, 2) + pick(r, "A", "B", "C", "D", "E", "H", "L", "M", "P", "R", "S", "T") + two(1+r.IntN(28)) + fromSet(r, setUpper, 1) + digits(r, 3)
				for c := byte('A'); c <= 'Z'; c++ {
					if codiceFiscaleValid([]byte(v + string(c))) {
						return v + string(c)
					}
				}
			}
		},
		nearOverride: fixedNear("cf: RSSMRA85T10A562A", "cf: RSSMRA85Z10A562S"),
	})
	regID(idSpec{id: "nl-bsn", desc: "Dutch citizen service number BSN (11-proof)",
		min: 9, max: 9, digitsOnly: true, context: []string{"bsn", "burgerservicenummer", "sofinummer"},
		formatted: 0.6, plain: 0.4, layout: rawIs("dddd.dd.ddd", "dddd dd ddd"), valid: bsnValid,
		gen: func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 9) }, bsnValid) },
	})
	regID(idSpec{id: "fr-nir", desc: "French social security number NIR (sex, birth month, department, key 97)", tags: tags(TagGDPR, TagHIPAA),
		min: 15, max: 15, context: []string{"nir", "sécurité", "securite", "insee", "secu"},
		formatted: 0.85, plain: 0.7, layout: func(c *cand) bool { return plainOrGrouped(c, 1, 2, 2, 2, 3, 3, 2) }, valid: nirValid,
		gen: func(r *rand.Rand) string {
			body := pick(r, "1", "2") + two(r.IntN(100)) + two(1+r.IntN(12)) + two(1+r.IntN(95)) + digits(r, 3) + digits(r, 3)
			v, _ := strconv.ParseInt(body, 10, 64)
			return body + two(int(97-v%97))
		},
		format: func(r *rand.Rand, v string) string { return groupDigits(v, " ", 1, 2, 2, 2, 3, 3, 2) },
	})
	regID(idSpec{id: "cn-resident-id", desc: "Chinese resident identity card number (birth date, ISO 7064 mod 11-2)",
		min: 18, max: 18, context: []string{"resident", "身份证", "shenfenzheng", "id"},
		formatted: 0.85, plain: 0.85, valid: cnIDValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			b := pick(r, "110105", "310104", "440305") + strconv.Itoa(y) + two(m) + two(d) + digits(r, 3)
			s := weighted([]byte(b), []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2})
			return b + string("10X98765432"[s%11])
		},
	})
	regID(idSpec{id: "ca-sin", desc: "Canadian Social Insurance Number (Luhn, province digit)",
		min: 9, max: 9, digitsOnly: true, context: []string{"sin", "social", "insurance"},
		formatted: 0.7, plain: 0.35, layout: grouped(3, 3, 3), valid: sinValid,
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return string('1'+byte(r.IntN(7))) + digits(r, 8) }, sinValid)
		},
		format: func(r *rand.Rand, v string) string { return groupDigits(v, pick(r, " ", "-"), 3, 3, 3) },
	})
	regID(idSpec{id: "za-id", desc: "South African ID number (birth date, citizenship digit, Luhn)",
		min: 13, max: 13, digitsOnly: true, context: []string{"id", "identity", "rsa"},
		formatted: 0.45, plain: 0.45, valid: zaIDValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(y) + two(m) + two(d) + digits(r, 4) + pick(r, "0", "1") + "8" + digits(r, 1) }, zaIDValid)
		},
	})
	regID(idSpec{id: "se-personnummer", desc: "Swedish personnummer (birth date, Luhn)",
		min: 10, max: 12, digitsOnly: true, context: []string{"personnummer", "pnr"},
		formatted: 0.8, plain: 0.45, layout: rawIs("dddddd-dddd", "dddddddd-dddd"), valid: pnrValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(y) + two(m) + two(d) + digits(r, 4) }, pnrValid)
		},
		format: func(r *rand.Rand, v string) string { return v[:6] + "-" + v[6:] },
	})
	regID(idSpec{id: "no-fodselsnummer", desc: "Norwegian fødselsnummer (birth date, two mod 11 check digits)",
		min: 11, max: 11, digitsOnly: true, context: []string{"fodselsnummer", "fødselsnummer", "personnummer", "fnr"},
		formatted: 0.6, plain: 0.45, valid: fnrValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(d) + two(m) + two(y) + digits(r, 5) }, fnrValid)
		},
	})
	regID(idSpec{id: "dk-cpr", desc: "Danish CPR number (birth date, mod 11)",
		// "personnummer" names the Swedish number as well (and more often):
		// it raises a CPR less, so a value valid as both is Swedish unless
		// "CPR" says otherwise
		min: 10, max: 10, digitsOnly: true, context: []string{"cpr", "~personnummer"},
		formatted: 0.75, plain: 0.4, layout: rawIs("dddddd-dddd"), valid: cprValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(d) + two(m) + two(y) + digits(r, 4) }, cprValid)
		},
		format: func(r *rand.Rand, v string) string { return v[:6] + "-" + v[6:] },
	})
	regID(idSpec{id: "be-national-number", desc: "Belgian national register number (birth date, mod 97)",
		min: 11, max: 11, digitsOnly: true, context: []string{"rijksregisternummer", "national", "nn", "registre"},
		formatted: 0.85, plain: 0.45, layout: rawIs("dd.dd.dd-ddd.dd"), valid: beNNValid,
		gen: func(r *rand.Rand) string {
			y, m, d := 1940+r.IntN(59), 1+r.IntN(12), 1+r.IntN(28)
			b := two(y) + two(m) + two(d) + digits(r, 3)
			v, _ := strconv.Atoi(b)
			return b + two(97-v%97)
		},
		format: func(r *rand.Rand, v string) string {
			return v[:2] + "." + v[2:4] + "." + v[4:6] + "-" + v[6:9] + "." + v[9:]
		},
	})
	regID(idSpec{id: "pt-nif", desc: "Portuguese tax number NIF (mod 11)",
		min: 9, max: 9, digitsOnly: true, context: []string{"nif", "contribuinte", "fiscal"},
		formatted: 0.45, plain: 0.4, layout: grouped(3, 3, 3), valid: nifPTValid,
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return pick(r, "1", "2", "5") + digits(r, 8) }, nifPTValid)
		},
	})
	regID(idSpec{id: "ch-ahv", desc: "Swiss social security number AHV/AVS (756, EAN-13)",
		min: 13, max: 13, digitsOnly: true, context: []string{"ahv", "avs", "sozialversicherungsnummer"},
		formatted: 0.9, plain: 0.6, layout: rawIs("ddd.dddd.dddd.dd"), valid: ahvValid,
		gen: func(r *rand.Rand) string {
			return fill(r, func() string { return "756" + digits(r, 10) }, ahvValid)
		},
		format: func(r *rand.Rand, v string) string { return v[:3] + "." + v[3:7] + "." + v[7:11] + "." + v[11:] },
	})
	regID(idSpec{id: "ie-pps", desc: "Irish Personal Public Service number (mod 23 check letter)",
		min: 8, max: 9, context: []string{"pps", "ppsn"},
		formatted: 0.75, plain: 0.75, valid: ppsValid,
		gen: func(r *rand.Rand) string {
			d := digits(r, 7)
			return d + string(ppsLetters[weighted([]byte(d), []int{8, 7, 6, 5, 4, 3, 2})%23])
		},
		nearOverride: func(r *rand.Rand) string {
			d := digits(r, 7)
			return "pps: " + d + string(ppsLetters[(weighted([]byte(d), []int{8, 7, 6, 5, 4, 3, 2})+1)%23])
		},
	})
	regID(idSpec{id: "mx-curp", desc: "Mexican CURP (structure, check digit)",
		min: 18, max: 18, context: []string{"curp"},
		formatted: 0.9, plain: 0.9, valid: curpValid,
		gen: func(r *rand.Rand) string {
			for {
				v := fromSet(r, setUpper, 4) + "850101" + pick(r, "H", "M") + "DF" + fromSet(r, "BCDFGHJKLMNPQRSTVWXZ", 3) + "0"
				for c := byte('0'); c <= '9'; c++ {
					if curpValid([]byte(v + string(c))) {
						return v + string(c)
					}
				}
			}
		},
		nearOverride: fixedNear("curp: GOMA850101HDFRRN0A", "curp: GOMA851301HDFRRN09"),
	})
	regID(idSpec{id: "cl-rut", desc: "Chilean RUT/RUN (mod 11, check 0-9 or K)",
		min: 8, max: 9, context: []string{"rut", "run"},
		formatted: 0.8, plain: 0.3, layout: func(c *cand) bool {
			return shape(c.raw, "dd.ddd.ddd-x", "d.ddd.ddd-x", "dddddddd-x", "ddddddd-x")
		},
		valid: func(n []byte) bool { return rutValid(n) },
		gen: func(r *rand.Rand) string {
			b := strconv.Itoa(5000000 + r.IntN(20000000))
			for _, c := range "0123456789K" {
				if rutValid([]byte(b + string(c))) {
					return b + string(c)
				}
			}
			return b
		},
		format: func(r *rand.Rand, v string) string { return v[:len(v)-1] + "-" + v[len(v)-1:] },
	})
	regID(idSpec{id: "sg-nric", desc: "Singapore NRIC/FIN (weighted check letter)",
		min: 9, max: 9, context: []string{"nric", "fin"},
		formatted: 0.85, plain: 0.85, valid: nricValid,
		gen: func(r *rand.Rand) string {
			p := pick(r, "S", "T", "F", "G")
			d := digits(r, 7)
			for c := byte('A'); c <= 'Z'; c++ {
				if nricValid([]byte(p + d + string(c))) {
					return p + d + string(c)
				}
			}
			return p + d + "A"
		},
		nearOverride: fixedNear("nric: S1234567A", "nric: Q1234567D"),
	})
	regID(idSpec{id: "hk-hkid", desc: "Hong Kong identity card number (mod 11 check)",
		min: 8, max: 9, context: []string{"hkid", "identity"},
		formatted: 0.45, plain: 0.45, valid: hkidValid,
		gen: func(r *rand.Rand) string {
			l := fromSet(r, setUpper, 1)
			d := digits(r, 6)
			for _, c := range "0123456789A" {
				if hkidValid([]byte(l + d + string(c))) {
					return l + d + string(c)
				}
			}
			return l + d + "0"
		},
		nearOverride: fixedNear("hkid: A1234567", "hkid: 11234567"),
	})
	regID(idSpec{id: "jp-my-number", desc: "Japanese Individual Number My Number (check digit)",
		min: 12, max: 12, digitsOnly: true, context: []string{"mynumber", "my", "kojin", "個人番号", "マイナンバー"},
		formatted: 0.5, plain: 0.4, layout: grouped(4, 4, 4), valid: myNumberValid,
		gen: func(r *rand.Rand) string { return fill(r, func() string { return digits(r, 12) }, myNumberValid) },
	})
	regID(idSpec{id: "ro-cnp", desc: "Romanian personal numeric code CNP (birth date, weighted check)",
		min: 13, max: 13, digitsOnly: true, context: []string{"cnp", "numeric personal"}, // cod numeric personal
		formatted: 0.45, plain: 0.45, valid: roCNPValid,
		gen: func(r *rand.Rand) string {
			_, m, d := randDate(r)
			return fill(r, func() string { return pick(r, "1", "2", "5", "6") + two(r.IntN(100)) + two(m) + two(d) + digits(r, 6) }, roCNPValid)
		},
	})
	regID(idSpec{id: "bg-egn", desc: "Bulgarian personal number EGN (birth date, weighted check)",
		min: 10, max: 10, digitsOnly: true, context: []string{"egn", "егн"},
		formatted: 0.45, plain: 0.45, valid: egnValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(y) + two(m) + two(d) + digits(r, 4) }, egnValid)
		},
	})
	regID(idSpec{id: "cz-rodne-cislo", desc: "Czech/Slovak birth number rodné číslo (birth date, mod 11)",
		min: 10, max: 10, digitsOnly: true, context: []string{"rodne", "cislo", "rodné"},
		formatted: 0.75, plain: 0.4, layout: rawIs("dddddd/dddd"), valid: rodneValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return two(y) + two(m+50*r.IntN(2)) + two(d) + digits(r, 4) }, rodneValid)
		},
		format: func(r *rand.Rand, v string) string { return v[:6] + "/" + v[6:] },
	})
	regID(idSpec{id: "ee-isikukood", desc: "Estonian personal identification code isikukood (birth date, two-stage mod 11)",
		min: 11, max: 11, digitsOnly: true, context: []string{"isikukood"},
		formatted: 0.45, plain: 0.45, valid: isikukoodValid,
		gen: func(r *rand.Rand) string {
			y, m, d := randDate(r)
			return fill(r, func() string { return pick(r, "3", "4", "5", "6") + two(y) + two(m) + two(d) + digits(r, 4) }, isikukoodValid)
		},
	})
	register(&Detector{
		ID: "il-teudat-zehut", Category: NationalID, Tags: tags(TagGDPR), Description: "Israeli identity number Teudat Zehut (Luhn-style check), next to its keyword",
		Confidence: 0.8, keywords: []string{"zehut", "teudat", "tz"},
		kw: kwValue(24, func(v []byte) float64 {
			if len(v) == 9 && allDigits(v) && luhn(v) && !sameDigits(v) {
				return 0.8
			}
			return 0
		}),
		gen: func(r *rand.Rand) (string, string) {
			return "teudat zehut: ", fill(r, func() string { return digits(r, 9) }, func(n []byte) bool { return luhn(n) && !sameDigits(n) })
		},
		near: func(r *rand.Rand) string {
			return "teudat zehut: " + fill(r, func() string { return digits(r, 9) }, func(n []byte) bool { return !luhn(n) })
		},
	})
	register(&Detector{
		ID: "nz-ird", Category: NationalID, Tags: tags(TagGDPR), Description: "New Zealand IRD number (weighted mod 11), next to its keyword",
		Confidence: 0.8, keywords: []string{"ird"},
		kw: kwValue(24, func(v []byte) float64 {
			n := normAlnum(v)
			if (len(n) == 8 || len(n) == 9) && allDigits(n) && irdValid(n) {
				return 0.8
			}
			return 0
		}),
		gen: func(r *rand.Rand) (string, string) {
			return "IRD number: ", fill(r, func() string { return "0" + strconv.Itoa(10000000 + r.IntN(140000000))[:8] }, irdValid)
		},
		near: func(r *rand.Rand) string {
			return "IRD number: " + fill(r, func() string { return "0" + strconv.Itoa(10000000 + r.IntN(140000000))[:8] }, func(n []byte) bool { return !irdValid(n) })
		},
	})
	register(&Detector{
		ID: "us-ein", Category: NationalID, Tags: tags(TagSOC2), Description: "US Employer Identification Number (valid campus prefix), next to its keyword",
		Confidence: 0.75, keywords: []string{"ein", "fein", "employer"},
		kw: kwValue(32, func(v []byte) float64 {
			if !shape(v, "dd-ddddddd") {
				return 0
			}
			p := num(v[:2])
			if p == 0 || p == 7 || p == 8 || p == 9 || p == 17 || p == 18 || p == 19 || p == 28 || p == 29 || p == 49 || p == 69 || p == 70 || p == 78 || p == 79 || p == 89 || p == 96 || p == 97 {
				return 0
			}
			return 0.75
		}),
		gen:  func(r *rand.Rand) (string, string) { return "EIN: ", pick(r, "12", "45", "91") + "-" + digits(r, 7) },
		near: fixedNear("EIN: 07-1234567", "EIN: 123-456789"),
	})
}

func irdValid(n []byte) bool {
	if len(n) == 8 {
		n = append([]byte{'0'}, n...)
	}
	if len(n) != 9 {
		return false
	}
	v := num(n)
	if v < 10000000 || v > 150000000 {
		return false
	}
	c := 11 - weighted(n, []int{3, 2, 7, 6, 5, 4, 3, 2})%11
	if c == 11 {
		c = 0
	}
	if c == 10 {
		c = 11 - weighted(n, []int{7, 4, 3, 2, 5, 2, 7, 6})%11
		if c == 11 {
			c = 0
		}
		if c == 10 {
			return false
		}
	}
	return c == dv(n[8])
}
