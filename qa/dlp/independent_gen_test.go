package dlpqa_test

// Independent value generators for the review test set. They are written
// from the published format descriptions and checksum algorithms, not from
// the dlp package's own generators, so a shared misreading of a spec shows
// up as a miss or a false positive here.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/big"
	mrand "math/rand/v2"
	"strings"

	"golang.org/x/crypto/sha3"
	"golang.org/x/crypto/ssh"
)

func digits(r *mrand.Rand, n int) []int {
	d := make([]int, n)
	for i := range d {
		d[i] = r.IntN(10)
	}
	return d
}

func str(d []int) string {
	var b strings.Builder
	for _, x := range d {
		b.WriteByte(byte('0' + x))
	}
	return b.String()
}

// luhnCheck returns the check digit that makes payload+check pass Luhn.
func luhnCheck(payload []int) int {
	sum := 0
	for i := len(payload) - 1; i >= 0; i-- {
		d := payload[i]
		if (len(payload)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

func luhnValid(s string) bool {
	sum, alt := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if alt {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		alt = !alt
	}
	return sum%10 == 0
}

// card builds a Luhn-valid number with the given prefix and length.
func card(r *mrand.Rand, prefix string, n int) string {
	p := make([]int, 0, n)
	for _, c := range prefix {
		p = append(p, int(c-'0'))
	}
	for len(p) < n-1 {
		p = append(p, r.IntN(10))
	}
	return str(append(p, luhnCheck(p)))
}

// bump changes the digit at position i (from the end when i<0) so that a
// checksum no longer holds.
func bump(s string, i int) string {
	if i < 0 {
		i += len(s)
	}
	b := []byte(s)
	if b[i] >= '0' && b[i] <= '9' {
		b[i] = '0' + (b[i]-'0'+1)%10
	} else if b[i] >= 'A' && b[i] < 'Z' {
		b[i]++
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func group(s string, sep string, sizes ...int) string {
	var parts []string
	for _, n := range sizes {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	if s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, sep)
}

// ---- IBAN (ISO 13616): BBAN formats from the SWIFT IBAN registry.

var ibanFormats = map[string]string{ // n digits, a upper letters, c alnum
	"DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n",
	"BE": "12n", "CH": "5n12c", "AT": "16n", "PL": "24n", "SE": "20n", "NO": "11n", "DK": "14n",
	"FI": "14n", "IE": "4a14n", "PT": "21n", "GR": "7n16c", "LU": "3n13c", "CZ": "20n", "HU": "24n",
	"RO": "4a16c", "BG": "4a6n8c", "HR": "17n", "SI": "15n", "SK": "20n", "LT": "16n", "LV": "4a13c",
	"EE": "16n", "MT": "4a5n18c", "CY": "8n16c", "SA": "2n18c", "AE": "3n16n", "TR": "5n1n16c",
	"IL": "19n", "BR": "23n1a1c", "MU": "4a19n3a", "QA": "4a21c", "KW": "4a22c", "PK": "4a16c",
}

func bban(r *mrand.Rand, f string) string {
	var b strings.Builder
	n := 0
	for _, c := range f {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
			continue
		}
		for range n {
			switch c {
			case 'n':
				b.WriteByte(byte('0' + r.IntN(10)))
			case 'a':
				b.WriteByte(byte('A' + r.IntN(26)))
			case 'c':
				if r.IntN(3) == 0 {
					b.WriteByte(byte('A' + r.IntN(26)))
				} else {
					b.WriteByte(byte('0' + r.IntN(10)))
				}
			}
		}
		n = 0
	}
	return b.String()
}

func mod97(s string) int {
	m := 0
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			v := int(c-'A') + 10
			m = (m*100 + v) % 97
		} else {
			m = (m*10 + int(c-'0')) % 97
		}
	}
	return m
}

func iban(r *mrand.Rand, cc string) string {
	b := bban(r, ibanFormats[cc])
	ck := 98 - mod97(b+cc+"00")
	return fmt.Sprintf("%s%02d%s", cc, ck, b)
}

// ---- US ABA routing number.

func aba(r *mrand.Rand) string {
	pfx := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72}
	for {
		d := append([]int{}, 0, 0)
		p := pfx[r.IntN(len(pfx))]
		d[0], d[1] = p/10, p%10
		d = append(d, digits(r, 6)...)
		s := 3*(d[0]+d[3]+d[6]) + 7*(d[1]+d[4]+d[7]) + (d[2] + d[5])
		c := (10 - s%10) % 10
		return str(append(d, c))
	}
}

// ---- US SSN: area 001-899 except 666, group 01-99, serial 0001-9999.

func ssn(r *mrand.Rand) string {
	area := 1 + r.IntN(899)
	if area == 666 {
		area = 667
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+r.IntN(99), 1+r.IntN(9999))
}

// ---- UK NHS number: mod 11, weights 10..2.

func nhs(r *mrand.Rand) string {
	for {
		d := digits(r, 9)
		d[0] = 4 + r.IntN(3) // 400-699 are the issued England/Wales ranges
		s := 0
		for i, x := range d {
			s += x * (10 - i)
		}
		c := 11 - s%11
		if c == 11 {
			c = 0
		}
		if c == 10 {
			continue
		}
		return str(append(d, c))
	}
}

// ---- UK NINO.

func nino(r *mrand.Rand) string {
	const first = "ABCEGHJKLMNOPRSTWXYZ"
	const second = "ABCEGHJKLMNPRSTWXYZ"
	for {
		p := string(first[r.IntN(len(first))]) + string(second[r.IntN(len(second))])
		switch p {
		case "BG", "GB", "NK", "KN", "TN", "NT", "ZZ":
			continue
		}
		return p + str(digits(r, 6)) + string("ABCD"[r.IntN(4)])
	}
}

// ---- ES DNI / NIE.

const dniLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

func dni(r *mrand.Rand) string {
	n := 10000000 + r.IntN(90000000)
	return fmt.Sprintf("%08d%c", n, dniLetters[n%23])
}

func nie(r *mrand.Rand) string {
	x := r.IntN(3)
	n := r.IntN(10000000)
	return fmt.Sprintf("%c%07d%c", "XYZ"[x], n, dniLetters[(x*10000000+n)%23])
}

// ---- BR CPF / CNPJ.

func cpf(r *mrand.Rand) string {
	for {
		d := digits(r, 9)
		allSame := true
		for _, x := range d {
			allSame = allSame && x == d[0]
		}
		if allSame {
			continue
		}
		for k := 0; k < 2; k++ {
			s := 0
			for i, x := range d {
				s += x * (len(d) + 1 - i)
			}
			c := s * 10 % 11 % 10
			d = append(d, c)
		}
		v := str(d)
		return v[:3] + "." + v[3:6] + "." + v[6:9] + "-" + v[9:]
	}
}

func cnpj(r *mrand.Rand) string {
	d := digits(r, 8)
	d = append(d, 0, 0, 0, 1+r.IntN(3))
	w1 := []int{5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	w2 := []int{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	for _, w := range [][]int{w1, w2} {
		s := 0
		for i, x := range d {
			s += x * w[i]
		}
		c := 0
		if s%11 >= 2 {
			c = 11 - s%11
		}
		d = append(d, c)
	}
	v := str(d)
	return v[:2] + "." + v[2:5] + "." + v[5:8] + "/" + v[8:12] + "-" + v[12:]
}

// ---- IN Aadhaar (Verhoeff) and PAN.

var vD = [10][10]int{
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5}, {2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
	{3, 4, 0, 1, 2, 8, 9, 5, 6, 7}, {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
	{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3}, {8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
	{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
}
var vP = [8][10]int{
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4}, {5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
	{8, 9, 1, 6, 0, 4, 3, 5, 2, 7}, {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
	{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
}
var vInv = [10]int{0, 4, 3, 2, 1, 5, 6, 7, 8, 9}

func verhoeffCheck(p []int) int {
	c := 0
	for i := range p {
		c = vD[c][vP[(i+1)%8][p[len(p)-1-i]]]
	}
	return vInv[c]
}

func aadhaar(r *mrand.Rand) string {
	d := digits(r, 11)
	d[0] = 2 + r.IntN(8)
	v := str(append(d, verhoeffCheck(d)))
	return v[:4] + " " + v[4:8] + " " + v[8:]
}

func pan(r *mrand.Rand) string {
	l := func() byte { return byte('A' + r.IntN(26)) }
	return fmt.Sprintf("%c%c%c%c%c%04d%c", l(), l(), l(), "PCHFATBLJG"[r.IntN(10)], l(), r.IntN(10000), l())
}

// ---- AU TFN / ABN / Medicare.

func weighted(d, w []int) int {
	s := 0
	for i := range w {
		s += d[i] * w[i]
	}
	return s
}

func tfn(r *mrand.Rand) string {
	w := []int{1, 4, 3, 7, 5, 8, 6, 9, 10}
	for {
		d := digits(r, 8)
		for c := 0; c < 10; c++ {
			if weighted(append(append([]int{}, d...), c), w)%11 == 0 {
				v := str(append(d, c))
				return v[:3] + " " + v[3:6] + " " + v[6:]
			}
		}
	}
}

func abn(r *mrand.Rand) string {
	w := []int{10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19}
	for {
		d := digits(r, 11)
		d[0] = 1 + r.IntN(9)
		e := append([]int{}, d...)
		e[0]--
		if weighted(e, w)%89 == 0 {
			v := str(d)
			return v[:2] + " " + v[2:5] + " " + v[5:8] + " " + v[8:]
		}
	}
}

func medicare(r *mrand.Rand) string {
	d := digits(r, 8)
	d[0] = 2 + r.IntN(5)
	c := weighted(d, []int{1, 3, 7, 9, 1, 3, 7, 9}) % 10
	v := str(append(d, c, 1+r.IntN(9)))
	return v[:4] + " " + v[4:9] + " " + v[9:]
}

// ---- PL PESEL.

func pesel(r *mrand.Rand) string {
	y := 1950 + r.IntN(70)
	m := 1 + r.IntN(12)
	if y >= 2000 {
		m += 20
	}
	d := []int{(y / 10) % 10, y % 10, m / 10, m % 10}
	day := 1 + r.IntN(28)
	d = append(d, day/10, day%10)
	d = append(d, digits(r, 4)...)
	s := weighted(d, []int{1, 3, 7, 9, 1, 3, 7, 9, 1, 3})
	return str(append(d, (10-s%10)%10))
}

// ---- FI HETU.

func hetu(r *mrand.Rand) string {
	day, mon, yy := 1+r.IntN(28), 1+r.IntN(12), r.IntN(100)
	sign := "-"
	if r.IntN(3) == 0 {
		sign = "A"
	}
	n := 2 + r.IntN(898)
	num := day*10000000 + mon*100000 + yy*1000 + n
	return fmt.Sprintf("%02d%02d%02d%s%03d%c", day, mon, yy, sign, n, "0123456789ABCDEFHJKLMNPRSTUVWXY"[num%31])
}

// ---- KR RRN (pre-2020 checksum).

func rrn(r *mrand.Rand) string {
	yy, mm, dd := 50+r.IntN(49), 1+r.IntN(12), 1+r.IntN(28)
	v := fmt.Sprintf("%02d%02d%02d%d%05d", yy, mm, dd, 1+r.IntN(2), r.IntN(100000))
	d := make([]int, 12)
	for i := range d {
		d[i] = int(v[i] - '0')
	}
	s := weighted(d, []int{2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5})
	c := (11 - s%11) % 10
	return v[:6] + "-" + v[6:] + string(rune('0'+c))
}

// ---- TR TCKN.

func tckn(r *mrand.Rand) string {
	d := digits(r, 9)
	d[0] = 1 + r.IntN(9)
	odd := d[0] + d[2] + d[4] + d[6] + d[8]
	even := d[1] + d[3] + d[5] + d[7]
	d10 := ((odd*7-even)%10 + 10) % 10
	d = append(d, d10)
	s := 0
	for _, x := range d {
		s += x
	}
	return str(append(d, s%10))
}

// ---- DE Steuer-ID: ISO 7064 MOD 11,10; exactly one digit twice in the first ten.

func steuerID(r *mrand.Rand) string {
	for {
		perm := r.Perm(10)
		d := perm[:10]
		// replace one digit by another so one digit appears twice, one missing
		i, j := r.IntN(10), r.IntN(10)
		if i == j || d[0] == 0 {
			continue
		}
		d[i] = d[j]
		if d[0] == 0 {
			continue
		}
		p := 10
		for _, x := range d {
			s := (x + p) % 10
			if s == 0 {
				s = 10
			}
			p = s * 2 % 11
		}
		c := 11 - p
		if c == 10 {
			c = 0
		}
		return str(append(append([]int{}, d...), c))
	}
}

// ---- IT codice fiscale.

var cfOdd = []int{1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23}

func codiceFiscale(r *mrand.Rand) string {
	cons := "BCDFGHLMNPRSTVZ"
	var b []byte
	for range 6 {
		b = append(b, cons[r.IntN(len(cons))])
	}
	b = append(b, fmt.Sprintf("%02d", r.IntN(100))...)
	b = append(b, "ABCDEHLMPRST"[r.IntN(12)])
	day := 1 + r.IntN(28)
	if r.IntN(2) == 0 {
		day += 40
	}
	b = append(b, fmt.Sprintf("%02d", day)...)
	b = append(b, "ABCDEFGHILMZ"[r.IntN(12)])
	b = append(b, fmt.Sprintf("%03d", 1+r.IntN(999))...)
	s := 0
	for i, c := range b {
		v := 0
		if c >= '0' && c <= '9' {
			v = int(c - '0')
		} else {
			v = int(c - 'A')
		}
		if i%2 == 0 { // 1-based odd
			s += cfOdd[v]
		} else {
			s += v
		}
	}
	return string(append(b, byte('A'+s%26)))
}

// ---- NL BSN (11-proef).

func bsn(r *mrand.Rand) string {
	for {
		d := digits(r, 9)
		d[0] = 1 + r.IntN(6)
		s := weighted(d, []int{9, 8, 7, 6, 5, 4, 3, 2, -1})
		if s%11 == 0 {
			return str(d)
		}
	}
}

// ---- FR NIR.

func nir(r *mrand.Rand) string {
	v := fmt.Sprintf("%d%02d%02d%02d%03d%03d", 1+r.IntN(2), r.IntN(100), 1+r.IntN(12), 1+r.IntN(95), 1+r.IntN(990), 1+r.IntN(999))
	n, _ := new(big.Int).SetString(v, 10)
	k := 97 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("%s %s %s %s %s %s %02d", v[:1], v[1:3], v[3:5], v[5:7], v[7:10], v[10:13], k)
}

// ---- CN resident ID.

func cnID(r *mrand.Rand) string {
	regions := []string{"110101", "310104", "440305", "510107", "330106", "320102"}
	v := fmt.Sprintf("%s%04d%02d%02d%03d", regions[r.IntN(len(regions))], 1950+r.IntN(60), 1+r.IntN(12), 1+r.IntN(28), r.IntN(1000))
	d := make([]int, 17)
	for i := range d {
		d[i] = int(v[i] - '0')
	}
	s := weighted(d, []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2})
	return v + string("10X98765432"[s%11])
}

// ---- CA SIN (Luhn, first digit not 0 or 8).

func sin(r *mrand.Rand) string {
	first := []string{"1", "2", "3", "4", "5", "6", "7", "9"}[r.IntN(8)]
	v := card(r, first, 9)
	return v[:3] + " " + v[3:6] + " " + v[6:]
}

// ---- ZA ID: YYMMDD SSSS C A Z (Luhn).

func zaID(r *mrand.Rand) string {
	p := fmt.Sprintf("%02d%02d%02d%04d%d8", r.IntN(100), 1+r.IntN(12), 1+r.IntN(28), r.IntN(10000), r.IntN(2))
	return card(r, p, 13)
}

// ---- SE personnummer: YYMMDD-NNNC (Luhn on 10 digits).

func personnummer(r *mrand.Rand) string {
	p := fmt.Sprintf("%02d%02d%02d%03d", r.IntN(100), 1+r.IntN(12), 1+r.IntN(28), r.IntN(1000))
	v := card(r, p, 10)
	return v[:6] + "-" + v[6:]
}

// ---- US NPI (Luhn with the 80840 prefix).

func npi(r *mrand.Rand) string {
	d := digits(r, 9)
	d[0] = 1 + r.IntN(2)
	full := append([]int{8, 0, 8, 4, 0}, d...)
	return str(append(d, luhnCheck(full)))
}

// ---- US DEA registration number.

func dea(r *mrand.Rand) string {
	first := "ABCFGM"[r.IntN(6)]
	second := byte('A' + r.IntN(26))
	d := digits(r, 6)
	c := ((d[0] + d[2] + d[4]) + 2*(d[1]+d[3]+d[5])) % 10
	return fmt.Sprintf("%c%c%s%d", first, second, str(d), c)
}

// ---- US Medicare Beneficiary Identifier.

func mbi(r *mrand.Rand) string {
	const alpha = "ACDEFGHJKMNPQRTUVWXY"
	const an = "ACDEFGHJKMNPQRTUVWXY0123456789"
	pat := "CAN NAN NAANN" // C=1-9, A=alpha, N=0-9, second group an
	_ = pat
	a := func() byte { return alpha[r.IntN(len(alpha))] }
	x := func() byte { return an[r.IntN(len(an))] }
	n := func() byte { return byte('0' + r.IntN(10)) }
	b := []byte{byte('1' + r.IntN(9)), a(), x(), n(), a(), x(), n(), a(), a(), n(), n()}
	return string(b)
}

// ---- Tokens with a CRC32 in base62 (GitHub, npm).

const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func base62(n uint32, width int) string {
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = b62[n%62]
		n /= 62
	}
	return string(b)
}

func randB62(r *mrand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = b62[r.IntN(62)]
	}
	return string(b)
}

func crcToken(r *mrand.Rand, prefix string) string {
	body := randB62(r, 30)
	return prefix + body + base62(crc32.ChecksumIEEE([]byte(body)), 6)
}

// ---- JWT.

func jwt(r *mrand.Rand) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc.EncodeToString(fmt.Appendf(nil, `{"sub":"%d","name":"svc-%s","iat":%d}`, r.IntN(1e6), randB62(r, 6), 1700000000+r.IntN(1e7)))
	sig := make([]byte, 32)
	for i := range sig {
		sig[i] = byte(r.IntN(256))
	}
	return h + "." + p + "." + enc.EncodeToString(sig)
}

// ---- Private keys (generated at test time, never committed).

func pemKey(kind int) string {
	switch kind {
	case 0:
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalECPrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	case 1:
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	default:
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		b, _ := ssh.MarshalPrivateKey(k, "")
		return string(pem.EncodeToMemory(b))
	}
}

// ---- Crypto addresses.

const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func base58(b []byte) string {
	n := new(big.Int).SetBytes(b)
	var out []byte
	m := new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, big.NewInt(58), m)
		out = append(out, b58[m.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func base58Check(r *mrand.Rand, version byte) string {
	p := []byte{version}
	for range 20 {
		p = append(p, byte(r.IntN(256)))
	}
	h1 := sha256.Sum256(p)
	h2 := sha256.Sum256(h1[:])
	return base58(append(p, h2[:4]...))
}

const bech32Chars = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(v []byte) uint32 {
	gen := []uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, x := range v {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(x)
		for i := range 5 {
			if (b>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// segwitV0 builds a bech32 P2WPKH address (20-byte program).
func segwitV0(r *mrand.Rand, hrp string) string {
	prog := make([]byte, 20)
	for i := range prog {
		prog[i] = byte(r.IntN(256))
	}
	data := []byte{0}
	acc, bits := 0, 0
	for _, b := range prog {
		acc = acc<<8 | int(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			data = append(data, byte(acc>>bits&31))
		}
	}
	if bits > 0 {
		data = append(data, byte(acc<<(5-bits)&31))
	}
	var exp []byte
	for _, c := range hrp {
		exp = append(exp, byte(c>>5))
	}
	exp = append(exp, 0)
	for _, c := range hrp {
		exp = append(exp, byte(c&31))
	}
	pm := bech32Polymod(append(append(exp, data...), 0, 0, 0, 0, 0, 0)) ^ 1
	for i := range 6 {
		data = append(data, byte(pm>>(5*(5-i))&31))
	}
	var b strings.Builder
	b.WriteString(hrp + "1")
	for _, d := range data {
		b.WriteByte(bech32Chars[d])
	}
	return b.String()
}

// eip55 returns a checksummed Ethereum address.
func eip55(r *mrand.Rand) string {
	const hx = "0123456789abcdef"
	a := make([]byte, 40)
	for i := range a {
		a[i] = hx[r.IntN(16)]
	}
	h := sha3.NewLegacyKeccak256()
	h.Write(a)
	sum := h.Sum(nil)
	for i, c := range a {
		nib := sum[i/2] >> 4
		if i%2 == 1 {
			nib = sum[i/2] & 15
		}
		if c >= 'a' && nib >= 8 {
			a[i] = c - 32
		}
	}
	return "0x" + string(a)
}

// flipCase breaks an EIP-55 checksum by flipping the case of one letter.
func flipCase(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i > 2; i-- {
		if b[i] >= 'a' && b[i] <= 'f' {
			b[i] -= 32
			return string(b)
		}
		if b[i] >= 'A' && b[i] <= 'F' {
			b[i] += 32
			return string(b)
		}
	}
	return s
}
