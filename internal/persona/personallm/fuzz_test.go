package personallm

import (
	"math"
	"testing"
)

// FuzzParseChat: any server answer parses or fails with an error, never a
// panic, and what parses is bounded: at most maxProposed names, none empty
// or longer than maxName.
func FuzzParseChat(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"message":{"content":"{\"skills\":[{\"name\":\"crm-read\",\"reason\":\"x\"}]}"}}]}`,
		`{"choices":[{"message":{"content":"` + "```json\\n{\\\"skills\\\":[\\\"a\\\",\\\"b\\\"]}\\n```" + `"}}]}`,
		`{"choices":[{"message":{"content":"no json here"},"finish_reason":"length"}]}`,
		`{"choices":[{"message":{"content":"{\"skills\": 7}"}}]}`,
		`{"choices":[{"message":{"content":null}}]}`,
		`{"choices":[]}`, `{}`, `[]`, `null`, ``, `{"choices":[{"message":{"content":"}{"}}]}`,
		`{"choices":[{"message":{"content":"{\"skills\":[{\"name\":[1,2]},{},\"\",{\"name\":\"ok\"}]}"}}]}`,
		`{"choices":[{"message":{"content":"Sure: {\"skills\":[\"a\"]}"}}]}`,
		`{"choices":[{"message":{"content":"` + "```yaml\\nskills: [a]\\n```" + `"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := ParseChat(body)
		if err != nil {
			if out != nil {
				t.Fatal("skills returned with an error")
			}
			return
		}
		if len(out) > maxProposed {
			t.Fatalf("%d skills parsed", len(out))
		}
		for _, s := range out {
			if s.Name == "" || len(s.Name) > maxName {
				t.Fatalf("bad name %q", s.Name)
			}
		}
	})
}

// FuzzParseEmbeddings: any answer parses into exactly n finite vectors of
// one length, or fails.
func FuzzParseEmbeddings(f *testing.F) {
	for _, s := range []string{
		`{"data":[{"index":0,"embedding":[0.1,0.2]},{"index":1,"embedding":[0.3,0.4]}]}`,
		`{"data":[{"index":1,"embedding":[1]},{"index":1,"embedding":[2]}]}`,
		`{"data":[{"embedding":[1,2]},{"embedding":[1]}]}`,
		`{"data":[{"index":-1,"embedding":[1]},{"index":9,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[1e309]}]}`,
		`{"data":null}`, `{}`, ``,
	} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		out, err := ParseEmbeddings(body, n)
		if err != nil {
			return
		}
		if len(out) != n {
			t.Fatalf("%d vectors for %d inputs", len(out), n)
		}
		for _, v := range out {
			if len(v) == 0 || len(v) != len(out[0]) {
				t.Fatalf("vector lengths %d and %d", len(v), len(out[0]))
			}
			for _, x := range v {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatal("non-finite value")
				}
			}
		}
	})
}

// FuzzCosine: similarity is a finite number in [-1, 1] whatever the vectors.
func FuzzCosine(f *testing.F) {
	f.Add(1.0, 2.0, 3.0, 4.0)
	f.Add(0.0, 0.0, 1.0, 1.0)
	f.Add(1e308, 1e308, 1e308, -1e308)
	f.Fuzz(func(t *testing.T, a, b, c, d float64) {
		for _, x := range []float64{a, b, c, d} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return
			}
		}
		v := cosine([]float64{a, b}, []float64{c, d})
		if math.IsNaN(v) || v < -1.000001 || v > 1.000001 {
			t.Fatalf("cosine = %v", v)
		}
	})
}
