package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"testing"
)

// oldDuplicateKey is the json.Decoder.Token implementation DuplicateKey
// replaced (kept as the oracle of FuzzDuplicateKeyMatchesDecoder).
func oldDuplicateKey(doc []byte) (path string, ok bool) {
	if bytes.IndexByte(doc, '{') < 0 || !json.Valid(doc) {
		return "", false
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	p, found, err := oldDupValue(d, "", 0)
	if err != nil || !found {
		return "", false
	}
	return p, true
}

const oldMaxDupDepth = 256

var oldErrTooDeep = errors.New("nested too deep")

func oldDupValue(d *json.Decoder, path string, depth int) (string, bool, error) {
	if depth > oldMaxDupDepth {
		return "", false, oldErrTooDeep
	}
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", false, err
	}
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		return "", false, nil
	}
	switch delim {
	case '{':
		seen := map[string]struct{}{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return "", false, err
			}
			k, _ := kt.(string)
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			if _, dup := seen[k]; dup {
				return sub, true, nil
			}
			seen[k] = struct{}{}
			if p, found, err := oldDupValue(d, sub, depth+1); err != nil || found {
				return p, found, err
			}
		}
	case '[':
		for i := 0; d.More(); i++ {
			if p, found, err := oldDupValue(d, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil || found {
				return p, found, err
			}
		}
	}
	_, err = d.Token() // the closing delimiter
	return "", false, err
}

// The byte scanner answers exactly as the decoder-based walk did.
func FuzzDuplicateKeyMatchesDecoder(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"\u0063":2}]}}`, `[{"x":1},{"x":1,"y":{"":1,"":2}}]`, "{\"\xff\":1,\"\xfe\":2}", `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p1, ok1 := DuplicateKey(doc)
		p2, ok2 := oldDuplicateKey(doc)
		if p1 != p2 || ok1 != ok2 {
			t.Fatalf("%q: scanner %q %v, decoder %q %v", doc, p1, ok1, p2, ok2)
		}
	})
}

func BenchmarkDuplicateKey(b *testing.B) {
	doc := []byte(`{"project":"SUPPORT","id":42,"filter":{"owner":"me","tags":["a","b"],"since":"2026-01-01"},"limit":50}`)
	b.ReportAllocs()
	for range b.N {
		if _, dup := DuplicateKey(doc); dup {
			b.Fatal("dup")
		}
	}
}

func BenchmarkDuplicateKeyDecoder(b *testing.B) {
	doc := []byte(`{"project":"SUPPORT","id":42,"filter":{"owner":"me","tags":["a","b"],"since":"2026-01-01"},"limit":50}`)
	b.ReportAllocs()
	for range b.N {
		if _, dup := oldDuplicateKey(doc); dup {
			b.Fatal("dup")
		}
	}
}
