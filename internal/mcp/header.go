package mcp

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"
)

const (
	sentinelPrefix = "=?base64?"
	sentinelSuffix = "?="
)

// EncodeHeaderValue returns v as an HTTP header value: as is when it is
// plain visible ASCII without leading or trailing whitespace, otherwise in the
// Base64 sentinel form "=?base64?...?=" of 2026-07-28.
func EncodeHeaderValue(v string) string {
	if headerSafe(v) && !isSentinel(v) {
		return v
	}
	return sentinelPrefix + base64.StdEncoding.EncodeToString([]byte(v)) + sentinelSuffix
}

func isSentinel(v string) bool {
	return len(v) >= len(sentinelPrefix)+len(sentinelSuffix) &&
		strings.HasPrefix(v, sentinelPrefix) && strings.HasSuffix(v, sentinelSuffix)
}

func headerSafe(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Header value errors.
var (
	ErrHeaderChars  = errors.New("header value contains invalid characters")
	ErrHeaderBase64 = errors.New("header value has a malformed base64 sentinel")
)

// DecodeHeaderValue reverses EncodeHeaderValue. A plain value must consist of
// visible ASCII, space and tab; a sentinel value must hold valid Base64 of
// valid UTF-8.
func DecodeHeaderValue(v string) (string, error) {
	if isSentinel(v) {
		enc := v[len(sentinelPrefix) : len(v)-len(sentinelSuffix)]
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return "", ErrHeaderBase64
		}
		if !utf8.Valid(b) {
			return "", ErrHeaderBase64
		}
		return string(b), nil
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return "", ErrHeaderChars
		}
	}
	return v, nil
}

// CheckRequestHeaders validates the request metadata headers of 2026-07-28
// against the parsed body: MCP-Protocol-Version against
// _meta.protocolVersion, Mcp-Method against method, Mcp-Name against
// params.name or params.uri. It returns a CodeHeaderMismatch error naming
// the first problem.
func CheckRequestHeaders(h http.Header, m *Message, head Head, metaVersion string) *Error {
	pv := h.Values(HeaderProtocolVersion)
	if len(pv) != 1 {
		return Errorf(CodeHeaderMismatch, "Header mismatch: exactly one %s header is required", HeaderProtocolVersion)
	}
	if pv[0] != metaVersion {
		return Errorf(CodeHeaderMismatch, "Header mismatch: %s header value %q does not match body value %q", HeaderProtocolVersion, pv[0], metaVersion)
	}
	mv := h.Values(HeaderMethod)
	if len(mv) != 1 {
		return Errorf(CodeHeaderMismatch, "Header mismatch: exactly one %s header is required", HeaderMethod)
	}
	if mv[0] != m.Method {
		return Errorf(CodeHeaderMismatch, "Header mismatch: %s header value %q does not match body value %q", HeaderMethod, mv[0], m.Method)
	}
	if !NameHeaderMethod(m.Method) {
		return nil
	}
	want, field := head.Name, "params.name"
	if m.Method == MethodResourcesRead {
		want, field = head.URI, "params.uri"
	}
	nv := h.Values(HeaderName)
	if len(nv) != 1 {
		return Errorf(CodeHeaderMismatch, "Header mismatch: exactly one %s header is required for %s", HeaderName, m.Method)
	}
	got, err := DecodeHeaderValue(nv[0])
	if err != nil {
		return Errorf(CodeHeaderMismatch, "Header mismatch: %s: %v", HeaderName, err)
	}
	if got != want {
		return Errorf(CodeHeaderMismatch, "Header mismatch: %s header value %q does not match %s %q", HeaderName, got, field, want)
	}
	return nil
}

// SetRequestHeaders sets the 2026-07-28 request metadata headers for m on h.
func SetRequestHeaders(h http.Header, m *Message, head Head, version string) {
	h.Set(HeaderProtocolVersion, version)
	h.Set(HeaderMethod, m.Method)
	if !NameHeaderMethod(m.Method) {
		return
	}
	v := head.Name
	if m.Method == MethodResourcesRead {
		v = head.URI
	}
	h.Set(HeaderName, EncodeHeaderValue(v))
}
