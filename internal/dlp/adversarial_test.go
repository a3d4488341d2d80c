package dlp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// adversarial inputs aimed at every trigger: long digit runs with
// separators, repeated prefixes and specials, unterminated PEM blocks, JWT
// look-alikes, keyword floods and deep JSON.
var adversarial = map[string]func(n int) []byte{
	"digit-groups":   func(n int) []byte { return bytes.Repeat([]byte("1 2-3.4/5 "), n/10) },
	"long-digits":    func(n int) []byte { return bytes.Repeat([]byte("4"), n) },
	"prefix-flood":   func(n int) []byte { return bytes.Repeat([]byte("sk-ant-api03-ghp_AKIAeyJ"), n/24) },
	"pem-open":       func(n int) []byte { return bytes.Repeat([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA"), n/36) },
	"colons":         func(n int) []byte { return bytes.Repeat([]byte("a:b::c:1://"), n/11) },
	"at-signs":       func(n int) []byte { return bytes.Repeat([]byte("a@b.c@"), n/6) },
	"keyword-flood":  func(n int) []byte { return bytes.Repeat([]byte("password cvv ssn dob iban "), n/26) },
	"jwt-lookalike":  func(n int) []byte { return bytes.Repeat([]byte("eyJhbGciOiJIUzI1NiJ9."), n/21) },
	"upper-words":    func(n int) []byte { return bytes.Repeat([]byte("AB 12 CD 34 "), n/12) },
	"json-escapes":   func(n int) []byte { return []byte(`"` + strings.Repeat(`\u0034\n1`, n/8) + `"`) },
	"token-run":      func(n int) []byte { return bytes.Repeat([]byte("ya29."), n/5) },
	"jwt-dashes":     func(n int) []byte { return bytes.Repeat([]byte("eyJ-"), n/4) },
	"base58-letters": func(n int) []byte { return bytes.Repeat([]byte("1BoatSLRHtKNngkdXEeobR76b53LETtpyT "), n/35) },
}

// TestAdversarialInputs makes sure no pathological input panics or produces
// findings outside the input.
func TestAdversarialInputs(t *testing.T) {
	s := mustScanner(t, Config{})
	for name, gen := range adversarial {
		in := gen(64 << 10)
		for _, f := range s.Scan(in) {
			if f.Start < 0 || f.End > len(in) || f.Start >= f.End {
				t.Errorf("%s: bad finding %+v", name, f)
			}
		}
		_, _ = s.ScanJSON(in)
	}
}

// BenchmarkAdversarial reports the CPU cost per byte of each pathological
// input at two sizes; equal figures at both sizes show the scan is linear.
func BenchmarkAdversarial(b *testing.B) {
	s := mustScanner(b, Config{})
	for name, gen := range adversarial {
		for _, size := range []int{16 << 10, 256 << 10} {
			in := gen(size)
			b.Run(fmt.Sprintf("%s/%dKB", name, size>>10), func(b *testing.B) {
				benchScan(b, in, func(d []byte) { s.Scan(d) })
			})
		}
	}
}

// FuzzApply checks that every action keeps a JSON document valid and never
// leaves a redacted value behind.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"a":"4111 1111 1111 1111","n":5555555555554444,"e":"x@example.com","s":"SSN 536-22-1846"}`))
	f.Add([]byte(`["\u0034111111111111111","{\"pan\":\"4111111111111111\"}"]`))
	f.Add([]byte(`{"k":"postgres://u:s3cretpass@db/x","t":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}`))
	f.Add([]byte(`{"\uff14111 1111 1111 1111":{"v":"4111\u00a01111\u200b1111&#49;111"},"b":"Y2FyZCA0MTExIDExMTEgMTExMSAxMTEx","h":"card%204111%201111%201111%201111"}`))
	mac, _ := NewHMAC([]byte("0123456789abcdef0123456789abcdef"))
	tok, _ := NewTokenizer(TokenizerConfig{MAC: mac, FormatPreserving: true})
	var engines []*Engine
	for _, a := range []Action{ActionMask, ActionRedact, ActionTokenize} {
		e, err := NewEngine(EngineConfig{Tokenizer: tok, Policy: Policy{Rules: []Rule{{Categories: Categories, Direction: "both", Action: a}}}})
		if err != nil {
			f.Fatal(err)
		}
		engines = append(engines, e)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		for _, e := range engines {
			out, v, err := e.Apply(Response, doc)
			if err != nil {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON:\nin:  %s\nout: %s", doc, out)
			}
			if v.Decision == Allow && !bytes.Equal(out, doc) {
				t.Fatal("allowed document was changed")
			}
		}
	})
}
