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
			// (its longest form, CRLF CRLF, has three bytes before the last)
			r.from = max(0, len(r.buf)-3)
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
	} else if len(r.buf) > 0 {
		// blank lines after the last event (the LF of a CR LF split
		// across writes) pass unchanged
		if _, err := r.w.Write(r.buf); err != nil {
			return err
		}
	}
	r.buf = nil
	return nil
}

// eventEnd finds the blank line that ends the first event: it returns the
// end of the event's lines and the start of the next event. Lines end in
// CRLF, LF or a bare CR (the SSE grammar allows all three); a CR at the end
// of b may be the first half of a CRLF, so a line ending there is only
// known to end once the next byte arrives, but a CR that ends a blank line
// ends the event at once (an LF after it is a blank line of its own, which
// the next event passes through unchanged).
func eventEnd(b []byte, from int) (int, int) {
	for i := from; i < len(b); i++ {
		c := b[i]
		if c != '\n' && c != '\r' {
			continue
		}
		j := i + 1
		if c == '\r' {
			if j == len(b) {
				return -1, -1 // CR or CRLF: wait for the next byte
			}
			if b[j] == '\n' {
				j++
			}
		}
		if j < len(b) && b[j] == '\n' {
			return j, j + 1
		}
		if j < len(b) && b[j] == '\r' {
			if j+1 < len(b) && b[j+1] == '\n' {
				return j, j + 2
			}
			return j, j + 1
		}
	}
	return -1, -1
}

// splitLines splits an event into its lines, each with its terminator
// (CRLF, LF or CR).
func splitLines(ev []byte) [][]byte {
	var out [][]byte
	s := 0
	for i := 0; i < len(ev); i++ {
		switch ev[i] {
		case '\n':
			out = append(out, ev[s:i+1])
			s = i + 1
		case '\r':
			if i+1 < len(ev) && ev[i+1] == '\n' {
				i++
			}
			out = append(out, ev[s:i+1])
			s = i + 1
		}
	}
	if s < len(ev) {
		out = append(out, ev[s:])
	}
	return out
}

func (r *SSERewriter) event(ev, sep []byte) error {
	var data [][]byte
	var other []byte
	dataAt := -1
	for _, line := range splitLines(ev) {
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
