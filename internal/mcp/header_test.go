package mcp

import (
	"net/http"
	"testing"
)

func TestHeaderValueEncoding(t *testing.T) {
	tests := []struct{ in, enc string }{
		{"us-west1", "us-west1"},
		{"Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="},
		{" padded ", "=?base64?IHBhZGRlZCA=?="},
		{"line1\nline2", "=?base64?bGluZTEKbGluZTI=?="},
		{"=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="},
		{"", ""},
	}
	for _, tt := range tests {
		if got := EncodeHeaderValue(tt.in); got != tt.enc {
			t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.enc)
		}
		if got, err := DecodeHeaderValue(tt.enc); err != nil || got != tt.in {
			t.Errorf("Decode(%q) = %q, %v; want %q", tt.enc, got, err, tt.in)
		}
	}
	for _, bad := range []string{"=?base64?!!!?=", "a\x01b", "é", "=?base64?/w==?="} {
		if _, err := DecodeHeaderValue(bad); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func TestCheckRequestHeaders(t *testing.T) {
	m := NewRequest(IntID(1), MethodToolsCall, []byte(`{"name":"get wëather"}`))
	head, _ := PeekParams(m.Params)
	h := http.Header{}
	SetRequestHeaders(h, m, head, Rev20260728)
	if err := CheckRequestHeaders(h, m, head, Rev20260728); err != nil {
		t.Fatalf("headers set by SetRequestHeaders rejected: %v", err)
	}
	cases := map[string]func(http.Header){
		"wrong name":     func(h http.Header) { h.Set(HeaderName, "other") },
		"missing name":   func(h http.Header) { h.Del(HeaderName) },
		"wrong method":   func(h http.Header) { h.Set(HeaderMethod, "tools/list") },
		"missing method": func(h http.Header) { h.Del(HeaderMethod) },
		"wrong version":  func(h http.Header) { h.Set(HeaderProtocolVersion, Rev20251125) },
		"bad base64":     func(h http.Header) { h.Set(HeaderName, "=?base64?***?=") },
		"two names":      func(h http.Header) { h.Add(HeaderName, "x") },
	}
	for name, mut := range cases {
		h2 := h.Clone()
		mut(h2)
		err := CheckRequestHeaders(h2, m, head, Rev20260728)
		if err == nil || err.Code != CodeHeaderMismatch {
			t.Errorf("%s: err = %v, want HeaderMismatch", name, err)
		}
	}
}

func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"plain", "=?base64?SGVsbG8=?=", "=?base64??=", "\x00", "é", " x", "=?base64?=?="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeHeaderValue(s)
		dec, err := DecodeHeaderValue(enc)
		if isUTF8(s) && (err != nil || dec != s) {
			t.Fatalf("round trip of %q: %q, %v", s, dec, err)
		}
		_, _ = DecodeHeaderValue(s)
	})
}

func isUTF8(s string) bool {
	for _, r := range s {
		if r == 0xFFFD {
			return false
		}
	}
	return true
}
