package gateway

import (
	"strings"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	for v, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       "4bf92f3577b34da6a3ce929d0e0e4736",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": "4bf92f3577b34da6a3ce929d0e0e4736",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": "",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":       "",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":       "",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":       "",
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01":       "",
		"": "",
	} {
		got, ok := parseTraceparent(v)
		if got != want || ok != (want != "") {
			t.Errorf("parseTraceparent(%q) = %q %v, want %q", v, got, ok, want)
		}
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Fuzz(func(t *testing.T, v string) {
		id, ok := parseTraceparent(v)
		if ok && (len(id) != 32 || !lowerHex(id) || !strings.Contains(v, id)) {
			t.Fatalf("parseTraceparent(%q) = %q", v, id)
		}
		if !ok && id != "" {
			t.Fatalf("refused but returned %q", id)
		}
	})
}

func TestDigestArgsCanonical(t *testing.T) {
	k := []byte("k")
	a := digestArgs(k, map[string]any{"a": 1.0, "b": map[string]any{"y": "2", "x": "1"}})
	b := digestArgs(k, map[string]any{"b": map[string]any{"x": "1", "y": "2"}, "a": 1.0})
	if a == "" || a != b {
		t.Fatalf("equal arguments: %q vs %q", a, b)
	}
}

// BenchmarkRecordDigests: what stage 10 adds per tools/call for the keyed
// digests and the trace id (small arguments, a 1 KiB result).
func BenchmarkRecordDigests(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	args := map[string]any{"id": "T-1", "fields": []any{"title", "status"}, "limit": 10.0}
	result := []byte(`{"content":[{"type":"text","text":"` + strings.Repeat("x", 1000) + `"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if digestArgs(key, args) == "" || digest(key, result) == "" || traceID(nil) == "" {
			b.Fatal("empty")
		}
	}
}
