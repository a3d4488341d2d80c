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
