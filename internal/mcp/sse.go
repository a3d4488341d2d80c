package mcp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Event is one Server-Sent Event.
type Event struct {
	ID    string        // "id:" field; HasID tells an empty id from none
	HasID bool          //
	Name  string        // "event:" field; "" means "message"
	Data  []byte        // "data:" lines joined by '\n'
	Retry time.Duration // "retry:" field, 0 when absent
}

// Type returns the event type, "message" by default.
func (e Event) Type() string {
	if e.Name == "" {
		return "message"
	}
	return e.Name
}

// ErrSSEField is returned when an event field cannot be encoded.
var ErrSSEField = errors.New("sse: field contains a line break")

// WriteEvent writes ev in the text/event-stream format. Data may contain line
// breaks; each line becomes its own "data:" line.
func WriteEvent(w io.Writer, ev Event) error {
	if strings.ContainsAny(ev.ID, "\r\n\x00") || strings.ContainsAny(ev.Name, "\r\n") {
		return ErrSSEField
	}
	var b bytes.Buffer
	if ev.HasID || ev.ID != "" {
		b.WriteString("id: ")
		b.WriteString(ev.ID)
		b.WriteByte('\n')
	}
	if ev.Name != "" {
		b.WriteString("event: ")
		b.WriteString(ev.Name)
		b.WriteByte('\n')
	}
	if ev.Retry > 0 {
		b.WriteString("retry: ")
		b.WriteString(strconv.FormatInt(ev.Retry.Milliseconds(), 10))
		b.WriteByte('\n')
	}
	data := ev.Data
	for {
		i := bytes.IndexAny(data, "\r\n")
		line := data
		if i >= 0 {
			line = data[:i]
		}
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
		if i < 0 {
			break
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// WriteComment writes an SSE comment line (used as a keep-alive).
func WriteComment(w io.Writer, text string) error {
	text = strings.NewReplacer("\r", " ", "\n", " ").Replace(text)
	_, err := io.WriteString(w, ":"+text+"\n\n")
	return err
}

// EventReader decodes a text/event-stream.
type EventReader struct {
	r       *bufio.Reader
	maxSize int
	lastID  string
}

// DefaultMaxEventSize bounds one event (all its lines) when reading.
const DefaultMaxEventSize = 16 << 20

// NewEventReader reads events from r; one event may hold at most maxSize
// bytes (DefaultMaxEventSize when maxSize <= 0).
func NewEventReader(r io.Reader, maxSize int) *EventReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxEventSize
	}
	return &EventReader{r: bufio.NewReaderSize(r, 32<<10), maxSize: maxSize}
}

// LastEventID returns the last event id seen, as the SSE last event ID
// buffer defines it (it persists across events).
func (er *EventReader) LastEventID() string { return er.lastID }

// ErrEventTooLarge is returned for an event over the size limit.
var ErrEventTooLarge = errors.New("sse: event too large")

// Next returns the next event that carries data or an id change. It returns
// io.EOF at the end of the stream; an event cut off by EOF is discarded, as
// the SSE specification requires.
func (er *EventReader) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	hasData := false
	size := 0
	for {
		line, err := er.readLine(er.maxSize - size)
		if err != nil {
			return Event{}, err
		}
		size += len(line) + 1
		if len(line) == 0 {
			if !hasData {
				if ev.HasID || ev.Retry > 0 {
					// an id-only or retry-only event updates state but carries no message
					ev = Event{}
				}
				continue
			}
			ev.Data = data.Bytes()
			if ev.HasID {
				er.lastID = ev.ID
			} else {
				ev.ID = er.lastID
			}
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "event":
			ev.Name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.ID, ev.HasID = string(value), true
				er.lastID = ev.ID
			}
		case "retry":
			if n, ok := digits(value); ok {
				ev.Retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// readLine reads one line ended by \n, \r or \r\n, without the terminator.
func (er *EventReader) readLine(limit int) ([]byte, error) {
	var line []byte
	for {
		b, err := er.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("sse: read: %w", err)
		}
		switch b {
		case '\n':
			return line, nil
		case '\r':
			if nb, err := er.r.Peek(1); err == nil && nb[0] == '\n' {
				_, _ = er.r.ReadByte()
			}
			return line, nil
		}
		if len(line) >= limit {
			return nil, ErrEventTooLarge
		}
		line = append(line, b)
	}
}
