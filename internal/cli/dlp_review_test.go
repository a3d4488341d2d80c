package cli

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

type scanLine struct {
	Detector string `json:"detector"`
	Start    int    `json:"start"`
	End      int    `json:"end"`
}

func scanLines(t *testing.T, out string) []scanLine {
	t.Helper()
	var got []scanLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l scanLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		got = append(got, l)
	}
	return got
}

// TestDLPScanByteOffsetsUTF8AndEscapes: start/end are byte offsets into the
// input as given, with multi-byte UTF-8 before the values and JSON escapes
// inside them, in JSON mode and in streamed text mode.
func TestDLPScanByteOffsetsUTF8AndEscapes(t *testing.T) {
	in := `{"note":"héllo wörld 日本語 😀 card 4111 1111 1111 1111","esc":"\u00e9\n4111\u00201111\u00201111\u00201111 \"q\" bob@example.com","n":5555555555554444}`
	want := map[string]string{
		"4111 1111 1111 1111":                "card-visa",
		`4111\u00201111\u00201111\u00201111`: "card-visa",
		"bob@example.com":                    "email",
		"5555555555554444":                   "card-mastercard",
	}
	for _, mode := range []string{"auto", "json"} {
		out, err := runCLI(t, in, "dlp", "scan", "--format", "json", "--mode", mode)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range scanLines(t, out) {
			if l.Start < 0 || l.End > len(in) || l.Start >= l.End {
				t.Fatalf("%s: offsets outside the input: %+v", mode, l)
			}
			got[in[l.Start:l.End]] = l.Detector
		}
		for v, d := range want {
			if got[v] != d {
				t.Errorf("%s mode: %q → %q, want %s (all: %v)", mode, v, got[v], d, got)
			}
		}
	}
	// plain text with multi-byte characters, whole and streamed
	txt := "Zürich ☕ — Karte: 4111 1111 1111 1111, 📧 jane.doe@example.com\n"
	for _, mode := range []string{"auto", "text"} {
		out, err := runCLI(t, txt, "dlp", "scan", "--format", "json", "--mode", mode)
		if err != nil {
			t.Fatal(err)
		}
		ls := scanLines(t, out)
		if len(ls) != 2 || txt[ls[0].Start:ls[0].End] != "4111 1111 1111 1111" || txt[ls[1].Start:ls[1].End] != "jane.doe@example.com" {
			t.Errorf("%s mode: %+v", mode, ls)
		}
	}
}

// TestDLPDetectorsFields: ids are unique, categories and tags come from the
// documented sets.
func TestDLPDetectorsFields(t *testing.T) {
	out, err := runCLI(t, "", "dlp", "detectors", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []struct {
		ID       string   `json:"id"`
		Category string   `json:"category"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	cats := map[string]bool{"pci": true, "banking": true, "national-id": true, "phi": true, "secrets": true, "pii": true, "crypto": true}
	tags := map[string]bool{"PCI-DSS": true, "HIPAA": true, "SOC 2": true, "GDPR": true}
	seen := map[string]bool{}
	perCat := map[string]int{}
	for _, d := range ds {
		if seen[d.ID] {
			t.Errorf("duplicate id %s", d.ID)
		}
		seen[d.ID] = true
		if !cats[d.Category] {
			t.Errorf("%s: category %q", d.ID, d.Category)
		}
		perCat[d.Category]++
		for _, tg := range d.Tags {
			if !tags[tg] {
				t.Errorf("%s: tag %q", d.ID, tg)
			}
		}
	}
	for c := range cats {
		if perCat[c] == 0 {
			t.Errorf("no detector in category %s", c)
		}
	}
	if perCat["secrets"] < 60 {
		t.Errorf("%d secrets detectors, the contract asks for at least 60", perCat["secrets"])
	}
}
