package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// digestArgs is the keyed digest of a tools/call's arguments: HMAC-SHA256
// under key of their canonical JSON (encoding/json sorts map keys, so equal
// arguments give equal bytes whatever order the agent sent them in). "" when
// there is no key.
func digestArgs(key []byte, args map[string]any) string {
	if len(key) == 0 || args == nil {
		return ""
	}
	b, err := json.Marshal(args)
	if err != nil {
		return ""
	}
	return digest(key, b)
}

// digest is hex HMAC-SHA256(key, b), "" without a key or bytes.
func digest(key, b []byte) string {
	if len(key) == 0 || len(b) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

// traceID is the W3C trace id of r's traceparent header
// ("00-<32 hex>-<16 hex>-<2 hex>") when it carries a valid one, else a new
// random one.
func traceID(r *http.Request) string {
	if r != nil {
		if id, ok := parseTraceparent(r.Header.Get("traceparent")); ok {
			return id
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseTraceparent returns the trace id of a W3C traceparent value
// (version 00 exactly; a later version may append fields after the four).
func parseTraceparent(v string) (string, bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (len(v) > 55 && (v[:2] == "00" || v[55] != '-')) {
		return "", false
	}
	if !lowerHex(v[:2]) || v[:2] == "ff" || !lowerHex(v[3:35]) || !lowerHex(v[36:52]) || !lowerHex(v[53:55]) {
		return "", false
	}
	id := v[3:35]
	if id == "00000000000000000000000000000000" || v[36:52] == "0000000000000000" {
		return "", false
	}
	return id, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
