package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Standard JSON-RPC 2.0 error codes and the codes MCP defines.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeResourceNotFound is the resource-not-found code of 2025-11-25 and
	// earlier (2026-07-28 uses CodeInvalidParams instead).
	CodeResourceNotFound = -32002
	// CodeHeaderMismatch: HTTP headers do not match the body, or a required
	// header is missing or malformed (2026-07-28).
	CodeHeaderMismatch = -32020
	// CodeMissingRequiredClientCapability (2026-07-28).
	CodeMissingRequiredClientCapability = -32021
	// CodeUnsupportedProtocolVersion (2026-07-28).
	CodeUnsupportedProtocolVersion = -32022
)

// Error is a JSON-RPC error object. It is also a Go error.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Kind classifies a message.
type Kind uint8

// Message kinds.
const (
	KindInvalid Kind = iota
	KindRequest
	KindNotification
	KindResponse // result or error
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	}
	return "invalid"
}

// Message is one JSON-RPC 2.0 message. ID keeps the exact bytes the peer
// sent (a JSON string or integer), so a response echoes it unchanged. Params
// and Result are passed through undecoded.
type Message struct {
	ID     json.RawMessage
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  *Error
}

// Kind reports what the message is.
func (m *Message) Kind() Kind {
	switch {
	case m.Method != "" && m.ID != nil:
		return KindRequest
	case m.Method != "":
		return KindNotification
	case m.Result != nil || m.Error != nil:
		return KindResponse
	}
	return KindInvalid
}

// IsRequest reports whether m is a request (has a method and an id).
func (m *Message) IsRequest() bool { return m.Kind() == KindRequest }

// IsNotification reports whether m is a notification.
func (m *Message) IsNotification() bool { return m.Kind() == KindNotification }

// IsResponse reports whether m is a result or error response.
func (m *Message) IsResponse() bool { return m.Kind() == KindResponse }

// NewRequest builds a request. id must be a valid id (see IntID, StringID).
func NewRequest(id json.RawMessage, method string, params json.RawMessage) *Message {
	return &Message{ID: id, Method: method, Params: params}
}

// NewNotification builds a notification.
func NewNotification(method string, params json.RawMessage) *Message {
	return &Message{Method: method, Params: params}
}

// NewResult builds a result response for id.
func NewResult(id json.RawMessage, result json.RawMessage) *Message {
	if result == nil {
		result = json.RawMessage("{}")
	}
	return &Message{ID: id, Result: result}
}

// NewError builds an error response for id (nil id is written as null).
func NewError(id json.RawMessage, err *Error) *Message { return &Message{ID: id, Error: err} }

// IntID returns the JSON encoding of an integer id.
func IntID(n int64) json.RawMessage { return strconv.AppendInt(nil, n, 10) }

// StringID returns the JSON encoding of a string id.
func StringID(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// Sentinel parse errors.
var (
	ErrEmptyBatch = errors.New("empty batch")
	ErrNotObject  = errors.New("message is not a JSON object")
)

type wireMessage struct {
	JSONRPC *string         `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// Parse decodes and validates one JSON-RPC 2.0 message. The returned *Error
// carries CodeParseError for malformed JSON and CodeInvalidRequest for JSON
// that is not a valid message. When the id could be read it is returned in
// the message even on error, so the caller can answer with it.
func Parse(data []byte) (*Message, *Error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		if !json.Valid(data) {
			return nil, Errorf(CodeParseError, "parse error: body is not valid JSON")
		}
		return nil, Errorf(CodeInvalidRequest, "invalid request: %v", ErrNotObject)
	}
	var w wireMessage
	if err := json.Unmarshal(data, &w); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || !json.Valid(data) {
			return nil, Errorf(CodeParseError, "parse error: body is not valid JSON")
		}
		return nil, Errorf(CodeInvalidRequest, "invalid request: %s", typeErrorText(err))
	}
	return fromWire(&w)
}

func typeErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	return "malformed message"
}

func fromWire(w *wireMessage) (*Message, *Error) {
	m := &Message{}
	if id := w.ID; id != nil && !isNull(id) {
		if err := validID(id); err != nil {
			return nil, Errorf(CodeInvalidRequest, "invalid request: %v", err)
		}
		m.ID = id
	}
	if w.JSONRPC == nil || *w.JSONRPC != "2.0" {
		return m, Errorf(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)
	}
	if w.Method != nil {
		if *w.Method == "" {
			return m, Errorf(CodeInvalidRequest, "invalid request: empty method")
		}
		if w.ID != nil && isNull(w.ID) {
			return m, Errorf(CodeInvalidRequest, "invalid request: id must not be null")
		}
		if w.Result != nil || w.Error != nil {
			return m, Errorf(CodeInvalidRequest, "invalid request: a request must not carry result or error")
		}
		m.Method = *w.Method
		if p := w.Params; p != nil && !isNull(p) {
			if p[0] != '{' {
				return m, Errorf(CodeInvalidRequest, "invalid request: params must be an object")
			}
			m.Params = p
		}
		return m, nil
	}
	// Response.
	hasResult := w.Result != nil
	hasError := w.Error != nil && !isNull(w.Error)
	if hasResult == hasError {
		return m, Errorf(CodeInvalidRequest, "invalid response: exactly one of result and error is required")
	}
	if hasResult {
		if m.ID == nil {
			return m, Errorf(CodeInvalidRequest, "invalid response: a result needs an id")
		}
		m.Result = w.Result
		return m, nil
	}
	var e Error
	if err := json.Unmarshal(w.Error, &e); err != nil {
		return m, Errorf(CodeInvalidRequest, "invalid response: malformed error object")
	}
	if e.Message == "" && e.Code == 0 {
		return m, Errorf(CodeInvalidRequest, "invalid response: error needs code and message")
	}
	m.Error = &e
	return m, nil
}

func isNull(b json.RawMessage) bool { return len(b) == 4 && string(b) == "null" }

// validID accepts a JSON string or an integer, as MCP requires.
func validID(id json.RawMessage) error {
	switch c := id[0]; {
	case c == '"':
		return nil // json.Unmarshal already checked it is a valid string
	case c == '-' || (c >= '0' && c <= '9'):
		for i, d := range id {
			if d == '-' && i == 0 {
				continue
			}
			if d < '0' || d > '9' {
				return errors.New("id must be a string or an integer")
			}
		}
		if len(id) == 1 && id[0] == '-' {
			return errors.New("id must be a string or an integer")
		}
		return nil
	}
	return errors.New("id must be a string or an integer")
}

// ParseBody parses an HTTP body that holds one message or, when batch is
// allowed, a JSON array of messages. isBatch reports whether the body was an
// array. A per-message error in a batch is returned in errs at the same index
// (msgs[i] may then hold just the id).
func ParseBody(data []byte, allowBatch bool) (msgs []*Message, errs []*Error, isBatch bool, err *Error) {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '[' {
		if !allowBatch {
			if !json.Valid(t) {
				return nil, nil, true, Errorf(CodeParseError, "parse error: body is not valid JSON")
			}
			return nil, nil, true, Errorf(CodeInvalidRequest, "invalid request: JSON-RPC batches are not allowed in this protocol revision")
		}
		var raw []json.RawMessage
		if e := json.Unmarshal(t, &raw); e != nil {
			return nil, nil, true, Errorf(CodeParseError, "parse error: body is not valid JSON")
		}
		if len(raw) == 0 {
			return nil, nil, true, Errorf(CodeInvalidRequest, "invalid request: %v", ErrEmptyBatch)
		}
		msgs = make([]*Message, len(raw))
		errs = make([]*Error, len(raw))
		for i, r := range raw {
			msgs[i], errs[i] = Parse(r)
		}
		return msgs, errs, true, nil
	}
	m, e := Parse(t)
	if e != nil {
		return []*Message{m}, []*Error{e}, false, e
	}
	return []*Message{m}, []*Error{nil}, false, nil
}

// MarshalJSON writes the message in JSON-RPC 2.0 form.
func (m *Message) MarshalJSON() ([]byte, error) { return m.AppendJSON(nil), nil }

// AppendJSON appends the wire form of m to b.
func (m *Message) AppendJSON(b []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0"`...)
	if m.Method != "" {
		if m.ID != nil {
			b = append(b, `,"id":`...)
			b = append(b, m.ID...)
		}
		b = append(b, `,"method":`...)
		b = appendString(b, m.Method)
		if m.Params != nil {
			b = append(b, `,"params":`...)
			b = append(b, m.Params...)
		}
		return append(b, '}')
	}
	b = append(b, `,"id":`...)
	if m.ID != nil {
		b = append(b, m.ID...)
	} else {
		b = append(b, "null"...)
	}
	if m.Error != nil {
		e, _ := json.Marshal(m.Error)
		b = append(b, `,"error":`...)
		b = append(b, e...)
	} else {
		b = append(b, `,"result":`...)
		if m.Result != nil {
			b = append(b, m.Result...)
		} else {
			b = append(b, "{}"...)
		}
	}
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UnmarshalJSON parses and validates a message.
func (m *Message) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*m = *p
	return nil
}
