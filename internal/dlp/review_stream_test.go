package dlp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

// TestReviewStreamEverySplit slides values of several kinds across the
// stream's window cut, one byte at a time, with two fillers (prose with
// spaces, and a long run with no safe cut byte), and checks the stream
// reports exactly what a whole scan reports at every position.
func TestReviewStreamEverySplit(t *testing.T) {
	s := mustScanner(t, Config{})
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	key := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})))
	values := []string{
		"card 4111 1111 1111 1111 exp",
		"iban GB82 WEST 1234 5698 7654 32 ok",
		"ssn: 078-05-1120 x",
		"password = \"Tr0ub4dor&3xyz\" end",
		key,
	}
	fillers := map[string]string{
		"prose": strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit ", 2000),
		"run":   strings.Repeat("abcdefghij", 11000),
	}
	cutAt := streamWindow // where the first flush cuts (len - keep)
	// every position within 40 bytes of the cut, every 5th further out
	// (every position everywhere costs ~7 s, too much under -race)
	next := func(pos int) int {
		if d := pos - cutAt; d > -40 && d < 40 {
			return pos + 1
		}
		return pos + 5
	}
	for fname, filler := range fillers {
		for vi, v := range values {
			for pos := cutAt - len(v) - 200; pos < cutAt+200; pos = next(pos) {
				doc := []byte(filler[:pos] + " " + v + " " + filler[:40000])
				want := s.Scan(doc)
				for _, chunk := range []int{len(doc), 1000} {
					var got []Finding
					st := s.NewStream(func(f Finding) { got = append(got, f) })
					for p := 0; p < len(doc); p += chunk {
						st.Write(doc[p:min(len(doc), p+chunk)])
					}
					st.Close()
					if fmt.Sprint(spans(got)) != fmt.Sprint(spans(want)) {
						t.Fatalf("%s filler, value %d at %d, chunks %d:\n got %v\nwant %v", fname, vi, pos, chunk, spans(got), spans(want))
					}
				}
			}
		}
	}
}

func spans(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s[%d,%d)", f.Detector, f.Start, f.End))
	}
	return out
}
