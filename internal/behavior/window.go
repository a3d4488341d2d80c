package behavior

import "time"

// buckets per window: a window counts with a resolution of within/buckets.
const buckets = 16

// window counts events over a sliding time window in buckets of
// width/buckets: Count includes events up to one bucket older than the
// window (a rule may fire up to within/16 early, never late). 72 bytes.
type window struct {
	n    [buckets]uint32
	head int64 // index (time / width) of the newest bucket
}

// advance moves the window to bucket idx, clearing the buckets it passes.
func (w *window) advance(idx int64) {
	if idx <= w.head {
		return
	}
	if idx-w.head >= buckets {
		w.n = [buckets]uint32{}
	} else {
		for i := w.head + 1; i <= idx; i++ {
			w.n[i%buckets] = 0
		}
	}
	w.head = idx
}

func (w *window) add(now time.Time, width time.Duration) {
	idx := now.UnixNano() / int64(width/buckets)
	w.advance(idx)
	if idx < w.head-buckets+1 {
		return // older than the window
	}
	if c := &w.n[idx%buckets]; *c < ^uint32(0) {
		*c++
	}
}

func (w *window) count(now time.Time, width time.Duration) int {
	w.advance(now.UnixNano() / int64(width/buckets))
	total := 0
	for _, c := range w.n {
		total += int(c)
	}
	return total
}
