package dlpqa

import (
	"os"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

// TestDebugDetector prints false positives and misses of the detectors in
// $DLP_QA_DEBUG (comma separated); it does nothing otherwise.
func TestDebugDetector(t *testing.T) {
	ids := os.Getenv("DLP_QA_DEBUG")
	if ids == "" {
		t.Skip("set DLP_QA_DEBUG=detector[,detector] to print examples")
	}
	want := map[string]bool{}
	for _, id := range strings.Split(ids, ",") {
		want[id] = true
	}
	s, _ := dlp.New(dlp.Config{})
	shown := 0
	for _, doc := range Generate(1, 60).Docs {
		var fs []dlp.Finding
		if doc.Kind == "json" {
			fs, _ = s.ScanJSON(doc.Text)
		} else {
			fs = s.Scan(doc.Text)
		}
		ctx := func(a, b int) string {
			return string(doc.Text[max(0, a-60):a]) + "⟦" + string(doc.Text[a:b]) + "⟧" + string(doc.Text[b:min(len(doc.Text), b+20)])
		}
		for _, f := range fs {
			if !want[f.Detector] {
				continue
			}
			ok := false
			for _, l := range doc.Labels {
				if l.Detector == f.Detector && l.Start == f.Start && l.End == f.End {
					ok = true
				}
			}
			if !ok && shown < 40 {
				shown++
				t.Logf("FP %s (%.2f): %q", f.Detector, f.Confidence, ctx(f.Start, f.End))
			}
		}
		for _, l := range doc.Labels {
			if !want[l.Detector] {
				continue
			}
			found := false
			var other []string
			for _, f := range fs {
				if f.Detector == l.Detector && f.Start == l.Start && f.End == l.End {
					found = true
				} else if f.Start < l.End && l.Start < f.End {
					other = append(other, f.Detector)
				}
			}
			if !found && shown < 40 {
				shown++
				t.Logf("FN %s (overlapping %v): %q", l.Detector, other, ctx(l.Start, l.End))
			}
		}
	}
}
