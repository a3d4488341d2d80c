package behavior

import (
	"testing"
	"time"
)

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"get_*", "get_ticket", true}, {"get_*", "set_ticket", false},
		{"*_ticket", "get_ticket", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
		{"send", "send", true}, {"send", "sender", false}, {"**x", "abx", true},
	} {
		if got := wildcard(c.p, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
	if !glob("mail/*").match("mail", "send") || glob("mail/*").match("email", "send") {
		t.Error("glob mail/* matches the wrong upstream")
	}
}

// A window forgets calls older than its width (to one bucket's precision).
func TestWindowSlides(t *testing.T) {
	var w window
	width := 16 * time.Second // 1s buckets
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		w.add(t0.Add(time.Duration(i)*time.Second), width)
	}
	if n := w.count(t0.Add(9*time.Second), width); n != 10 {
		t.Fatalf("count within the window = %d, want 10", n)
	}
	if n := w.count(t0.Add(20*time.Second), width); n != 5 {
		t.Fatalf("count 20s later = %d, want the 5 calls of the last 16s", n)
	}
	if n := w.count(t0.Add(time.Hour), width); n != 0 {
		t.Fatalf("count an hour later = %d, want 0", n)
	}
}
