package dlp

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestStreamMatchesWholeScan feeds a long body in random chunk sizes and
// checks the stream reports exactly what a scan of the whole body reports.
func TestStreamMatchesWholeScan(t *testing.T) {
	s := mustScanner(t, Config{})
	r := rand.New(rand.NewPCG(3, 4))
	var body bytes.Buffer
	all := All()
	for body.Len() < 600<<10 {
		d := all[r.IntN(len(all))]
		txt, _, _ := d.Sample(r)
		body.WriteString("event: data\ndata: {\"msg\": \"lorem ipsum dolor sit amet 12 34 ")
		body.WriteString(txt)
		body.WriteString(" consectetur\"}\n\n")
	}
	doc := body.Bytes()
	want := s.Scan(doc)
	for _, maxChunk := range []int{1 << 16, 4096, 977, 3} {
		if maxChunk == 3 && testing.Short() {
			continue
		}
		var got []Finding
		st := s.NewStream(func(f Finding) { got = append(got, f) })
		for p := 0; p < len(doc); {
			n := min(len(doc)-p, 1+r.IntN(maxChunk))
			if _, err := st.Write(doc[p : p+n]); err != nil {
				t.Fatal(err)
			}
			p += n
			if cap(st.buf) > 4*streamWindow {
				t.Fatalf("stream buffer grew to %d bytes", cap(st.buf))
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("chunks ≤%d: %d findings, whole scan %d", maxChunk, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if !slices.Equal([]int{got[i].Start, got[i].End}, []int{want[i].Start, want[i].End}) || got[i].Detector != want[i].Detector {
				t.Errorf("chunks ≤%d: finding %d = %s [%d,%d), want %s [%d,%d)", maxChunk, i, got[i].Detector, got[i].Start, got[i].End, want[i].Detector, want[i].Start, want[i].End)
				break
			}
		}
		if _, err := st.Write([]byte("x")); err == nil {
			t.Error("write after close accepted")
		}
	}
}
