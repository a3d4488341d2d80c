package mcp

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestParamHeaders(t *testing.T) {
	schema := json.RawMessage(`{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"query":{"type":"string"},
		"limit":{"type":"integer","x-mcp-header":"Limit"},
		"opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry-Run"}}}}}`)
	specs, err := ParamHeaders(schema)
	if err != nil || len(specs) != 3 {
		t.Fatalf("ParamHeaders = %+v, %v", specs, err)
	}
	args := map[string]any{"region": "eü-west", "limit": float64(42), "opts": map[string]any{"dry": true}, "query": "x"}
	h, err := ParamHeaderValues(specs, args)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("Mcp-Param-Region") != EncodeHeaderValue("eü-west") || h.Get("Mcp-Param-Limit") != "42" || h.Get("Mcp-Param-Dry-Run") != "true" {
		t.Fatalf("headers %v", h)
	}
	if err := CheckParamHeaders(h, specs, args); err != nil {
		t.Fatalf("own headers rejected: %v", err)
	}
	h2 := h.Clone()
	h2.Set("Mcp-Param-Limit", "42.0")
	if err := CheckParamHeaders(h2, specs, args); err != nil {
		t.Fatalf("numeric comparison: %v", err)
	}
	for name, mut := range map[string]func(http.Header){
		"missing": func(h http.Header) { h.Del("Mcp-Param-Region") },
		"wrong":   func(h http.Header) { h.Set("Mcp-Param-Dry-Run", "false") },
		"bad b64": func(h http.Header) { h.Set("Mcp-Param-Region", "=?base64?%%?=") },
	} {
		h3 := h.Clone()
		mut(h3)
		if err := CheckParamHeaders(h3, specs, args); err == nil || err.Code != CodeHeaderMismatch {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An absent value needs no header.
	if err := CheckParamHeaders(http.Header{}, specs, map[string]any{}); err != nil {
		t.Fatalf("absent values: %v", err)
	}
	for _, bad := range []string{
		`{"properties":{"a":{"type":"number","x-mcp-header":"A"}}}`,
		`{"properties":{"a":{"type":"string","x-mcp-header":""}}}`,
		`{"properties":{"a":{"type":"string","x-mcp-header":"A B"}}}`,
		`{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}`,
		`{"properties":{"a":{"type":"array","items":{"type":"string","x-mcp-header":"A"}}}}`,
		`{"anyOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}`,
	} {
		if _, err := ParamHeaders(json.RawMessage(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzParamHeaders(f *testing.F) {
	f.Add([]byte(`{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}`), []byte(`{"a":"v"}`))
	f.Add([]byte(`{"properties":{"a":{"type":"integer","x-mcp-header":"N"}}}`), []byte(`{"a":1e300}`))
	f.Fuzz(func(t *testing.T, schema, args []byte) {
		specs, err := ParamHeaders(schema)
		if err != nil {
			return
		}
		var a map[string]any
		if json.Unmarshal(args, &a) != nil {
			return
		}
		h, err := ParamHeaderValues(specs, a)
		if err != nil {
			return
		}
		if e := CheckParamHeaders(h, specs, a); e != nil {
			t.Fatalf("headers built from the arguments rejected: %v", e)
		}
	})
}
