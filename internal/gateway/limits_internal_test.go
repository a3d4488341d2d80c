package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// jsonShape is the reference for checkJSON: the nesting depth of valid
// JSON and whether it holds a number beyond float64, by encoding/json.
func jsonShape(b []byte) (depth int, outOfRange bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	cur := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err != io.EOF {
				panic(err) // only called on valid JSON
			}
			return depth, outOfRange
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '[' || v == '{' {
				cur++
				depth = max(depth, cur)
			} else {
				cur--
			}
		case json.Number:
			if _, err := strconv.ParseFloat(string(v), 64); errors.Is(err, strconv.ErrRange) {
				outOfRange = true
			}
		}
	}
}

// FuzzCheckJSON: on valid JSON, checkJSON refuses exactly the documents
// nested deeper than the bound or holding a number beyond float64, and says
// which; on anything else it never panics.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":[1,2,{"b":null}]}}}`,
		`[[[[[[[[]]]]]]]]`, `{"a":{"b":{"c":{}}}}`, `[1e999999]`, `{"a":-1E+400}`, `[1e-999999]`, `[1e308, 2e308]`,
		`"1e999999"`, `{"a":"[[[[\"{{{{"}`, `["\\", "[", "]]]"]`, `[` + "1" + strings.Repeat("0", 400) + `]`,
		`[123456789012345]`, `[1234567890123456789]`, `{"k\"[":[[0.5e10]]}`, `]]]][[`, `{"a":1e999999`,
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, limit uint8) {
		maxDepth := int(limit%80) + 1
		err := checkJSON(b, maxDepth)
		if !json.Valid(b) {
			return
		}
		depth, huge := jsonShape(b)
		switch {
		case err == nil:
			if depth > maxDepth || huge {
				t.Fatalf("%q (depth %d, out of range %v) passed a bound of %d", b, depth, huge, maxDepth)
			}
		case strings.Contains(err.Message, "deeper than"):
			if depth <= maxDepth {
				t.Fatalf("%q of depth %d refused at %d: %s", b, depth, maxDepth, err.Message)
			}
		case strings.Contains(err.Message, "out of range"):
			if !huge {
				t.Fatalf("%q refused: %s", b, err.Message)
			}
		default:
			t.Fatalf("%q: unexpected refusal %s", b, err.Message)
		}
	})
}

// BenchmarkCheckJSON: the pass every request body takes before parsing.
func BenchmarkCheckJSON(b *testing.B) {
	small := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-1","limit":25,"filters":{"status":["open","pending"],"since":1733300000.5}}}}`)
	var big bytes.Buffer
	big.WriteString(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"store","arguments":{"rows":[`)
	for i := 0; big.Len() < 64<<10; i++ {
		if i > 0 {
			big.WriteByte(',')
		}
		big.WriteString(`{"n":` + strconv.Itoa(i*7919) + `,"v":1.25e3,"note":"a \"quoted\" note with [brackets] and {braces}"}`)
	}
	big.WriteString(`]}}}`)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"call", small}, {"64KiB", big.Bytes()}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := checkJSON(bc.body, defaultMaxJSONDepth); err != nil {
					b.Fatal(err.Message)
				}
			}
		})
	}
}
