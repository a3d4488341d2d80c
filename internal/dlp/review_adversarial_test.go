package dlp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// reviewAdversarial are pathological inputs beyond adversarial_test.go:
// long single-separator digit chains, long base64/base62/hex runs behind
// literal prefixes, near-keywords, deep JSON and PEM bodies without an end.
var reviewAdversarial = map[string]func(n int) []byte{
	"digit-chain":    func(n int) []byte { return bytes.Repeat([]byte("1-"), n/2) },
	"digit-spaces":   func(n int) []byte { return bytes.Repeat([]byte("4111 "), n/5) },
	"base64-run":     func(n int) []byte { return bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo+/"), n/38) },
	"ghp-long":       func(n int) []byte { return append([]byte("ghp_"), bytes.Repeat([]byte("aZ09"), n/4)...) },
	"akia-long":      func(n int) []byte { return append([]byte("AKIA"), bytes.Repeat([]byte("QZ"), n/2)...) },
	"hex-run":        func(n int) []byte { return append([]byte("0x"), bytes.Repeat([]byte("deadBEEF"), n/8)...) },
	"near-keywords":  func(n int) []byte { return bytes.Repeat([]byte("passwor passwords ssnx ibn tokenized secre: "), n/44) },
	"kw-then-digits": func(n int) []byte { return bytes.Repeat([]byte("ssn 1 2 3 4 5 6 7 8 9 "), n/22) },
	"deep-json": func(n int) []byte {
		return []byte(strings.Repeat(`{"a":[`, n/12) + `"4111111111111111"` + strings.Repeat(`]}`, n/12))
	},
	"wide-json": func(n int) []byte { return []byte(`{` + strings.Repeat(`"ssn":"078-05-1120",`, n/20) + `"x":1}`) },
	"pem-no-end": func(n int) []byte {
		return append([]byte("-----BEGIN PRIVATE KEY-----\n"), bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0\n"), n/37)...)
	},
	"url-userinfo":    func(n int) []byte { return append([]byte("postgres://u:"), bytes.Repeat([]byte("p:"), n/2)...) },
	"email-dots":      func(n int) []byte { return append([]byte("a@"), bytes.Repeat([]byte("b."), n/2)...) },
	"iban-letters":    func(n int) []byte { return bytes.Repeat([]byte("GB82 WEST "), n/10) },
	"eth-hex-flood":   func(n int) []byte { return bytes.Repeat([]byte("0x"), n/2) },
	"bech32-flood":    func(n int) []byte { return append([]byte("bc1q"), bytes.Repeat([]byte("qpzry9x8gf2tvdw0"), n/16)...) },
	"jwt-dots":        func(n int) []byte { return append([]byte("eyJ"), bytes.Repeat([]byte("a."), n/2)...) },
	"unicode-digits":  func(n int) []byte { return bytes.Repeat([]byte("٤١١١ ٤١١١ 4111 "), n/20) },
	"repeated-prefix": func(n int) []byte { return bytes.Repeat([]byte("sk-proj-"), n/8) },
}

// BenchmarkReviewAdversarial prints ns/byte at 16 KB and 1 MB for each
// input; a linear scanner shows the same figure at both sizes.
func BenchmarkReviewAdversarial(b *testing.B) {
	s := mustScanner(b, Config{})
	for name, gen := range reviewAdversarial {
		for _, size := range []int{16 << 10, 1 << 20} {
			in := gen(size)
			b.Run(fmt.Sprintf("%s/%dKB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					s.Scan(in)
					s.ScanJSON(in)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(in)), "ns/byte")
			})
		}
	}
}

// TestReviewAdversarialWork checks every review input for panics, findings
// outside the input and memory: the bytes allocated per input byte must not
// grow with the input size (a 64× larger input may allocate at most ~64×
// as much, plus slack).
func TestReviewAdversarialWork(t *testing.T) {
	s := mustScanner(t, Config{})
	for name, gen := range reviewAdversarial {
		per := func(n int) float64 {
			in := gen(n)
			var fs []Finding
			a := testing.AllocsPerRun(1, func() { fs = s.Scan(in); s.ScanJSON(in) })
			for _, f := range fs {
				if f.Start < 0 || f.End > len(in) || f.Start >= f.End {
					t.Errorf("%s: bad finding %+v", name, f)
				}
			}
			return a / float64(len(in))
		}
		small, large := per(16<<10), per(1<<20)
		if large > small*2+0.01 {
			t.Errorf("%s: allocations per byte grow with input: %.4f at 16 KB, %.4f at 1 MB", name, small, large)
		}
	}
}
