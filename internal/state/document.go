package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Document is the wire form of one object, as in YAML files and API bodies.
type Document struct {
	APIVersion string          `json:"apiVersion"`
	Kind       Kind            `json:"kind"`
	Metadata   Meta            `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

// FieldError locates one problem inside a document.
type FieldError struct {
	File  string // as given to ParseDocuments; may be empty
	Doc   int    // 1-based index of the document in the file
	Line  int    // 1-based line of the offending field, 0 if unknown
	Kind  Kind
	Name  string
	Field string // path such as spec.tools[1].args.project.in
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	what := strings.TrimSpace(string(e.Kind) + " " + e.Name)
	if e.Doc > 0 {
		fmt.Fprintf(&b, "document %d", e.Doc)
		if what != "" {
			fmt.Fprintf(&b, " (%s)", what)
		}
		b.WriteString(": ")
	} else if what != "" {
		b.WriteString(what + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError carries every problem found in a set of documents or a
// command. Nothing is applied when it is returned.
type ValidationError struct {
	Errors []*FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// limits on what a document may contain, so hostile input cannot exhaust memory.
const (
	maxDocumentBytes = 8 << 20
	maxYAMLNodes     = 200_000
	maxYAMLDepth     = 64
)

// ParseDocuments reads a stream of YAML (or JSON) documents and returns the
// validated objects in file order. A document of the form {items: [...]}
// (what `portcullis get KIND -o json` and GET /v1/{kind} print), or a bare
// list, stands for its items, each counted as a document of its own. On any problem it
// returns a *ValidationError listing every problem found, and no objects.
func ParseDocuments(file string, data []byte) ([]Object, error) {
	parsed, err := ParseFile(file, data)
	if err != nil {
		return nil, err
	}
	objs := make([]Object, len(parsed))
	for i, p := range parsed {
		objs[i] = p.Object
	}
	return objs, nil
}

// Parsed is one object read by ParseFile, with where it was declared.
type Parsed struct {
	Object Object
	Doc    int // 1-based document number within the file
	// Lines maps field paths ("spec.skills[0]") to their 1-based line, so
	// that problems found later (references to other objects) can still be
	// located in the file.
	Lines map[string]int
}

// ParseFile is ParseDocuments, keeping each object's document number and
// field lines.
func ParseFile(file string, data []byte) ([]Parsed, error) {
	if len(data) > maxDocumentBytes {
		return nil, &ValidationError{Errors: []*FieldError{{File: file, Msg: fmt.Sprintf("file is %d bytes; the limit is %d", len(data), maxDocumentBytes)}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var (
		objs []Parsed
		errs []*FieldError
		seen = map[string]int{}
		doc  = 0
	)
	// one decodes a single document node; an empty one does not count.
	one := func(n *yaml.Node) {
		conv := converter{lines: map[string]int{}}
		root, cerr := conv.value(n, "", 0)
		if cerr == nil && root == nil {
			return // empty document (e.g. a trailing "---")
		}
		doc++
		if cerr != nil {
			errs = append(errs, &FieldError{File: file, Doc: doc, Line: n.Line, Msg: cerr.Error()})
			return
		}
		obj, ferrs := decodeDocument(root, conv.lines)
		for _, fe := range ferrs {
			fe.File, fe.Doc = file, doc
		}
		errs = append(errs, ferrs...)
		if obj == nil {
			return
		}
		key := string(obj.Kind()) + "/" + obj.Metadata().Name
		if prev, dup := seen[key]; dup {
			errs = append(errs, &FieldError{File: file, Doc: doc, Kind: obj.Kind(), Name: obj.Metadata().Name, Field: "metadata.name", Line: conv.lines["metadata.name"],
				Msg: fmt.Sprintf("duplicate: document %d declares the same %s", prev, obj.Kind())})
			return
		}
		seen[key] = doc
		objs = append(objs, Parsed{Object: obj, Doc: doc, Lines: conv.lines})
	}
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &FieldError{File: file, Doc: doc + 1, Line: yamlErrLine(err), Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
			break // the decoder cannot resynchronise after a syntax error
		}
		if items, ok := listItems(&n); ok {
			for _, it := range items {
				one(it)
			}
			continue
		}
		one(&n)
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	if len(objs) == 0 {
		return nil, &ValidationError{Errors: []*FieldError{{File: file, Msg: "no documents found"}}}
	}
	return objs, nil
}

// listItems returns the elements of a document that is exactly
// {items: [...]} (a list of documents as the API and `get -o json` print
// it) or a bare list of documents ([{...}, {...}] in JSON).
func listItems(n *yaml.Node) ([]*yaml.Node, bool) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.SequenceNode {
		return n.Content, true
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 || n.Content[0].Value != "items" || n.Content[0].Kind != yaml.ScalarNode || n.Content[1].Kind != yaml.SequenceNode {
		return nil, false
	}
	return n.Content[1].Content, true
}

// DecodeDocument validates one document given as JSON (the API's form).
func DecodeDocument(b []byte) (Object, error) {
	var root any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&root); err != nil {
		return nil, &ValidationError{Errors: []*FieldError{{Msg: "invalid JSON: " + err.Error()}}}
	}
	obj, errs := decodeDocument(normalizeNumbers(root), nil)
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return obj, nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil {
			return badNumber{string(x), "is out of range (a number must lie within ±1.8e308)"}
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}

func yamlErrLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	// yaml.v3 syntax errors read "yaml: line N: ...".
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		j := i + 5
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if n, err := strconv.Atoi(s[j:k]); err == nil {
			return n
		}
	}
	return 0
}

// converter turns a YAML node tree into plain Go values (map[string]any,
// []any, string, int64, float64, bool, nil) and remembers each path's line.
type converter struct {
	lines map[string]int
	nodes int
}

func (c *converter) value(n *yaml.Node, path string, depth int) (any, error) {
	c.nodes++
	if c.nodes > maxYAMLNodes {
		return nil, fmt.Errorf("document has more than %d nodes", maxYAMLNodes)
	}
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d levels", orRoot(path), maxYAMLDepth)
	}
	if path != "" {
		if _, ok := c.lines[path]; !ok {
			c.lines[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], path, depth+1)
	case yaml.AliasNode:
		return c.value(n.Alias, path, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!merge" && k.Tag != "!!int" && k.Tag != "!!bool") {
				return nil, fmt.Errorf("line %d: %s: keys must be strings", k.Line, orRoot(path))
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: %s: YAML merge keys (<<) are not supported", k.Line, orRoot(path))
			}
			sub := joinPath(path, k.Value)
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: %s: duplicate key", k.Line, sub)
			}
			v, err := c.value(n.Content[i+1], sub, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
			c.lines[sub] = k.Line
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, err := c.value(e, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", n.Line, orRoot(path), err)
		}
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) {
				return badNumber{n.Value, "is not a number (NaN); give a finite number"}, nil
			}
			if math.IsInf(x, 0) {
				return badNumber{n.Value, "is infinite; give a finite number"}, nil
			}
		case string:
			// A plain scalar such as 1e400 looks like a number but does not
			// fit one; yaml reads it as a string, which would be reported as
			// "got a string".
			if n.Style == 0 && n.Tag == "!!str" {
				if _, err := strconv.ParseFloat(x, 64); errors.Is(err, strconv.ErrRange) {
					return badNumber{n.Value, "is out of range (a number must lie within ±1.8e308)"}, nil
				}
			}
		case int:
			return int64(x), nil
		case uint64:
			if x > 1<<63-1 {
				return float64(x), nil
			}
			return int64(x), nil
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: %s: unsupported YAML node", n.Line, orRoot(path))
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "document"
	}
	return path
}

// decodeDocument checks the envelope and the spec of one document.
func decodeDocument(root any, lines map[string]int) (Object, []*FieldError) {
	line := func(p string) int { return lines[p] }
	top, ok := root.(map[string]any)
	if !ok {
		return nil, []*FieldError{{Msg: fmt.Sprintf("a document must be a mapping with apiVersion, kind, metadata and spec; got %s", typeName(root))}}
	}
	var errs []*FieldError
	add := func(field, msg string) { errs = append(errs, &FieldError{Field: field, Line: line(field), Msg: msg}) }
	for k := range top {
		switch k {
		case "apiVersion", "kind", "metadata", "spec":
		default:
			add(k, "unknown field (a document has apiVersion, kind, metadata and spec)")
		}
	}
	av, _ := top["apiVersion"].(string)
	switch {
	case top["apiVersion"] == nil:
		add("apiVersion", "required (want "+APIVersion+")")
	case av != APIVersion:
		add("apiVersion", fmt.Sprintf("unsupported %q (want %s)", fmt.Sprint(top["apiVersion"]), APIVersion))
	}
	ks, _ := top["kind"].(string)
	var kind Kind
	if top["kind"] == nil {
		add("kind", "required (one of Upstream, Skill, Persona, Agent, NetworkPolicy)")
	} else if k := Kind(ks); newObject(k) == nil {
		add("kind", fmt.Sprintf("unknown kind %q (want one of Upstream, Skill, Persona, Agent, NetworkPolicy)", fmt.Sprint(top["kind"])))
	} else {
		kind = k
	}
	var meta Meta
	if md, ok := top["metadata"].(map[string]any); !ok {
		add("metadata", "required: a mapping with at least name")
	} else {
		for k := range md {
			switch k {
			case "name", "labels":
			case "created", "updated", "revision":
				// Set by the appliance; ignored so that `get -o yaml` output applies again.
			default:
				add("metadata."+k, "unknown field (metadata has name and labels)")
			}
		}
		name, _ := md["name"].(string)
		if md["name"] == nil {
			add("metadata.name", "required")
		} else if err := ValidateName(name); err != nil {
			add("metadata.name", err.Error())
		}
		meta.Name = name
		if lb, ok := md["labels"]; ok {
			lm, ok := lb.(map[string]any)
			if !ok {
				add("metadata.labels", "must be a mapping of strings")
			} else {
				meta.Labels = map[string]string{}
				for k, v := range lm {
					s, ok := v.(string)
					if !ok {
						add("metadata.labels."+k, "must be a string")
					}
					meta.Labels[k] = s
				}
			}
		}
	}
	for _, e := range errs {
		e.Kind, e.Name = kind, meta.Name
	}
	if kind == "" {
		return nil, errs
	}
	obj := newObject(kind)
	spec, ok := top["spec"].(map[string]any)
	if !ok {
		errs = append(errs, &FieldError{Kind: kind, Name: meta.Name, Field: "spec", Line: line("spec"), Msg: "required: a mapping"})
		return nil, errs
	}
	var serrs []*FieldError
	checkShape("spec", spec, reflect.TypeOf(obj).Elem(), func(p, msg string) {
		serrs = append(serrs, &FieldError{Kind: kind, Name: meta.Name, Field: p, Line: line(p), Msg: msg})
	})
	errs = append(errs, serrs...)
	if len(serrs) == 0 {
		raw, _ := json.Marshal(spec)
		if err := json.Unmarshal(raw, obj); err != nil {
			errs = append(errs, &FieldError{Kind: kind, Name: meta.Name, Field: "spec", Line: line("spec"), Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	*obj.Metadata() = meta
	for _, fe := range validateObject(obj) {
		fe.Kind, fe.Name, fe.Line = kind, meta.Name, line(fe.Field)
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return obj, nil
}

var jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// badNumber stands for a number no float64 holds (NaN, ±Inf, 1e400), so
// that checkShape can say exactly what is wrong with it.
type badNumber struct{ text, problem string }

func (b badNumber) String() string { return b.text }

// checkShape walks a decoded value against the Go type it will decode into
// and reports unknown fields and type mismatches by path.
func checkShape(path string, v any, t reflect.Type, report func(path, msg string)) {
	if v == nil {
		return // absent or null: zero value; semantic validation decides
	}
	if b, ok := v.(badNumber); ok {
		report(path, b.text+" "+b.problem)
		return
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		raw, _ := json.Marshal(v)
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			report(path, err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkShape(path, v, t.Elem(), report)
	case reflect.Interface:
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			report(path, "must be a mapping, got "+typeName(v))
			return
		}
		fields := jsonFields(t)
		for k, fv := range m {
			ft, ok := fields[k]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", k)
				for name := range fields {
					if strings.EqualFold(name, k) {
						msg += fmt.Sprintf(" (did you mean %q?)", name)
					}
				}
				report(joinPath(path, k), msg)
				continue
			}
			checkShape(joinPath(path, k), fv, ft, report)
		}
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			report(path, "must be a list, got "+typeName(v))
			return
		}
		for i, e := range s {
			checkShape(fmt.Sprintf("%s[%d]", path, i), e, t.Elem(), report)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			report(path, "must be a mapping, got "+typeName(v))
			return
		}
		for k, e := range m {
			checkShape(joinPath(path, k), e, t.Elem(), report)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			report(path, "must be a string, got "+typeName(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			report(path, "must be true or false, got "+typeName(v))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32:
		switch x := v.(type) {
		case int64:
		case float64:
			if x != float64(int64(x)) {
				report(path, "must be a whole number")
			}
		default:
			report(path, "must be a number, got "+typeName(v))
		}
	case reflect.Float64, reflect.Float32:
		switch v.(type) {
		case int64, float64:
		default:
			report(path, "must be a number, got "+typeName(v))
		}
	}
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// EncodeDocument renders an object in its wire form.
func EncodeDocument(o Object) Document {
	spec, _ := json.Marshal(o)
	return Document{APIVersion: APIVersion, Kind: o.Kind(), Metadata: *o.Metadata(), Spec: spec}
}
