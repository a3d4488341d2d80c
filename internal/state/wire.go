package state

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The outcome wire form carries what Apply returned for a command — a
// *Result or a refusal — between nodes: a node that forwards an admin write
// to the leader (internal/cluster's Forwarder, over mutual TLS) gets the
// leader's outcome back in this form. DecodeOutcome(EncodeOutcome(o))
// gives a Result equal to o.Result, or an error with the same text that
// is a *ValidationError with the same field errors or matches the same
// sentinel (errors.Is), so the forwarding node's API answers exactly as the
// leader's would.
//
//	{"result": {"index": 7, "changes": [...]}}
//	{"error": {"code": "invalid", "message": "...", "problems": [{"file", "doc", "line", "kind", "name", "field", "msg"}]}}
//	{"error": {"code": "not_found" | "in_use" | "conflict" | "malformed" | "unsupported" | "error", "message": "..."}}
//
// The codes never change meaning. "error" is any other failure; its
// message is for the server log, not for users.
type wireOutcome struct {
	Result *Result    `json:"result,omitempty"`
	Error  *wireError `json:"error,omitempty"`
}

type wireError struct {
	Code     string        `json:"code"`
	Message  string        `json:"message"`
	Problems []wireProblem `json:"problems,omitempty"`
}

type wireProblem struct {
	File  string `json:"file,omitempty"`
	Doc   int    `json:"doc,omitempty"`
	Line  int    `json:"line,omitempty"`
	Kind  Kind   `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"msg"`
}

// Wire codes of the refusals (see EncodeOutcome).
const (
	codeInvalid     = "invalid"
	codeNotFound    = "not_found"
	codeInUse       = "in_use"
	codeConflict    = "conflict"
	codeMalformed   = "malformed"
	codeUnsupported = "unsupported"
	codeOther       = "error"
)

var sentinels = []struct {
	code string
	err  error
}{
	{codeNotFound, ErrNotFound},
	{codeInUse, ErrInUse},
	{codeConflict, ErrConflict},
	{codeMalformed, ErrMalformed},
	{codeUnsupported, ErrUnsupported},
}

// maxOutcomeBytes bounds what DecodeOutcome reads.
const maxOutcomeBytes = 16 << 20

// Outcome is what applying one command gave: Result, or the refusal Err.
type Outcome struct {
	Result *Result
	Err    error
}

// EncodeOutcome serializes o (Err wins when both are set).
func EncodeOutcome(o Outcome) ([]byte, error) {
	var w wireOutcome
	err := o.Err
	if err == nil {
		w.Result = o.Result
		return json.Marshal(w)
	}
	we := &wireError{Code: codeOther, Message: err.Error()}
	var ve *ValidationError
	if errors.As(err, &ve) && len(ve.Errors) > 0 {
		we.Code = codeInvalid
		for _, fe := range ve.Errors {
			we.Problems = append(we.Problems, wireProblem{fe.File, fe.Doc, fe.Line, fe.Kind, fe.Name, fe.Field, fe.Msg})
		}
	} else {
		for _, s := range sentinels {
			if errors.Is(err, s.err) {
				we.Code = s.code
				break
			}
		}
	}
	w.Error = we
	return json.Marshal(w)
}

// DecodeOutcome reads what EncodeOutcome wrote; its error says that b is
// not a valid outcome (the command's own refusal is Outcome.Err).
func DecodeOutcome(b []byte) (Outcome, error) {
	if len(b) > maxOutcomeBytes {
		return Outcome{}, fmt.Errorf("decode outcome: %d bytes; at most %d", len(b), maxOutcomeBytes)
	}
	var w wireOutcome
	if err := json.Unmarshal(b, &w); err != nil {
		return Outcome{}, fmt.Errorf("decode outcome: %w", err)
	}
	if w.Error == nil {
		return Outcome{Result: w.Result}, nil
	}
	if w.Result != nil {
		return Outcome{}, errors.New("decode outcome: both a result and an error")
	}
	we := w.Error
	if we.Code == codeInvalid {
		if len(we.Problems) == 0 {
			return Outcome{}, errors.New("decode outcome: a validation error without problems")
		}
		ve := &ValidationError{Errors: make([]*FieldError, len(we.Problems))}
		for i, p := range we.Problems {
			ve.Errors[i] = &FieldError{File: p.File, Doc: p.Doc, Line: p.Line, Kind: p.Kind, Name: p.Name, Field: p.Field, Msg: p.Msg}
		}
		return Outcome{Err: ve}, nil
	}
	if len(we.Problems) > 0 {
		return Outcome{}, fmt.Errorf("decode outcome: problems given with code %q", we.Code)
	}
	if we.Code == codeOther {
		return Outcome{Err: errors.New(we.Message)}, nil
	}
	for _, s := range sentinels {
		if s.code == we.Code {
			return Outcome{Err: &refusal{msg: we.Message, kind: s.err}}, nil
		}
	}
	return Outcome{}, fmt.Errorf("decode outcome: unknown error code %q", we.Code)
}

// refusal is a decoded refusal: the leader's text, matching its sentinel.
type refusal struct {
	msg  string
	kind error
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

// OutcomeCodec carries the store's answers to writes forwarded to the
// leader (it implements cluster.Codec), so a write made on a follower
// answers exactly as one made on the leader.
type OutcomeCodec struct{}

// EncodeResponse encodes what the store's Apply returned (a *Result, or
// the refusal as resp or err).
func (OutcomeCodec) EncodeResponse(resp any, err error) ([]byte, error) {
	if e, ok := resp.(error); ok && err == nil {
		err = e
	}
	o := Outcome{Err: err}
	if err == nil {
		r, ok := resp.(*Result)
		if !ok {
			return nil, fmt.Errorf("unexpected state response %T", resp)
		}
		o.Result = r
	}
	return EncodeOutcome(o)
}

// DecodeResponse returns the *Result, or the refusal as an error value.
func (OutcomeCodec) DecodeResponse(b []byte) (any, error) {
	o, err := DecodeOutcome(b)
	if err != nil {
		return nil, err
	}
	if o.Err != nil {
		return o.Err, nil
	}
	return o.Result, nil
}
