package dlpqa_test

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

// indepCase is one kind of value in the independent review set: the
// detector that must report it, the words a person would write next to it,
// a generator of valid values and generators of near misses that must not
// be reported (checksum off by one, wrong length, reserved range).
type indepCase struct {
	det   string
	ctx   []string // context words / JSON keys a real document would use
	gen   func(r *mrand.Rand) string
	near  []func(r *mrand.Rand) string
	isNum bool // may also appear as a bare JSON number
}

func offByOne(g func(*mrand.Rand) string) func(*mrand.Rand) string {
	return func(r *mrand.Rand) string { return bump(g(r), -1) }
}

func dropLast(g func(*mrand.Rand) string) func(*mrand.Rand) string {
	return func(r *mrand.Rand) string { v := g(r); return v[:len(v)-1] }
}

// plain removes separators (people paste ids without them too).
func plain(g func(*mrand.Rand) string) func(*mrand.Rand) string {
	return func(r *mrand.Rand) string {
		return strings.NewReplacer(" ", "", "-", "", ".", "", "/", "").Replace(g(r))
	}
}

func either(a, b func(*mrand.Rand) string) func(*mrand.Rand) string {
	return func(r *mrand.Rand) string {
		if r.IntN(2) == 0 {
			return a(r)
		}
		return b(r)
	}
}

func cardGen(prefixes []string, lens []int) func(*mrand.Rand) string {
	return func(r *mrand.Rand) string {
		return card(r, prefixes[r.IntN(len(prefixes))], lens[r.IntN(len(lens))])
	}
}

// cardStyle lays out a card number the way people write it.
func cardStyle(r *mrand.Rand, v string) string {
	switch r.IntN(4) {
	case 0:
		return v
	case 1:
		if len(v) == 15 {
			return group(v, " ", 4, 6)
		}
		return group(v, " ", 4, 4, 4)
	case 2:
		if len(v) == 15 {
			return group(v, "-", 4, 6)
		}
		return group(v, "-", 4, 4, 4)
	default:
		return v
	}
}

func styled(g func(*mrand.Rand) string) func(*mrand.Rand) string {
	return func(r *mrand.Rand) string { return cardStyle(r, g(r)) }
}

func indepCases() []indepCase {
	visa := cardGen([]string{"4"}, []int{16})
	mc := cardGen([]string{"51", "52", "53", "54", "55", "2221", "2300", "2500", "2720"}, []int{16})
	amex := cardGen([]string{"34", "37"}, []int{15})
	disc := cardGen([]string{"6011", "644", "649", "654", "659"}, []int{16})
	jcb := cardGen([]string{"3528", "3550", "3589"}, []int{16})
	diners := cardGen([]string{"36", "300", "305", "38"}, []int{14})
	union := cardGen([]string{"62"}, []int{16})
	ibanGen := func(r *mrand.Rand) string {
		ccs := make([]string, 0, len(ibanFormats))
		for cc := range ibanFormats {
			ccs = append(ccs, cc)
		}
		sort.Strings(ccs)
		v := iban(r, ccs[r.IntN(len(ccs))])
		if r.IntN(2) == 0 { // paper format, groups of four
			var parts []string
			for len(v) > 4 {
				parts = append(parts, v[:4])
				v = v[4:]
			}
			v = strings.Join(append(parts, v), " ")
		}
		return v
	}
	ibanBadLen := func(r *mrand.Rand) string {
		// valid mod 97 but one character short of the country's length
		v := iban(r, "DE")
		b := v[4 : len(v)-1]
		ck := 98 - mod97(b+"DE00")
		return fmt.Sprintf("DE%02d%s", ck, b)
	}
	ssnReserved := func(r *mrand.Rand) string {
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("666-%02d-%04d", 1+r.IntN(99), 1+r.IntN(9999))
		case 1:
			return fmt.Sprintf("000-%02d-%04d", 1+r.IntN(99), 1+r.IntN(9999))
		case 2:
			return fmt.Sprintf("%03d-00-%04d", 1+r.IntN(665), 1+r.IntN(9999))
		default:
			return fmt.Sprintf("%03d-%02d-0000", 1+r.IntN(665), 1+r.IntN(99))
		}
	}
	ninoBad := func(r *mrand.Rand) string {
		v := nino(r)
		return []string{"BG", "GB", "NK", "TN", "ZZ"}[r.IntN(5)] + v[2:]
	}
	dniBad := func(r *mrand.Rand) string {
		v := dni(r)
		l := strings.IndexByte(dniLetters, v[8])
		return v[:8] + string(dniLetters[(l+1)%23])
	}
	nieBad := func(r *mrand.Rand) string {
		v := nie(r)
		l := strings.IndexByte(dniLetters, v[8])
		return v[:8] + string(dniLetters[(l+1)%23])
	}
	hetuBad := func(r *mrand.Rand) string {
		v := hetu(r)
		const cs = "0123456789ABCDEFHJKLMNPRSTUVWXY"
		return v[:10] + string(cs[(strings.IndexByte(cs, v[10])+1)%31])
	}
	cfBad := func(r *mrand.Rand) string { v := codiceFiscale(r); return v[:15] + string('A'+(v[15]-'A'+1)%26) }
	cnBad := func(r *mrand.Rand) string {
		v := cnID(r)
		const cs = "10X98765432"
		return v[:17] + string(cs[(strings.IndexByte(cs, v[17])+1)%11])
	}
	ghpBad := func(p string) func(*mrand.Rand) string {
		return func(r *mrand.Rand) string {
			v := crcToken(r, p)
			b := []byte(v)
			i := len(p) + 3
			b[i] = b62[(strings.IndexByte(b62, b[i])+1)%62]
			return string(b)
		}
	}
	btcBad := func(v byte) func(*mrand.Rand) string {
		return func(r *mrand.Rand) string {
			a := []byte(base58Check(r, v))
			i := len(a) - 1
			a[i] = b58[(strings.IndexByte(b58, a[i])+1)%58]
			return string(a)
		}
	}
	bechBad := func(hrp string) func(*mrand.Rand) string {
		return func(r *mrand.Rand) string {
			a := []byte(segwitV0(r, hrp))
			i := len(a) - 1
			a[i] = bech32Chars[(strings.IndexByte(bech32Chars, a[i])+1)%32]
			return string(a)
		}
	}
	jwtBad := func(r *mrand.Rand) string {
		// three base64url segments whose header is not a JSON JOSE header
		v := jwt(r)
		return "eyJub3QiOiJqd3QifQ" + v[strings.IndexByte(v, '.'):]
	}
	deaBad := func(r *mrand.Rand) string { return bump(dea(r), -1) }
	mbiBad := func(r *mrand.Rand) string {
		b := []byte(mbi(r))
		b[1] = "SLOIBZ"[r.IntN(6)] // letters excluded from MBIs
		return string(b)
	}
	npiBad := func(r *mrand.Rand) string { return bump(npi(r), -1) }
	return []indepCase{
		{det: "card-visa", ctx: []string{"card", "card_number", "pan", "cc"}, gen: styled(visa), near: []func(*mrand.Rand) string{offByOne(visa), dropLast(visa)}, isNum: true},
		{det: "card-mastercard", ctx: []string{"card", "card_number", "cc"}, gen: styled(mc), near: []func(*mrand.Rand) string{offByOne(mc), dropLast(mc)}, isNum: true},
		{det: "card-amex", ctx: []string{"card", "amex", "cc"}, gen: styled(amex), near: []func(*mrand.Rand) string{offByOne(amex), dropLast(amex)}, isNum: true},
		{det: "card-discover", ctx: []string{"card", "cc"}, gen: styled(disc), near: []func(*mrand.Rand) string{offByOne(disc)}, isNum: true},
		{det: "card-jcb", ctx: []string{"card", "cc"}, gen: styled(jcb), near: []func(*mrand.Rand) string{offByOne(jcb)}, isNum: true},
		{det: "card-diners", ctx: []string{"card", "cc"}, gen: diners, near: []func(*mrand.Rand) string{offByOne(diners)}, isNum: true},
		{det: "card-unionpay", ctx: []string{"card", "cc"}, gen: styled(union), near: []func(*mrand.Rand) string{offByOne(union)}, isNum: true},
		{det: "iban", ctx: []string{"iban", "account", "bank"}, gen: ibanGen, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string { return bump(iban(r, "FR"), -3) }, ibanBadLen}},
		{det: "aba-routing", ctx: []string{"routing number", "aba", "routing"}, gen: aba, near: []func(*mrand.Rand) string{offByOne(aba)}},
		{det: "us-ssn", ctx: []string{"ssn", "social security"}, gen: either(ssn, plain(ssn)), near: []func(*mrand.Rand) string{ssnReserved}},
		{det: "uk-nhs", ctx: []string{"nhs number", "nhs"}, gen: func(r *mrand.Rand) string { return group(nhs(r), " ", 3, 3) }, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string { return group(bump(nhs(r), -1), " ", 3, 3) }}},
		{det: "uk-nino", ctx: []string{"nino", "national insurance"}, gen: nino, near: []func(*mrand.Rand) string{ninoBad}},
		{det: "es-dni", ctx: []string{"dni", "nif"}, gen: dni, near: []func(*mrand.Rand) string{dniBad}},
		{det: "es-nie", ctx: []string{"nie"}, gen: nie, near: []func(*mrand.Rand) string{nieBad}},
		{det: "br-cpf", ctx: []string{"cpf"}, gen: either(cpf, plain(cpf)), near: []func(*mrand.Rand) string{offByOne(cpf)}},
		{det: "br-cnpj", ctx: []string{"cnpj"}, gen: either(cnpj, plain(cnpj)), near: []func(*mrand.Rand) string{offByOne(cnpj)}},
		{det: "in-aadhaar", ctx: []string{"aadhaar", "uid"}, gen: either(aadhaar, plain(aadhaar)), near: []func(*mrand.Rand) string{offByOne(aadhaar)}},
		{det: "in-pan", ctx: []string{"pan", "income tax pan"}, gen: pan, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string {
			b := []byte(pan(r))
			b[3] = "DEIMNOQRSUVWXYZ"[r.IntN(15)] // not a holder-type letter (K is one)
			return string(b)
		}}},
		{det: "au-tfn", ctx: []string{"tfn", "tax file number"}, gen: tfn, near: []func(*mrand.Rand) string{offByOne(tfn)}},
		{det: "au-abn", ctx: []string{"abn"}, gen: either(abn, plain(abn)), near: []func(*mrand.Rand) string{offByOne(abn)}},
		{det: "au-medicare", ctx: []string{"medicare", "medicare number"}, gen: medicare, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string { return bump(medicare(r), 9) }}},
		{det: "pl-pesel", ctx: []string{"pesel"}, gen: pesel, near: []func(*mrand.Rand) string{offByOne(pesel)}},
		{det: "fi-hetu", ctx: []string{"hetu", "henkilötunnus"}, gen: hetu, near: []func(*mrand.Rand) string{hetuBad}},
		{det: "kr-rrn", ctx: []string{"rrn", "주민등록번호"}, gen: rrn, near: []func(*mrand.Rand) string{offByOne(rrn)}},
		{det: "tr-tckn", ctx: []string{"tckn", "tc kimlik"}, gen: tckn, near: []func(*mrand.Rand) string{offByOne(tckn)}},
		{det: "de-steuer-id", ctx: []string{"steuerid", "steuer-id", "idnr"}, gen: steuerID, near: []func(*mrand.Rand) string{offByOne(steuerID)}},
		{det: "it-codice-fiscale", ctx: []string{"codice fiscale", "cf"}, gen: codiceFiscale, near: []func(*mrand.Rand) string{cfBad}},
		{det: "nl-bsn", ctx: []string{"bsn", "burgerservicenummer"}, gen: bsn, near: []func(*mrand.Rand) string{offByOne(bsn)}},
		{det: "fr-nir", ctx: []string{"nir", "numéro de sécurité sociale", "insee"}, gen: either(nir, plain(nir)), near: []func(*mrand.Rand) string{offByOne(nir)}},
		{det: "cn-resident-id", ctx: []string{"resident id", "身份证"}, gen: cnID, near: []func(*mrand.Rand) string{cnBad}},
		{det: "ca-sin", ctx: []string{"sin", "social insurance number"}, gen: either(sin, plain(sin)), near: []func(*mrand.Rand) string{offByOne(sin)}},
		{det: "za-id", ctx: []string{"id number", "rsa id"}, gen: zaID, near: []func(*mrand.Rand) string{offByOne(zaID)}},
		{det: "se-personnummer", ctx: []string{"personnummer", "pnr"}, gen: personnummer, near: []func(*mrand.Rand) string{offByOne(personnummer)}},
		{det: "us-npi", ctx: []string{"npi", "provider npi"}, gen: npi, near: []func(*mrand.Rand) string{npiBad}, isNum: true},
		{det: "us-dea", ctx: []string{"dea", "dea number"}, gen: dea, near: []func(*mrand.Rand) string{deaBad}},
		{det: "us-mbi", ctx: []string{"mbi", "medicare beneficiary"}, gen: mbi, near: []func(*mrand.Rand) string{mbiBad}},
		{det: "github-pat", ctx: []string{"token", "GITHUB_TOKEN"}, gen: func(r *mrand.Rand) string { return crcToken(r, "ghp_") }, near: []func(*mrand.Rand) string{ghpBad("ghp_")}},
		{det: "github-oauth-token", ctx: []string{"token"}, gen: func(r *mrand.Rand) string { return crcToken(r, "gho_") }, near: []func(*mrand.Rand) string{ghpBad("gho_")}},
		{det: "npm-token", ctx: []string{"npm token", "NPM_TOKEN"}, gen: func(r *mrand.Rand) string { return crcToken(r, "npm_") }, near: []func(*mrand.Rand) string{ghpBad("npm_")}},
		{det: "jwt", ctx: []string{"authorization", "id_token"}, gen: jwt, near: []func(*mrand.Rand) string{jwtBad}},
		{det: "pem-private-key", ctx: []string{"key", "private key"}, gen: func(r *mrand.Rand) string { return strings.TrimSpace(pemKey(r.IntN(2))) }, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string {
			return "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + randB62(r, 40) + "\n-----END PUBLIC KEY-----"
		}}},
		{det: "openssh-private-key", ctx: []string{"id_ed25519", "ssh key"}, gen: func(*mrand.Rand) string { return strings.TrimSpace(pemKey(2)) }, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string {
			return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + randB62(r, 43) + " ops@bastion"
		}}},
		{det: "card-maestro", ctx: []string{"card", "maestro"}, gen: cardGen([]string{"6759", "5018", "6304"}, []int{16, 19}), near: []func(*mrand.Rand) string{offByOne(cardGen([]string{"6759"}, []int{16}))}, isNum: true},
		{det: "card-mir", ctx: []string{"card", "карта"}, gen: styled(cardGen([]string{"2200", "2204"}, []int{16})), near: []func(*mrand.Rand) string{offByOne(cardGen([]string{"2201"}, []int{16}))}, isNum: true},
		{det: "btc-address", ctx: []string{"btc", "wallet"}, gen: func(r *mrand.Rand) string { return base58Check(r, []byte{0, 5}[r.IntN(2)]) }, near: []func(*mrand.Rand) string{btcBad(0)}},
		{det: "btc-bech32-address", ctx: []string{"btc", "wallet"}, gen: func(r *mrand.Rand) string { return segwitV0(r, "bc") }, near: []func(*mrand.Rand) string{bechBad("bc")}},
		{det: "eth-address", ctx: []string{"eth", "wallet"}, gen: eip55, near: []func(*mrand.Rand) string{func(r *mrand.Rand) string { return flipCase(eip55(r)) }}},
	}
}

// indepDoc lays a value out as a realistic document; it returns the text,
// whether it is JSON, and the byte span of the value.
func indepDoc(r *mrand.Rand, ctx, val string, asNum bool) (text string, isJSON bool, s, e int) {
	key := strings.ReplaceAll(ctx, " ", "_")
	var pre, post string
	switch t := r.IntN(5); {
	case asNum:
		pre = fmt.Sprintf(`{"order":{"id":"ord_%d","amount":129.95,"%s":`, r.IntN(1e6), key)
		post = `,"currency":"EUR"}}`
		isJSON = true
	case t == 0:
		pre = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"Customer record found. %s: `, r.IntN(100), ctx)
		post = `. Last updated 2026-11-02."}],"isError":false}}`
		isJSON = true
	case t == 1:
		pre = fmt.Sprintf(`{"rows":[{"name":"Ana Müller","city":"Zürich","%s":"`, key)
		post = `","updated_at":"2026-10-12T08:14:55Z"}],"count":1}`
		isJSON = true
	case t == 2:
		pre = fmt.Sprintf("2026-11-25T20:11:03.123Z INFO svc=billing req_id=7f3a9c2e %s=", key)
		post = " status=200 latency_ms=41\n"
	case t == 3:
		pre = fmt.Sprintf("    // staging credentials for the billing client\n    const %s = \"", strings.ToUpper(strings.ReplaceAll(key, "-", "_")))
		post = "\"\n"
	default:
		pre = fmt.Sprintf("Hi team, the %s is ", ctx)
		post = " — please update the record by Friday.\n"
	}
	if isJSON && !asNum { // a JSON string holds the escaped value (PEM newlines)
		b, _ := json.Marshal(val)
		val = string(b[1 : len(b)-1])
	}
	return pre + val + post, isJSON, len(pre), len(pre) + len(val)
}

type pr struct{ tp, fp, fn int }

func (c pr) p() float64 {
	if c.tp+c.fp == 0 {
		return 1
	}
	return float64(c.tp) / float64(c.tp+c.fp)
}

func (c pr) r() float64 {
	if c.tp+c.fn == 0 {
		return 1
	}
	return float64(c.tp) / float64(c.tp+c.fn)
}

// TestIndependentReviewSet measures precision and recall on a test set
// written independently of the package's corpus generators.
func TestIndependentReviewSet(t *testing.T) {
	sc, err := dlp.New(dlp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(20261125)
	if v := os.Getenv("DLP_REVIEW_SEED"); v != "" {
		if _, err := fmt.Sscan(v, &seed); err != nil {
			t.Fatalf("DLP_REVIEW_SEED: %v", err)
		}
	}
	r := mrand.New(mrand.NewPCG(seed, 7))
	const n = 60
	per := map[string]*pr{}
	perCat := map[dlp.Category]*pr{}
	verbose := os.Getenv("DLP_REVIEW_VERBOSE") != ""
	scan := func(text string, isJSON bool) []dlp.Finding {
		if isJSON {
			fs, err := sc.ScanJSON([]byte(text))
			if err != nil {
				t.Fatalf("test document is not valid JSON: %v\n%s", err, text)
			}
			return fs
		}
		return sc.Scan([]byte(text))
	}
	var misses, fps []string
	other := map[string]int{}
	for _, c := range indepCases() {
		d, err := dlp.Lookup(c.det)
		if err != nil {
			t.Fatal(err)
		}
		cnt := &pr{}
		per[c.det] = cnt
		if perCat[d.Category] == nil {
			perCat[d.Category] = &pr{}
		}
		for i := range n {
			val := c.gen(r)
			asNum := c.isNum && i%5 == 4
			if asNum {
				val = strings.NewReplacer(" ", "", "-", "").Replace(val)
			}
			text, isJSON, s, e := indepDoc(r, c.ctx[r.IntN(len(c.ctx))], val, asNum)
			found := false
			for _, f := range scan(text, isJSON) {
				if f.Start == s && f.End == e && f.Detector == c.det {
					found = true
				} else if f.Start < e && f.End > s {
					// something else claimed the value (wrong type or span)
					cnt.fp++
					fps = append(fps, fmt.Sprintf("%s: valid %q reported as %s [%d,%d) want [%d,%d)", c.det, val, f.Detector, f.Start, f.End, s, e))
				}
			}
			if found {
				cnt.tp++
			} else {
				cnt.fn++
				misses = append(misses, fmt.Sprintf("%s: missed %q in %q", c.det, val, text))
			}
		}
		for i := range n {
			val := c.near[i%len(c.near)](r)
			text, isJSON, s, e := indepDoc(r, c.ctx[r.IntN(len(c.ctx))], val, false)
			for _, f := range scan(text, isJSON) {
				if f.Start >= e || f.End <= s {
					continue
				}
				// the target or any checksum-validated type claiming a near
				// miss is a false positive; a shape-only detector (a phone
				// number, a high-entropy value after "token:") may
				// legitimately report it and is only counted
				if fd, _ := dlp.Lookup(f.Detector); f.Detector == c.det || fd.Checksum {
					cnt.fp++
					fps = append(fps, fmt.Sprintf("%s: near miss %q reported as %s %q in %q", c.det, val, f.Detector, text[f.Start:f.End], text))
				} else {
					other[c.det+" → "+f.Detector]++
				}
			}
		}
	}
	// clean, realistic documents: anything reported there is a false positive
	for _, doc := range cleanDocs(r) {
		for _, f := range sc.Scan([]byte(doc)) {
			d, _ := dlp.Lookup(f.Detector)
			if d.Checksum {
				if per["(clean docs)"] == nil {
					per["(clean docs)"] = &pr{}
				}
				per["(clean docs)"].fp++
				fps = append(fps, fmt.Sprintf("clean doc: %s reported %q", f.Detector, doc[f.Start:f.End]))
			}
		}
	}
	var total pr
	ids := make([]string, 0, len(per))
	for id := range per {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DETECTOR\tTP\tFP\tFN\tPRECISION\tRECALL")
	for _, id := range ids {
		c := per[id]
		total.tp += c.tp
		total.fp += c.fp
		total.fn += c.fn
		if d, err := dlp.Lookup(id); err == nil {
			pc := perCat[d.Category]
			pc.tp += c.tp
			pc.fp += c.fp
			pc.fn += c.fn
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.4f\t%.4f\n", id, c.tp, c.fp, c.fn, c.p(), c.r())
	}
	fmt.Fprintln(tw, "\t\t\t\t\t")
	for _, cat := range dlp.Categories {
		if c := perCat[cat]; c != nil {
			fmt.Fprintf(tw, "category %s\t%d\t%d\t%d\t%.4f\t%.4f\n", cat, c.tp, c.fp, c.fn, c.p(), c.r())
		}
	}
	fmt.Fprintf(tw, "overall\t%d\t%d\t%d\t%.4f\t%.4f\n", total.tp, total.fp, total.fn, total.p(), total.r())
	tw.Flush()
	t.Log("\n" + sb.String())
	show := func(what string, l []string) {
		if len(l) == 0 {
			return
		}
		max := 25
		if verbose {
			max = len(l)
		}
		t.Logf("%s (%d, first %d):\n  %s", what, len(l), min(max, len(l)), strings.Join(l[:min(max, len(l))], "\n  "))
	}
	var ol []string
	for k, v := range other {
		ol = append(ol, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(ol)
	show("near misses reported by a shape-only detector (not counted)", ol)
	show("misses", misses)
	show("false positives", fps)
	if total.r() < 0.98 || total.p() < 0.99 {
		t.Errorf("independent set: precision %.4f recall %.4f, goal ≥ 0.99 / ≥ 0.98", total.p(), total.r())
	}
}

// cleanDocs are realistic documents full of numbers that are not sensitive.
func cleanDocs(r *mrand.Rand) []string {
	var out []string
	for range 40 {
		out = append(out,
			fmt.Sprintf(`{"sha":"%040x","node_id":"C_kwDOA%dAAA","commit":{"message":"bump deps (#%d)","author":{"date":"2026-11-%02dT10:%02d:00Z"}},"stats":{"additions":%d,"deletions":%d}}`,
				r.Uint64(), r.IntN(1e6), r.IntN(9999), 1+r.IntN(28), r.IntN(60), r.IntN(500), r.IntN(500)),
			fmt.Sprintf(`{"metadata":{"uid":"%08x-%04x-4%03x-a%03x-%012x","resourceVersion":"%d","creationTimestamp":"2026-11-25T09:%02d:11Z"},"status":{"podIP":"10.%d.%d.%d","startTime":"%d"}}`,
				r.Uint32(), r.IntN(0xffff), r.IntN(0xfff), r.IntN(0xfff), r.Uint64()&0xffffffffffff, 100000000+r.IntN(900000000), r.IntN(60), r.IntN(256), r.IntN(256), r.IntN(256), 1700000000000+r.Int64N(1e11)),
			fmt.Sprintf("2026-11-25 20:%02d:%02d,%03d WARN [pool-%d-thread-%d] c.e.OrderService - order %d retried after %d ms (trace=%016x span=%08x) epoch=%d\n",
				r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(9), r.IntN(99), 1000000000+r.IntN(9e8), r.IntN(5000), r.Uint64(), r.Uint32(), 1700000000+r.IntN(1e8)),
			fmt.Sprintf(`{"items":[{"sku":"SKU-%06d","isbn":"978%010d","qty":%d,"price_cents":%d,"tracking":"1Z%03X%03X%02d%08d"}],"invoice":"INV-2026-%07d"}`,
				r.IntN(1e6), r.IntN(1e10), 1+r.IntN(9), r.IntN(1e6), r.IntN(4096), r.IntN(4096), r.IntN(100), r.IntN(1e8), r.IntN(1e7)),
		)
	}
	return out
}
