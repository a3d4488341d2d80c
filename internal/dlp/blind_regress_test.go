package dlp

import "testing"

// Regression tests for what the blind corpus (qa/dlp TestBlindCorpus,
// third-party generators) found.

// TestBlindCSVColumnHeader: in a CSV export the label of a value is the
// header of its column. Before the fix the header line was out of reach
// (context stops at the line end), so weak formats and keyword detectors
// were missed in every CSV export (157 of 449 blind misses).
func TestBlindCSVColumnHeader(t *testing.T) {
	cases := []struct{ text, val, id string }{
		{"name,city,ssn,created\n\"Hershel Toy\",Biloxi,316552086,2026-05-01\n", "316552086", "us-ssn"},
		{"name,city,pesel,created\n\"Ana Nowak\",Kraków,41690933883,2026-02-15\n", "41690933883", "pl-pesel"},
		{"name;city;bsn\nJan;Utrecht;999991747\nPiet;Delft;999998237\n", "999998237", "nl-bsn"},
		// a keyword detector: the value is rows below its keyword
		{"name,city,routing_number,created\n\"Alverta B\",Ethafort,011000015,2026-08-20\n", "011000015", "aba-routing"},
		{"id\tcard holder\tdob\n17\tAna\t1985-04-27\n", "1985-04-27", "date-of-birth"},
	}
	for _, c := range cases {
		if !reviewFound(t, c.text, c.val, c.id, false) {
			t.Errorf("%s not found in %q", c.id, c.text)
		}
	}
	// the header of another column labels nothing
	for _, text := range []string{
		"name,ssn,invoice\n\"Ana\",,316552086\n",
		"ssn,comment\n\"Ana\",fine\n\nref,order\n1,316552086\n", // another table
	} {
		if reviewFound(t, text, "316552086", "us-ssn", false) {
			t.Errorf("a number outside the ssn column was reported as an SSN in %q", text)
		}
	}
}
