package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Head is the part of a request's params the gateway routes and decides on.
// Everything else stays raw.
type Head struct {
	Name      string          // params.name (tools/call, prompts/get)
	HasName   bool            //
	URI       string          // params.uri (resources/*)
	HasURI    bool            //
	Meta      json.RawMessage // params._meta, raw
	Arguments json.RawMessage // params.arguments, raw
	Cursor    string          // params.cursor
}

type wireHead struct {
	Name      *string         `json:"name"`
	URI       *string         `json:"uri"`
	Meta      json.RawMessage `json:"_meta"`
	Arguments json.RawMessage `json:"arguments"`
	Cursor    *string         `json:"cursor"`
}

// PeekParams extracts the routing fields of params. Missing params yield a
// zero Head. A field of the wrong type is an InvalidParams error.
func PeekParams(params json.RawMessage) (Head, *Error) {
	var h Head
	if len(params) == 0 {
		return h, nil
	}
	var w wireHead
	if err := json.Unmarshal(params, &w); err != nil {
		return h, Errorf(CodeInvalidParams, "invalid params: %s", typeErrorText(err))
	}
	if w.Name != nil {
		h.Name, h.HasName = *w.Name, true
	}
	if w.URI != nil {
		h.URI, h.HasURI = *w.URI, true
	}
	if w.Cursor != nil {
		h.Cursor = *w.Cursor
	}
	if w.Meta != nil && !isNull(w.Meta) {
		if w.Meta[0] != '{' {
			return h, Errorf(CodeInvalidParams, "invalid params: _meta must be an object")
		}
		h.Meta = w.Meta
	}
	if w.Arguments != nil && !isNull(w.Arguments) {
		if w.Arguments[0] != '{' {
			return h, Errorf(CodeInvalidParams, "invalid params: arguments must be an object")
		}
		h.Arguments = w.Arguments
	}
	return h, nil
}

// RequestMeta is the per-request protocol metadata of 2026-07-28.
type RequestMeta struct {
	ProtocolVersion    string          `json:"io.modelcontextprotocol/protocolVersion"`
	ClientInfo         json.RawMessage `json:"io.modelcontextprotocol/clientInfo,omitempty"`
	ClientCapabilities json.RawMessage `json:"io.modelcontextprotocol/clientCapabilities,omitempty"`
	LogLevel           string          `json:"io.modelcontextprotocol/logLevel,omitempty"`
	ProgressToken      json.RawMessage `json:"progressToken,omitempty"`
}

// ParseMeta decodes the reserved keys of a _meta object.
func ParseMeta(meta json.RawMessage) (RequestMeta, *Error) {
	var m RequestMeta
	if len(meta) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		return m, Errorf(CodeInvalidParams, "invalid params: _meta: %s", typeErrorText(err))
	}
	return m, nil
}

// SetFields returns a copy of the JSON object obj with the given keys set
// (a nil value deletes the key). obj may be empty (treated as {}).
func SetFields(obj json.RawMessage, fields map[string]json.RawMessage) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(obj) > 0 && !isNull(obj) {
		if err := json.Unmarshal(obj, &m); err != nil {
			return nil, fmt.Errorf("set fields: %w", err)
		}
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return json.Marshal(m)
}

// SetField is SetFields for one key.
func SetField(obj json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	return SetFields(obj, map[string]json.RawMessage{key: value})
}

// GetField returns the raw value of key in the JSON object obj (nil when
// absent).
func GetField(obj json.RawMessage, key string) json.RawMessage {
	if len(obj) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return nil
	}
	return m[key]
}

// Quote returns the JSON encoding of s.
func Quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// Compact returns b without insignificant whitespace (b itself when it fails).
func Compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}
