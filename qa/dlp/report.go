package dlpqa

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

// Counts are the confusion counts of one detector.
type Counts struct{ TP, FP, FN int }

// Precision is TP/(TP+FP) (1 when nothing was reported).
func (c Counts) Precision() float64 {
	if c.TP+c.FP == 0 {
		return 1
	}
	return float64(c.TP) / float64(c.TP+c.FP)
}

// Recall is TP/(TP+FN) (1 when nothing was expected).
func (c Counts) Recall() float64 {
	if c.TP+c.FN == 0 {
		return 1
	}
	return float64(c.TP) / float64(c.TP+c.FN)
}

func (c *Counts) add(o Counts) { c.TP += o.TP; c.FP += o.FP; c.FN += o.FN }

// Report holds per-detector counts.
type Report struct {
	Per map[string]*Counts
}

// Evaluate scans every document (JSON documents with ScanJSON) and matches
// findings to labels: a finding is a true positive when it has the label's
// detector and span.
func Evaluate(s *dlp.Scanner, c Corpus) (Report, error) {
	rep := Report{Per: map[string]*Counts{}}
	get := func(id string) *Counts {
		if rep.Per[id] == nil {
			rep.Per[id] = &Counts{}
		}
		return rep.Per[id]
	}
	for _, d := range dlp.All() {
		get(d.ID)
	}
	for _, doc := range c.Docs {
		var fs []dlp.Finding
		if doc.Kind == "json" {
			var err error
			if fs, err = s.ScanJSON(doc.Text); err != nil {
				return rep, fmt.Errorf("corpus document is not valid JSON: %w", err)
			}
		} else {
			fs = s.Scan(doc.Text)
		}
		matched := make([]bool, len(doc.Labels))
		for _, f := range fs {
			hit := false
			for i, l := range doc.Labels {
				if !matched[i] && l.Detector == f.Detector && l.Start == f.Start && l.End == f.End {
					matched[i] = true
					hit = true
					break
				}
			}
			if hit {
				get(f.Detector).TP++
			} else {
				get(f.Detector).FP++
			}
		}
		for i, l := range doc.Labels {
			if !matched[i] {
				get(l.Detector).FN++
			}
		}
	}
	return rep, nil
}

// Total sums the counts of the detectors accepted by keep.
func (r Report) Total(keep func(*dlp.Detector) bool) Counts {
	var t Counts
	for id, c := range r.Per {
		if d, err := dlp.Lookup(id); err == nil && keep(d) {
			t.add(*c)
		}
	}
	return t
}

// Write prints the per-detector table and the totals.
func (r Report) Write(w io.Writer) {
	ids := make([]string, 0, len(r.Per))
	for id := range r.Per {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "detector\tcategory\tchecksum\tTP\tFP\tFN\tprecision\trecall\t")
	for _, id := range ids {
		d, _ := dlp.Lookup(id)
		c := r.Per[id]
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%d\t%.4f\t%.4f\t\n", id, d.Category, d.Checksum, c.TP, c.FP, c.FN, c.Precision(), c.Recall())
	}
	tw.Flush()
	all := r.Total(func(*dlp.Detector) bool { return true })
	chk := r.Total(func(d *dlp.Detector) bool { return d.Checksum })
	fmt.Fprintf(w, "\noverall:            TP=%d FP=%d FN=%d precision=%.4f recall=%.4f\n", all.TP, all.FP, all.FN, all.Precision(), all.Recall())
	fmt.Fprintf(w, "checksum-validated: TP=%d FP=%d FN=%d precision=%.4f recall=%.4f (goal ≥0.99 / ≥0.98)\n", chk.TP, chk.FP, chk.FN, chk.Precision(), chk.Recall())
	for _, cat := range dlp.Categories {
		c := r.Total(func(d *dlp.Detector) bool { return d.Category == cat })
		fmt.Fprintf(w, "  %-12s precision=%.4f recall=%.4f (TP=%d FP=%d FN=%d)\n", cat, c.Precision(), c.Recall(), c.TP, c.FP, c.FN)
	}
}
