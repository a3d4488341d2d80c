package mcp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestEventReader(t *testing.T) {
	in := ": comment\r\n" +
		"id: 1\r\nevent: endpoint\r\ndata: /messages?s=1\r\n\r\n" +
		"data: {\"a\":1}\ndata: line2\n\n" +
		"retry: 2500\rid: 7\rdata:x\r\r" +
		"id\n\n" +
		"data: tail-without-blank-line"
	er := NewEventReader(strings.NewReader(in), 0)
	want := []Event{
		{ID: "1", HasID: true, Name: "endpoint", Data: []byte("/messages?s=1")},
		{ID: "1", Data: []byte("{\"a\":1}\nline2")},
		{ID: "7", HasID: true, Data: []byte("x"), Retry: 2500 * time.Millisecond},
	}
	for i, w := range want {
		ev, err := er.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != w.ID || ev.Name != w.Name || !bytes.Equal(ev.Data, w.Data) || ev.Retry != w.Retry {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	if _, err := er.Next(); err != io.EOF {
		t.Fatalf("after last event: %v, want EOF (unterminated event dropped)", err)
	}
	if er.LastEventID() != "" {
		t.Fatalf("empty id field must reset the last event id, got %q", er.LastEventID())
	}
}

func TestEventRoundTrip(t *testing.T) {
	var b bytes.Buffer
	evs := []Event{
		{ID: "s1-1", Data: []byte(`{"jsonrpc":"2.0","method":"x"}`)},
		{Name: "endpoint", Data: []byte("a\r\nb\rc\nd")},
		{Data: nil, Retry: time.Second},
	}
	for _, ev := range evs {
		if err := WriteEvent(&b, ev); err != nil {
			t.Fatal(err)
		}
	}
	_ = WriteComment(&b, "keep\nalive")
	er := NewEventReader(&b, 0)
	ev, _ := er.Next()
	if ev.ID != "s1-1" || string(ev.Data) != `{"jsonrpc":"2.0","method":"x"}` {
		t.Fatalf("event 1 = %+v", ev)
	}
	ev, _ = er.Next()
	if ev.Name != "endpoint" || string(ev.Data) != "a\nb\nc\nd" {
		t.Fatalf("event 2 = %q", ev.Data)
	}
	ev, err := er.Next()
	if err != nil || len(ev.Data) != 0 || ev.Retry != time.Second {
		t.Fatalf("event 3 = %+v %v", ev, err)
	}
	if WriteEvent(io.Discard, Event{ID: "a\nb"}) == nil {
		t.Fatal("id with a line break accepted")
	}
}

func TestEventTooLarge(t *testing.T) {
	er := NewEventReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	if _, err := er.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
}

func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"data: x\n\n", "id: 1\r\ndata: a\r\ndata: b\r\n\r\n", ":c\n\n", "retry: 10\n\n", "event: e\rdata\r\r",
		"data:\n\ndata: \n\n", "id: \x00\ndata: z\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		er := NewEventReader(bytes.NewReader(data), 4096)
		var evs []Event
		for {
			ev, err := er.Next()
			if err != nil {
				break
			}
			evs = append(evs, Event{Name: ev.Name, Data: append([]byte(nil), ev.Data...)})
		}
		// Whatever we read must survive an encode/decode round trip.
		var b bytes.Buffer
		for _, ev := range evs {
			if strings.ContainsAny(ev.Name, "\r\n") {
				return
			}
			if err := WriteEvent(&b, ev); err != nil {
				t.Fatal(err)
			}
		}
		er2 := NewEventReader(&b, 1<<20)
		for i, w := range evs {
			ev, err := er2.Next()
			if err != nil {
				t.Fatalf("re-read event %d: %v", i, err)
			}
			if ev.Name != w.Name || !bytes.Equal(ev.Data, w.Data) {
				t.Fatalf("event %d changed: %+v vs %+v", i, ev, w)
			}
		}
	})
}
