package geoip

import (
	"strings"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// dagMMDB turns a valid database into a hostile one: the first 128 nodes of
// its search tree form a chain whose node i has both records pointing to
// node i+1, the last one to a data record. The reader accepts it, and its
// network walk visits every one of the ~2^128 paths.
func dagMMDB(t *testing.T) []byte {
	t.Helper()
	data := writeMMDB(t, map[string]string{"1.2.3.4/32": "DE"}, nil)
	db, err := maxminddb.OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	nodes := uint32(db.Metadata.NodeCount)
	if db.Metadata.RecordSize != 24 || nodes < 128 {
		t.Fatalf("unexpected tree: record size %d, %d nodes", db.Metadata.RecordSize, nodes)
	}
	db.Close()
	rec := func(off int) uint32 { return uint32(data[off])<<16 | uint32(data[off+1])<<8 | uint32(data[off+2]) }
	put := func(off int, v uint32) { data[off], data[off+1], data[off+2] = byte(v>>16), byte(v>>8), byte(v) }
	var dataPtr uint32
	for off := 0; off < int(nodes)*6; off += 3 {
		if v := rec(off); v > nodes {
			dataPtr = v
			break
		}
	}
	if dataPtr == 0 {
		t.Fatal("no data record in the tree")
	}
	for i := range 128 {
		next := uint32(i + 1)
		if i == 127 {
			next = dataPtr
		}
		put(i*6, next)
		put(i*6+3, next)
	}
	return data
}

func TestHostileMMDBIsBounded(t *testing.T) {
	defer func(n int) { maxRanges = n }(maxRanges)
	maxRanges = 10_000
	data := dagMMDB(t)
	done := make(chan error, 1)
	go func() { _, err := ParseMMDB(data); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "more than 10000") {
			t.Fatalf("ParseMMDB = %v, want a bound error", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("ParseMMDB of a hostile search tree did not return (it walks ~2^128 networks)")
	}
	// The Builder is bounded too.
	var b Builder
	for i := range 10_001 {
		if err := b.AddRange(addr("10.0.0.0"), addr("10.0.0.0"), 1); err != nil {
			if i != 10_000 || !strings.Contains(err.Error(), "more than 10000 ranges") {
				t.Fatalf("AddRange #%d: %v", i, err)
			}
		}
	}
}
