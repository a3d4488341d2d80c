package dlp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestScanJSONPathsAndOffsets(t *testing.T) {
	s := mustScanner(t, Config{})
	doc := `{"customer":{"name":"Jane","ssn":"536-22-1846","cards":[{"number":4111111111111111,"cvv":"737"}]},` +
		`"note":"mail jane.doe@example.com","bsn":"111222333","content":[{"type":"text","text":"{\"iban\": \"GB82 WEST 1234 5698 7654 32\", \"pw\": \"x\"}"}],` +
		`"esc":"card\u0020number 4111\u00201111 1111 1111"}`
	if !json.Valid([]byte(doc)) {
		t.Fatal("test document is not valid JSON")
	}
	fs, err := s.ScanJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"$.customer.ssn":             "us-ssn",
		"$.customer.cards[0].number": "card-visa",
		"$.customer.cards[0].cvv":    "card-cvv",
		"$.note":                     "email",
		"$.bsn":                      "nl-bsn",
		"$.content[0].text#$.iban":   "iban",
		"$.esc":                      "card-visa",
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.Path] = f.Detector
		raw := doc[f.Start:f.End]
		if f.Path == "$.customer.ssn" && raw != "536-22-1846" {
			t.Errorf("ssn span = %q", raw)
		}
		if f.Path == "$.content[0].text#$.iban" && raw != "GB82 WEST 1234 5698 7654 32" {
			t.Errorf("nested iban span = %q", raw)
		}
		if f.Path == "$.esc" && raw != `4111\u00201111 1111 1111` {
			t.Errorf("escaped span = %q", raw)
		}
	}
	for p, d := range want {
		if got[p] != d {
			t.Errorf("path %s: got detector %q, want %q (all: %v)", p, got[p], d, got)
		}
	}
}

func TestScanJSONKeyContext(t *testing.T) {
	s := mustScanner(t, Config{})
	// a bare 9-digit SSN is only reported with context; the key gives it
	fs, err := s.ScanJSON([]byte(`{"ssn": "536221846", "order": "536221846"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Path != "$.ssn" || fs[0].Detector != "us-ssn" {
		t.Errorf("got %+v", fs)
	}
	fs, _ = s.ScanJSON([]byte(`{"password": "hunter2-Secret!", "passwordHint": null, "dateOfBirth": "1984-02-29"}`))
	dets := map[string]bool{}
	for _, f := range fs {
		dets[f.Detector] = true
	}
	if !dets["password-assignment"] || !dets["date-of-birth"] {
		t.Errorf("key context missed: %+v", fs)
	}
}

func TestScanJSONInvalid(t *testing.T) {
	s := mustScanner(t, Config{})
	for _, doc := range []string{`{"a":`, `{"a" 1}`, `[1,2`, `{"a":"\x01"}`, `"abc`, `{"a":1}x`, strings.Repeat("[", 600) + strings.Repeat("]", 600), `{"a":tru}`} {
		if _, err := s.ScanJSON([]byte(doc)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%q: err = %v, want ErrInvalidJSON", doc, err)
		}
	}
}

func FuzzScanJSON(f *testing.F) {
	f.Add([]byte(`{"ssn":"536-22-1846","n":4111111111111111,"t":"{\"a\":\"b\\u00e9\"}"}`))
	f.Add([]byte(`[1,"x",{"k":[true,false,null]}]`))
	f.Add([]byte(`"\ud83d\ude00 4111 1111 1111 1111"`))
	s := mustScanner(f, Config{})
	f.Fuzz(func(t *testing.T, doc []byte) {
		fs, err := s.ScanJSON(doc)
		if err != nil {
			return
		}
		for _, x := range fs {
			if x.Start < 0 || x.End > len(doc) || x.Start > x.End {
				t.Fatalf("finding %+v out of range for %d bytes", x, len(doc))
			}
		}
	})
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("card 4111-1111-1111-1111 ssn 123-45-6789 ghp_x postgres://u:p@h/db"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----"))
	f.Add([]byte("2001:db8::1 00:1a:2b:3c:4d:5e a@b.co %B4111111111111111^X/Y^2512"))
	s := mustScanner(f, Config{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := s.Scan(b)
		last := -1
		for _, x := range fs {
			if x.Start < 0 || x.End > len(b) || x.Start >= x.End || x.Start < last {
				t.Fatalf("bad finding %+v (len %d)", x, len(b))
			}
			last = x.End
		}
	})
}
