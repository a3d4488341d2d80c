package dlp

import "testing"

// reviewFound reports whether a default scanner reports detector id on
// exactly want inside text (ScanJSON when asJSON).
func reviewFound(t *testing.T, text, want, id string, asJSON bool) bool {
	t.Helper()
	s := mustScanner(t, Config{})
	fs := s.Scan([]byte(text))
	if asJSON {
		var err error
		if fs, err = s.ScanJSON([]byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fs {
		if f.Detector == id && text[f.Start:f.End] == want {
			return true
		}
	}
	return false
}

// TestReviewNearestContextWins: a label right before the value outweighs a
// lowering word in the next sentence ("Last updated …"). Before the fix any
// lowering word within 24 bytes cancelled the label, so weak formats (TFN,
// BSN, PESEL, NHS, SIN, …) were missed in ordinary prose.
func TestReviewNearestContextWins(t *testing.T) {
	cases := []struct{ text, val, id string }{
		{`{"text":"Customer record found. tfn: 389 958 596. Last updated 2026-11-02."}`, "389 958 596", "au-tfn"},
		{`{"text":"Customer record found. bsn: 593292686. Last updated 2026-11-02."}`, "593292686", "nl-bsn"},
		{`{"text":"pesel: 08230345218 (record created 2026-01-02)"}`, "08230345218", "pl-pesel"},
	}
	for _, c := range cases {
		if !reviewFound(t, c.text, c.val, c.id, true) {
			t.Errorf("%s not found in %s", c.id, c.text)
		}
	}
	// the nearer lowering word still wins
	if reviewFound(t, `{"text":"tfn on file; updated ts 389958596"}`, "389958596", "au-tfn", true) {
		t.Error("a timestamp right next to the value was reported as a TFN")
	}
}

// TestReviewUnionPayWholeIIN: UnionPay issues from the whole 62 IIN block
// (626xxx and 628xxx included); only 620000–625999 was recognised and
// "6268 9191 8970 1324" was reported as an Aadhaar number instead.
func TestReviewUnionPayWholeIIN(t *testing.T) {
	for _, v := range []string{"6268 9191 8970 1324", "6297001426998768", "6282 4641 2410 3940"} {
		if !luhnOK(v) {
			t.Fatalf("test vector %s fails Luhn", v)
		}
		if !reviewFound(t, "card: "+v+" exp 11/29", v, "card-unionpay", false) {
			t.Errorf("UnionPay %s not reported", v)
		}
	}
}

func luhnOK(s string) bool {
	sum, alt := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ' ' {
			continue
		}
		d := int(s[i] - '0')
		if alt {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		alt = !alt
	}
	return sum%10 == 0
}

// TestReviewContextStopsAtSentenceEnd: lowering words in the next sentence
// ("nhs number: 566 103 1076. Last updated …") do not cancel the label.
func TestReviewContextStopsAtSentenceEnd(t *testing.T) {
	cases := []struct{ text, val, id string }{
		{"Customer record found. nhs number: 566 103 1076. Last updated 2026-11-02.", "566 103 1076", "uk-nhs"},
		{"medicare number: 3848 63039 3. Last updated 2026-11-02.", "3848 63039 3", "au-medicare"},
	}
	for _, c := range cases {
		if !reviewFound(t, c.text, c.val, c.id, false) {
			t.Errorf("%s not found in %q", c.id, c.text)
		}
	}
	// within the sentence the lowering word still counts
	if reviewFound(t, "patient 5661031076 updated", "5661031076", "uk-nhs", false) {
		t.Error("a bare 10-digit run next to 'updated' reported as NHS number")
	}
}

// TestReviewForeignLabelLowers: the label of one identifier type next to a
// value that fails its checksum must not let another type that happens to
// validate claim it (TFN → SIN, HETU → CPR, Aadhaar → My Number).
func TestReviewForeignLabelLowers(t *testing.T) {
	cases := []struct{ text, val, id string }{
		{"TFN=269 494 431 status=200", "269 494 431", "ca-sin"},
		{"hetu: 241036-0759", "241036-0759", "dk-cpr"},
		{`{"aadhaar":"8903 2320 3909"}`, "8903 2320 3909", "jp-my-number"},
	}
	for _, c := range cases {
		if reviewFound(t, c.text, c.val, c.id, c.text[0] == '{') {
			t.Errorf("%s reported under another identifier's label: %q", c.id, c.text)
		}
	}
	// its own label still wins over a foreign one further away
	if !reviewFound(t, "tfn on file, sin: 269 494 431", "269 494 431", "ca-sin", false) {
		t.Error("SIN next to its own label not reported")
	}
}

// TestReviewSecretSpanStopsAtFullStop: "token: <value>. Next sentence"
// reported the full stop as part of the secret, so redaction ate it and the
// reported span was off by one.
func TestReviewSecretSpanStopsAtFullStop(t *testing.T) {
	v := "Zq8wPx2mK4vB7nR1tY6uE3oI9aS5dF0g"
	if !reviewFound(t, "Deploy ok. api token: "+v+". Rotate monthly.", v, "generic-secret-assignment", false) {
		t.Error("secret span not exact before a full stop")
	}
}

// TestReviewContextNonASCIIUpperCase: an upper-case context word with a
// non-ASCII letter (HENKILÖTUNNUS, a Go constant name) counts like its
// lower-case form.
func TestReviewContextNonASCIIUpperCase(t *testing.T) {
	// a mistyped HETU that happens to be a valid CPR: the Finnish label must
	// keep the Danish detector away, whatever its case
	for _, lbl := range []string{"henkilötunnus", "HENKILÖTUNNUS"} {
		if reviewFound(t, "const "+lbl+" = \"250195-5208\"", "250195-5208", "dk-cpr", false) {
			t.Errorf("%s: reported as a Danish CPR", lbl)
		}
	}
}

// TestReviewSocialSecurityIsSSN: "social security" names the US SSN; a
// 9-digit value after it that also passes Luhn is not a Canadian SIN.
func TestReviewSocialSecurityIsSSN(t *testing.T) {
	text := "Hi team, the social security is 471459917 — please update the record by Friday."
	if !reviewFound(t, text, "471459917", "us-ssn", false) || reviewFound(t, text, "471459917", "ca-sin", false) {
		t.Errorf("want us-ssn, not ca-sin, in %q", text)
	}
	// a SIN with its own label stays a SIN
	if !reviewFound(t, "social insurance number: 471 459 917", "471 459 917", "ca-sin", false) {
		t.Error("SIN next to its label not reported")
	}
}
