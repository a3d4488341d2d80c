package cli

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

func TestJSONToYAMLKeepsOrderAndTypes(t *testing.T) {
	in := `{"kind":"Persona","metadata":{"name":"triage"},"spec":{"skills":["tickets-read","b"],"note":"true","id":"0123","n":3,"empty":{}}}`
	got, err := jsonToYAML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `kind: Persona
metadata:
  name: triage
spec:
  skills:
    - tickets-read
    - b
  note: "true"
  id: "0123"
  n: 3
  empty: {}
`
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestJSONToYAMLRefusesBadJSON(t *testing.T) {
	if _, err := jsonToYAML([]byte(`{"a":`)); err == nil {
		t.Fatal("truncated JSON rendered without error")
	}
}

// FuzzJSONToYAML: any JSON document renders to YAML that reads back as
// the same value.
func FuzzJSONToYAML(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `["x","true","null","1e3"," lead"]`, `{"k":{"n":[1,2,{"z":"#c"}]}}`, `"multi\nline"`, `{"":"","-":"- x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want any
		if !utf8.Valid(b) || json.Unmarshal(b, &want) != nil {
			return
		}
		y, err := jsonToYAML(b)
		if err != nil {
			t.Fatalf("valid JSON %q: %v", b, err)
		}
		var got any
		if err := yaml.Unmarshal(y, &got); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, y)
		}
		if !reflect.DeepEqual(normal(want), normal(got)) {
			t.Fatalf("round trip of %q:\n%s\ngot %#v want %#v", b, y, got, want)
		}
	})
}

// normal maps YAML's decoded numbers onto JSON's float64.
func normal(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normal(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normal(e)
		}
	case int:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}
