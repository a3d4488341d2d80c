package hsm

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseSealed(f *testing.F) {
	good, _ := Sealed{KeyVersion: 1, Nonce: make([]byte, 12), Ciphertext: make([]byte, 20)}.MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 1, 12})
	f.Add([]byte{2, 0, 0, 0, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(append([]byte{1, 0, 0, 0, 0, 12}, make([]byte, 28)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSealed(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		out, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed value does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the bytes")
		}
		if len(b) > 0 {
			b[len(b)-1] ^= 0xff // the parse result must not alias the input
			if bytes.Equal(s.Ciphertext, b[len(b)-len(s.Ciphertext):]) {
				t.Fatal("Sealed aliases its input")
			}
		}
	})
}

func TestAADSeparatesFields(t *testing.T) {
	// Distinct (name, version) pairs must never share associated data.
	seen := map[string]string{}
	for _, tc := range []struct {
		name string
		v    uint64
	}{{"a", 1}, {"a", 2}, {"ab", 1}, {"a\x00", 1}, {"", 1}} {
		k := string(aad(tc.name, tc.v, 1))
		if prev, ok := seen[k]; ok {
			t.Fatalf("%q/%d collides with %s", tc.name, tc.v, prev)
		}
		seen[k] = tc.name
	}
	if bytes.Equal(aad("a", 1, 1), aad("a", 1, 2)) {
		t.Fatal("key version not bound")
	}
}
