package dlp

import (
	"encoding/hex"
	"testing"
)

// NIST SP 800-38G FF1 samples 1 and 2 (AES-128, radix 10).
func TestFF1NISTSamples(t *testing.T) {
	key, _ := hex.DecodeString("2B7E151628AED2A6ABF7158809CF4F3C")
	f, err := newFF1(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tweak, pt, ct string }{
		{"", "0123456789", "2433477484"},
		{"39383736353433323130", "0123456789", "6124200773"},
	} {
		tw, _ := hex.DecodeString(tc.tweak)
		got, err := f.encryptDigits(tw, tc.pt, false)
		if err != nil || got != tc.ct {
			t.Errorf("encrypt(%s, tweak %s) = %s, %v; want %s", tc.pt, tc.tweak, got, err, tc.ct)
		}
		back, err := f.encryptDigits(tw, got, true)
		if err != nil || back != tc.pt {
			t.Errorf("decrypt = %s, %v; want %s", back, err, tc.pt)
		}
	}
	if _, err := f.encryptDigits(nil, "12345", false); err == nil {
		t.Error("5 digits accepted; the FF1 domain must be at least 10^6")
	}
}
