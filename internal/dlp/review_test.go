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
