package dlp

import (
	"math/rand/v2"
	"testing"
)

func mustScanner(t testing.TB, cfg Config) *Scanner {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDetectorCount(t *testing.T) {
	all := All()
	if len(all) < 120 {
		t.Errorf("have %d detectors, want at least 120", len(all))
	}
	perCat := map[Category]int{}
	for _, d := range all {
		perCat[d.Category]++
		if d.gen == nil || d.near == nil {
			t.Errorf("%s: missing test vectors", d.ID)
		}
		if len(d.Tags) == 0 || d.Description == "" || !validCategory(d.Category) {
			t.Errorf("%s: incomplete metadata", d.ID)
		}
	}
	if perCat[Secrets] < 60 {
		t.Errorf("have %d secret detectors, want at least 60", perCat[Secrets])
	}
	t.Logf("detectors per category: %v (total %d)", perCat, len(all))
}

// TestDetectorVectors runs every detector's generated positive and near-miss
// vectors through a scanner with every detector enabled.
func TestDetectorVectors(t *testing.T) {
	s := mustScanner(t, Config{})
	for _, d := range All() {
		t.Run(d.ID, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(d.ID))))
			for k := 0; k < 25 && !t.Failed(); k++ {
				text, start, end := d.Sample(r)
				fs := s.Scan([]byte(text))
				if !hasFinding(fs, d.ID, start, end) {
					t.Errorf("positive %q (value %q): want %s at [%d,%d), got %+v", text, text[start:end], d.ID, start, end, fs)
				}
				near := d.NearMiss(r)
				for _, f := range s.Scan([]byte(near)) {
					if f.Detector == d.ID {
						t.Errorf("near miss %q: unexpected %s finding %q", near, d.ID, near[f.Start:f.End])
					}
				}
			}
		})
	}
}

func hasFinding(fs []Finding, id string, start, end int) bool {
	for _, f := range fs {
		if f.Detector == id && f.Start == start && f.End == end {
			return true
		}
	}
	return false
}
