package dlp

import (
	"bytes"
	"strings"
	"testing"
)

// TestReviewSSEEverySplit writes a stream in two writes split at every
// position (also between "\r\n" and the blank line) and checks the output
// equals the output of one write.
func TestReviewSSEEverySplit(t *testing.T) {
	e := mustEngine(t, EngineConfig{Policy: Policy{Rules: []Rule{{Categories: []Category{PCI}, Action: ActionRedact}}}})
	stream := "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"text\":\"card 4111 1111 1111 1111\"}}\r\n\r\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"n\":5555555555554444}}\n\n"
	run := func(parts ...string) string {
		var out bytes.Buffer
		w := e.NewSSERewriter(Flow{}, Response, &out, nil)
		for _, p := range parts {
			if _, err := w.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	want := run(stream)
	if strings.Contains(want, "4111") || strings.Contains(want, "5555555555554444") {
		t.Fatalf("cards left: %q", want)
	}
	for i := 1; i < len(stream); i++ {
		if got := run(stream[:i], stream[i:]); got != want {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

// TestReviewSSESmallWritesLinear: a large event arriving in small writes is
// searched for its end once, not once per write (that was quadratic: a 1 MB
// event in 100-byte writes meant ~5 GB of searching).
func TestReviewSSESmallWritesLinear(t *testing.T) {
	e := mustEngine(t, EngineConfig{})
	ev := "data: {\"text\":\"" + strings.Repeat("lorem ipsum ", 1<<16) + "\"}\n\n"
	var out bytes.Buffer
	w := e.NewSSERewriter(Flow{}, Response, &out, nil)
	for p := 0; p < len(ev); p += 100 {
		if _, err := w.Write([]byte(ev[p:min(len(ev), p+100)])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != ev {
		t.Fatal("clean event changed")
	}
	if w.looked > 3*int64(len(ev)) {
		t.Errorf("searched %d bytes for the end of a %d-byte event", w.looked, len(ev))
	}
}
