package cli

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

func TestDLPDetectorsJSON(t *testing.T) {
	out, err := runCLI(t, "", "dlp", "detectors", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []struct {
		ID       string   `json:"id"`
		Category string   `json:"category"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) < 120 {
		t.Errorf("%d detectors listed", len(ds))
	}
	for _, d := range ds {
		if d.ID == "" || d.Category == "" || len(d.Tags) == 0 {
			t.Errorf("incomplete entry %+v", d)
		}
	}
}

func TestDLPScanJSONLines(t *testing.T) {
	in := "order 42 paid with 4111 1111 1111 1111 by jane.doe@example.com\n"
	out, err := runCLI(t, in, "dlp", "scan", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		Detector   string  `json:"detector"`
		Category   string  `json:"category"`
		Start      int     `json:"start"`
		End        int     `json:"end"`
		Confidence float64 `json:"confidence"`
	}
	var got []line
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		got = append(got, l)
	}
	if len(got) != 2 || got[0].Detector != "card-visa" || in[got[0].Start:got[0].End] != "4111 1111 1111 1111" ||
		got[1].Detector != "email" || in[got[1].Start:got[1].End] != "jane.doe@example.com" || got[0].Category != "pci" || got[0].Confidence <= 0 {
		t.Errorf("findings = %+v", got)
	}
	// streamed text mode reports the same offsets
	out2, err := runCLI(t, in, "dlp", "scan", "--format", "json", "--mode", "text")
	if err != nil || out2 != out {
		t.Errorf("text mode: %q (%v), auto mode: %q", out2, err, out)
	}
	if _, err := runCLI(t, "", "dlp", "scan", "--format", "yaml"); err == nil {
		t.Error("bad format accepted")
	}
}

// JSON Lines input (NDJSON logs, exports) is scanned line by line as JSON in
// auto mode: findings carry the line number and JSON path, and the offsets
// are those of the whole input.
func TestDLPScanJSONLinesInput(t *testing.T) {
	in := `{"user":"ana","note":"nothing here"}` + "\n" +
		`{"user":"bo","payment":{"card":"4111 1111 1111 1111"}}` + "\n\n" +
		`{"user":"cy","contact":"jane.doe@example.com"}` + "\n"
	for _, mode := range []string{"auto", "jsonl"} {
		out, err := runCLI(t, in, "dlp", "scan", "--format", "json", "--mode", mode)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		type line struct {
			Detector   string `json:"detector"`
			Start, End int
			Path       string `json:"path"`
		}
		var got []line
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("%s: %q: %v", mode, l, err)
			}
			got = append(got, x)
		}
		want := []struct{ det, path, val string }{
			{"card-visa", "2:$.payment.card", "4111 1111 1111 1111"},
			{"email", "4:$.contact", "jane.doe@example.com"},
		}
		if len(got) != len(want) {
			t.Fatalf("%s: findings %+v, want %d", mode, got, len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.Detector != w.det || g.Path != w.path || in[g.Start:g.End] != w.val {
				t.Errorf("%s: finding %d = %+v (%q), want %s at %s", mode, i, g, in[g.Start:g.End], w.det, w.path)
			}
		}
	}
	// a broken line in auto mode: the input is scanned as text instead
	bad := `{"a":"4111 1111 1111 1111"}` + "\n" + `{"b": oops}` + "\n"
	out, err := runCLI(t, bad, "dlp", "scan", "--format", "json")
	if err != nil || !strings.Contains(out, `"card-visa"`) || strings.Contains(out, `"path"`) {
		t.Errorf("auto with a broken line: %q, %v", out, err)
	}
	if _, err := runCLI(t, bad, "dlp", "scan", "--format", "json", "--mode", "jsonl"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("jsonl mode with a broken line: err %v, want one naming line 2", err)
	}
}
