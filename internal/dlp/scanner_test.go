package dlp

import (
	"errors"
	"testing"
)

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{Detectors: []string{"nope"}}); !errors.Is(err, ErrUnknownDetector) {
		t.Errorf("unknown detector: %v", err)
	}
	if _, err := New(Config{Categories: []Category{"weird"}}); !errors.Is(err, ErrUnknownCategory) {
		t.Errorf("unknown category: %v", err)
	}
	if _, err := New(Config{MinConfidence: 1.5}); err == nil {
		t.Error("min confidence 1.5 accepted")
	}
	text := []byte("card 378282246310005 mail a.b@example.com url postgres://app:Zq8wPx2m@db/x")
	// only Amex: the card router still runs, but reports Amex only
	s := mustScanner(t, Config{Detectors: []string{"card-amex", "url-password-postgres"}})
	fs := s.Scan(text)
	if len(fs) != 2 || fs[0].Detector != "card-amex" || fs[1].Detector != "url-password-postgres" || string(text[fs[1].Start:fs[1].End]) != "Zq8wPx2m" {
		t.Errorf("subset scan: %+v", fs)
	}
	s = mustScanner(t, Config{Detectors: []string{"card-visa"}})
	if fs := s.Scan(text); len(fs) != 0 {
		t.Errorf("visa-only scanner reported %+v", fs)
	}
	s = mustScanner(t, Config{Categories: []Category{PII}})
	if fs := s.Scan(text); len(fs) != 1 || fs[0].Detector != "email" {
		t.Errorf("pii-only scan: %+v", fs)
	}
}

// TestContextWords checks that context raises and lowers confidence.
func TestContextWords(t *testing.T) {
	s := mustScanner(t, Config{MinConfidence: 0.01})
	conf := func(text, id string) float64 {
		for _, f := range s.Scan([]byte(text)) {
			if f.Detector == id {
				return f.Confidence
			}
		}
		return 0
	}
	plain := conf("value 536221846 here", "us-ssn")
	ctx := conf("SSN: 536221846", "us-ssn")
	neg := conf("tracking 4111111111111111", "card-visa")
	pos := conf("credit card 4111111111111111", "card-visa")
	if !(ctx > plain && plain > 0) {
		t.Errorf("ssn confidence: plain %.2f, with context %.2f", plain, ctx)
	}
	if !(pos > neg) {
		t.Errorf("card confidence: positive context %.2f, negative %.2f", pos, neg)
	}
	// and at the default threshold the bare 9-digit number is not reported
	if fs := mustScanner(t, Config{}).Scan([]byte("value 536221846 here")); len(fs) != 0 {
		t.Errorf("bare number reported: %+v", fs)
	}
}

// TestSeparatorsAndBoundaries covers the layouts cards are written in, and
// values glued to other text.
func TestSeparatorsAndBoundaries(t *testing.T) {
	s := mustScanner(t, Config{})
	for _, tc := range []struct {
		text, id, value string
	}{
		{"pan 4111111111111111.", "card-visa", "4111111111111111"},
		{"pan 4111-1111-1111-1111,", "card-visa", "4111-1111-1111-1111"},
		{"pan 4111 1111 1111 1111 exp 12/28", "card-visa", "4111 1111 1111 1111"},
		{"amex 3782 822463 10005", "card-amex", "3782 822463 10005"},
		{`{"n":4111111111111111}`, "card-visa", "4111111111111111"},
		{"iban GB82 WEST 1234 5698 7654 32 thanks", "iban", "GB82 WEST 1234 5698 7654 32"},
		{"call (415) 555-2671 now", "phone-nanp", "(415) 555-2671"},
		{"call +44 20 7946 0958 now", "phone-intl", "+44 20 7946 0958"},
		{"from 203.0.113.9:443", "ipv4", "203.0.113.9"},
		{"line1\\n4111111111111111", "card-visa", "4111111111111111"},
	} {
		fs := s.Scan([]byte(tc.text))
		ok := false
		for _, f := range fs {
			if f.Detector == tc.id && tc.text[f.Start:f.End] == tc.value {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%q: want %s %q, got %+v", tc.text, tc.id, tc.value, fs)
		}
	}
	for _, text := range []string{"id 41111111111111119", "x4111111111111111", "4111111111111111x", "v4111-1111-1111-1111-1111"} {
		for _, f := range s.Scan([]byte(text)) {
			if f.Category == PCI {
				t.Errorf("%q: unexpected %s", text, f.Detector)
			}
		}
	}
}
