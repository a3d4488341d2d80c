package dlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrEventTooLarge is returned when one server-sent event exceeds the limit.
var ErrEventTooLarge = errors.New("dlp: server-sent event too large")

// BlockedCode is the JSON-RPC error code of a message replaced because DLP
// blocked it.
const BlockedCode = -32003

// SSERewriter applies an Engine to a text/event-stream as it passes through
// (MCP Streamable HTTP responses): the data of every event is rewritten
// (JSON data as JSON, anything else as text), a blocked message is replaced
// by a JSON-RPC error with the same id, and other fields (event, id, retry,
// comments) pass unchanged. Memory is bounded by the largest event.
type SSERewriter struct {
	e         *Engine
	flow      Flow
	dir       Direction
	w         io.Writer
	onVerdict func(Verdict)
	buf       []byte
	max       int
	err       error
	// from is where the search for the end of the buffered event resumes,
	// so an event arriving in many small writes is searched once (linear),
	// not once per write; looked counts the bytes searched (tests).
	from   int
	looked int64
}

// NewSSERewriter returns a writer that rewrites the stream written to it and
// writes the result to w. onVerdict (optional) sees every event's verdict.
func (e *Engine) NewSSERewriter(f Flow, dir Direction, w io.Writer, onVerdict func(Verdict)) *SSERewriter {
	return &SSERewriter{e: e, flow: f, dir: dir, w: w, onVerdict: onVerdict, max: 8 << 20}
}

// Write implements io.Writer.
func (r *SSERewriter) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.buf = append(r.buf, p...)
	for {
		end, next := eventEnd(r.buf, r.from)
		if end < 0 {
			r.looked += int64(len(r.buf) - r.from)
			// a separator may still complete across the next write
			r.from = max(0, len(r.buf)-2)
			break
		}
		r.looked += int64(next - r.from)
		r.from = 0
		if err := r.event(r.buf[:end], r.buf[end:next]); err != nil {
			r.err = err
			return 0, err
		}
		r.buf = r.buf[next:]
	}
	if len(r.buf) > r.max {
		r.err = fmt.Errorf("%w (more than %d bytes)", ErrEventTooLarge, r.max)
		return 0, r.err
	}
	// keep the unprocessed tail compact
	if cap(r.buf) > 4*len(r.buf)+4096 {
		r.buf = append([]byte(nil), r.buf...)
	}
	return len(p), nil
}

// Close rewrites a final event that was not terminated by a blank line.
func (r *SSERewriter) Close() error {
	if r.err != nil {
		return r.err
	}
	if len(bytes.TrimSpace(r.buf)) > 0 {
		if err := r.event(r.buf, nil); err != nil {
			return err
		}
	}
	r.buf = nil
	return nil
}

// eventEnd finds the blank line that ends the first event: it returns the
// end of the event's lines and the start of the next event.
func eventEnd(b []byte, from int) (int, int) {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		j := i + 1
		if j < len(b) && b[j] == '\r' {
			j++
		}
		if j < len(b) && b[j] == '\n' {
			return i + 1, j + 1
		}
	}
	return -1, -1
}

func (r *SSERewriter) event(ev, sep []byte) error {
	var data [][]byte
	var other []byte
	dataAt := -1
	for _, line := range bytes.SplitAfter(ev, []byte("\n")) {
		trimmed := bytes.TrimRight(line, "\r\n")
		if v, ok := bytes.CutPrefix(trimmed, []byte("data:")); ok {
			if dataAt < 0 {
				dataAt = len(other)
			}
			data = append(data, bytes.TrimPrefix(v, []byte(" ")))
			continue
		}
		other = append(other, line...)
	}
	if dataAt < 0 {
		_, err := r.w.Write(append(append([]byte{}, ev...), sep...))
		return err
	}
	payload := bytes.Join(data, []byte("\n"))
	var out []byte
	var v Verdict
	var err error
	if json.Valid(payload) {
		out, v, err = r.e.ApplyFlow(r.flow, r.dir, payload)
	} else {
		out, v, err = r.e.ApplyText(r.dir, payload)
	}
	if err != nil {
		return err
	}
	if r.onVerdict != nil {
		r.onVerdict(v)
	}
	if v.Decision == Block {
		out = blockedMessage(payload, v)
	}
	var b bytes.Buffer
	b.Write(other[:dataAt])
	for _, l := range bytes.Split(out, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(l)
		b.WriteByte('\n')
	}
	b.Write(other[dataAt:])
	if sep == nil {
		sep = []byte("\n")
	}
	b.Write(sep)
	_, err = r.w.Write(b.Bytes())
	return err
}

// blockedMessage is the JSON-RPC error that replaces a blocked message.
func blockedMessage(orig []byte, v Verdict) []byte {
	var msg struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(orig, &msg)
	id := msg.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	reason := "blocked by data-loss prevention"
	if len(v.Reasons) > 0 {
		reason += ": " + strings.Join(v.Reasons, "; ")
	}
	out, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"error":   map[string]any{"code": BlockedCode, "message": reason},
	})
	return out
}
