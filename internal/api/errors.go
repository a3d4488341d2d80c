package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Error is an error whose text is safe to show an API user. Handlers return
// it for anything the caller can act on; every other error becomes a
// generic 500 whose details stay in the server log.
//
// On the wire it is {"error": {"code", "message", "details"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Error codes. Clients match on these, so they never change meaning.
const (
	CodeBadRequest     = "bad_request"
	CodeInvalid        = "invalid"      // a document failed validation
	CodeUnauthorized   = "unauthorized" // missing or wrong admin token
	CodeNotFound       = "not_found"    // no such kind or object
	CodeConflict       = "conflict"     // e.g. still referenced
	CodeNotLeader      = "not_leader"   // write reached a follower
	CodeUnavailable    = "unavailable"  // node not ready / no leader
	CodeTooLarge       = "too_large"    // request body over the limit
	CodeNotImplemented = "not_implemented"
	CodeInternal       = "internal"
)

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeError sends err as the JSON error envelope. Anything that is not an
// *Error is logged and replaced by a generic message.
func (a *API) writeError(c *gin.Context, err error) {
	var e *Error
	if !errors.As(err, &e) {
		a.log.Error("admin api request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
		e = errorf(http.StatusInternalServerError, CodeInternal, "internal error; see the server log")
	}
	c.AbortWithStatusJSON(e.Status, gin.H{"error": e})
}

// WriteJSON sends v as JSON with status code: for Routes served by other
// components.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteError sends the API's error envelope from a Route's handler. msg
// is shown to the client: it must not hold secrets.
func WriteError(w http.ResponseWriter, status int, code, msg string, details any) {
	WriteJSON(w, status, map[string]*Error{"error": {Code: code, Message: msg, Details: details}})
}
