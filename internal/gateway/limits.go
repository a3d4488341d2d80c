package gateway

import (
	"errors"
	"strconv"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// Request shape limits (Config.MaxJSONDepth, Config.MaxBatch defaults).
const (
	defaultMaxJSONDepth = 64
	defaultMaxBatch     = 32
)

// checkJSON bounds what a request body may hold before anything decodes
// it: arrays and objects nested at most maxDepth deep, and numbers a
// float64 can hold (the policy and DLP decode arguments as float64; a
// number like 1e999999 would fail there with a misleading error). It is a
// single pass over the bytes, allocation-free; it does not validate the
// JSON otherwise (the parser does, after it).
func checkJSON(b []byte, maxDepth int) *mcp.Error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case c == '[' || c == '{':
			if depth++; depth > maxDepth {
				return mcp.Errorf(mcp.CodeInvalidRequest, "invalid request: JSON nests arrays and objects deeper than %d levels", maxDepth)
			}
		case c == ']' || c == '}':
			depth = max(depth-1, 0)
		case c == '-' || (c >= '0' && c <= '9'):
			j, big := i, false
			for ; j < len(b) && isNumberByte(b[j]); j++ {
				big = big || b[j] == 'e' || b[j] == 'E'
			}
			// Without an exponent, 15 bytes cannot exceed 1.8e308.
			if big || j-i > 15 {
				if _, err := strconv.ParseFloat(string(b[i:j]), 64); errors.Is(err, strconv.ErrRange) {
					return mcp.Errorf(mcp.CodeInvalidRequest, "invalid request: number %s is out of range (a JSON number here must fit a 64-bit float, at most about 1.8e308)", numberText(b[i:j]))
				}
			}
			i = j - 1
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// numberText quotes a number for an error, shortened when long.
func numberText(n []byte) string {
	if len(n) > 24 {
		return strconv.Quote(string(n[:12])+"…"+string(n[len(n)-8:])) + " (" + strconv.Itoa(len(n)) + " characters)"
	}
	return strconv.Quote(string(n))
}

// batchTooLarge is the refusal of a batch over the cap.
func batchTooLarge(n, limit int) *mcp.Error {
	return mcp.Errorf(mcp.CodeInvalidRequest, "invalid request: a JSON-RPC batch may hold at most %d messages, this one holds %d; nothing in it was processed", limit, n)
}
