package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ParamHeader is one tool parameter mirrored into an HTTP header
// ("Mcp-Param-{Name}") by the x-mcp-header schema extension of 2026-07-28.
type ParamHeader struct {
	Name string   // the x-mcp-header value
	Path []string // chain of "properties" keys from the schema root
	Type string   // "string", "integer" or "boolean"
}

// HeaderParamPrefix starts the header names of mirrored parameters.
const HeaderParamPrefix = "Mcp-Param-"

const maxSchemaDepth = 32

// ParamHeaders finds the x-mcp-header annotations of a tool's inputSchema.
// An annotation that breaks the rules (empty or non-token name, duplicate
// name, non-primitive or number type, not reachable through "properties"
// alone) makes the whole tool invalid: the error says why.
func ParamHeaders(inputSchema json.RawMessage) ([]ParamHeader, error) {
	if len(inputSchema) == 0 || !strings.Contains(string(inputSchema), "x-mcp-header") {
		return nil, nil
	}
	var root any
	if err := json.Unmarshal(inputSchema, &root); err != nil {
		return nil, fmt.Errorf("inputSchema: %w", err)
	}
	var out []ParamHeader
	seen := map[string]bool{}
	var walk func(node any, path []string, reachable bool, depth int) error
	walk = func(node any, path []string, reachable bool, depth int) error {
		if depth > maxSchemaDepth {
			return errors.New("inputSchema nests too deeply")
		}
		switch n := node.(type) {
		case map[string]any:
			if v, ok := n["x-mcp-header"]; ok {
				name, isStr := v.(string)
				switch {
				case !reachable || len(path) == 0:
					return errors.New("x-mcp-header is only allowed on properties reachable through \"properties\"")
				case !isStr || name == "" || !isToken(name):
					return fmt.Errorf("x-mcp-header %v is not a valid header name token", v)
				case seen[strings.ToLower(name)]:
					return fmt.Errorf("x-mcp-header %q is used twice", name)
				}
				typ, _ := n["type"].(string)
				if typ != "string" && typ != "integer" && typ != "boolean" {
					return fmt.Errorf("x-mcp-header %q is on a parameter of type %q (want string, integer or boolean)", name, typ)
				}
				seen[strings.ToLower(name)] = true
				out = append(out, ParamHeader{Name: name, Path: append([]string(nil), path...), Type: typ})
			}
			keys := make([]string, 0, len(n))
			for k := range n {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := n[k]
				if k == "properties" {
					if props, ok := v.(map[string]any); ok {
						names := make([]string, 0, len(props))
						for p := range props {
							names = append(names, p)
						}
						sort.Strings(names)
						for _, p := range names {
							if err := walk(props[p], append(path, p), reachable, depth+1); err != nil {
								return err
							}
						}
						continue
					}
				}
				if err := walk(v, path, false, depth+1); err != nil {
					return err
				}
			}
		case []any:
			for _, v := range n {
				if err := walk(v, path, false, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, nil, true, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return s != ""
}

// paramValue returns the header form of the argument at ph.Path; ok is
// false when the value is absent or null.
func paramValue(ph ParamHeader, args map[string]any) (string, bool, error) {
	var cur any = args
	for _, p := range ph.Path {
		m, isMap := cur.(map[string]any)
		if !isMap {
			return "", false, nil
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	case bool:
		return strconv.FormatBool(v), true, nil
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53-1 {
			return "", false, fmt.Errorf("parameter %q must be an integer within ±(2^53-1)", strings.Join(ph.Path, "."))
		}
		return strconv.FormatInt(int64(v), 10), true, nil
	case json.Number:
		return v.String(), true, nil
	}
	return "", false, fmt.Errorf("parameter %q is not a primitive value", strings.Join(ph.Path, "."))
}

// ParamHeaderValues returns the Mcp-Param-* headers a client must send for
// a tools/call with these arguments.
func ParamHeaderValues(specs []ParamHeader, args map[string]any) (http.Header, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	h := http.Header{}
	for _, ph := range specs {
		v, ok, err := paramValue(ph, args)
		if err != nil {
			return nil, err
		}
		if ok {
			h.Set(HeaderParamPrefix+ph.Name, EncodeHeaderValue(v))
		}
	}
	return h, nil
}

// CheckParamHeaders validates the Mcp-Param-* headers of a request against
// the arguments: every present value needs its header, with the same value
// after decoding (integers compared numerically). It returns a
// CodeHeaderMismatch error naming the first problem.
func CheckParamHeaders(h http.Header, specs []ParamHeader, args map[string]any) *Error {
	for _, ph := range specs {
		name := HeaderParamPrefix + ph.Name
		want, present, err := paramValue(ph, args)
		if err != nil {
			return Errorf(CodeHeaderMismatch, "Header mismatch: %v", err)
		}
		vals := h.Values(name)
		if !present {
			continue
		}
		if len(vals) != 1 {
			return Errorf(CodeHeaderMismatch, "Header mismatch: exactly one %s header is required", name)
		}
		got, derr := DecodeHeaderValue(vals[0])
		if derr != nil {
			return Errorf(CodeHeaderMismatch, "Header mismatch: %s: %v", name, derr)
		}
		if got == want {
			continue
		}
		if ph.Type == "integer" {
			a, e1 := strconv.ParseFloat(got, 64)
			b, e2 := strconv.ParseFloat(want, 64)
			if e1 == nil && e2 == nil && a == b {
				continue
			}
		}
		return Errorf(CodeHeaderMismatch, "Header mismatch: %s header value %q does not match the body value %q", name, got, want)
	}
	return nil
}

type extraHeadersKey struct{}

// WithHeaders returns a context whose Conn.Call adds h to the HTTP request
// (Streamable HTTP only), e.g. the Mcp-Param-* headers of a tools/call.
func WithHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return context.WithValue(ctx, extraHeadersKey{}, h)
}

func headersFrom(ctx context.Context) http.Header {
	h, _ := ctx.Value(extraHeadersKey{}).(http.Header)
	return h
}

type logLevelKey struct{}

// WithLogLevel returns a context whose Conn.Call asks a 2026-07-28 server
// for log messages at level (the io.modelcontextprotocol/logLevel _meta)
// when the request does not name a level itself. A legacy server keeps the
// level of its session (logging/setLevel) and gets nothing extra.
func WithLogLevel(ctx context.Context, level string) context.Context {
	if level == "" {
		return ctx
	}
	return context.WithValue(ctx, logLevelKey{}, level)
}

func logLevelFrom(ctx context.Context) string {
	l, _ := ctx.Value(logLevelKey{}).(string)
	return l
}

type clientCapsKey struct{}

// WithClientCapabilities returns a context whose Conn.Call declares caps as
// the client capabilities of a 2026-07-28 request instead of the client's
// own: a gateway speaks for the agent whose call it forwards, and a server
// must not ask that agent for what it cannot do. A legacy server keeps the
// capabilities of its session's initialize.
func WithClientCapabilities(ctx context.Context, caps json.RawMessage) context.Context {
	if caps == nil {
		return ctx
	}
	return context.WithValue(ctx, clientCapsKey{}, caps)
}

func capsFrom(ctx context.Context) json.RawMessage {
	c, _ := ctx.Value(clientCapsKey{}).(json.RawMessage)
	return c
}
