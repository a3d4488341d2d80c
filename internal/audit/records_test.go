package audit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

func problems(r *Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// Retention deletes the oldest segments, leaves a signed marker, and the
// trail still verifies; removing a middle or the newest segment, or an old
// one the marker does not cover, is still detected, and so is a forged
// marker.
func TestRetentionKeepsTheChainVerifiable(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	dir := t.TempDir()
	writeTrail(t, dir, signer, 600)
	segs, _ := listSegments(dir)
	if len(segs) < 6 {
		t.Fatalf("%d segments, want at least 6", len(segs))
	}
	var total int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		total += fi.Size()
	}
	l := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer, RetainBytes: total * 2 / 3})
	if err := l.retainOnce(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	left, _ := listSegments(dir)
	if left[0].No == 1 || len(left) >= len(segs) {
		t.Fatalf("retention deleted nothing: %d segments, first %s", len(left), left[0].Name())
	}
	r, err := Verify(dir)
	if err != nil || !r.OK() {
		t.Fatalf("after retention: %v\n%s", err, problems(r))
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "retention deleted") {
		t.Fatalf("notes do not say what retention deleted: %v", r.Notes)
	}
	recs, err := Search(dir, Filter{})
	if err != nil || len(recs) == 0 || recs[0].Seq == 1 {
		t.Fatalf("search after retention: %d records, %v", len(recs), err)
	}

	cases := map[string]func(d string) (uint64, string){
		"middle": func(d string) (uint64, string) {
			s, _ := listSegments(d)
			no := s[len(s)/2].No
			os.Remove(s[len(s)/2].Path)
			return no, "missing"
		},
		"newest": func(d string) (uint64, string) {
			s, _ := listSegments(d)
			os.Remove(s[len(s)-1].Path)
			return s[len(s)-1].No, "missing"
		},
		"oldest remaining": func(d string) (uint64, string) {
			s, _ := listSegments(d)
			os.Remove(s[0].Path)
			return s[0].No, "retention deleted only up to"
		},
		"forged marker": func(d string) (uint64, string) {
			s, _ := listSegments(d)
			os.Remove(s[0].Path)
			b, _ := os.ReadFile(filepath.Join(d, retentionFile))
			b = bytes.Replace(b, []byte(fmt.Sprintf(`"through":%d`, s[0].No-1)), []byte(fmt.Sprintf(`"through":%d`, s[0].No)), 1)
			os.WriteFile(filepath.Join(d, retentionFile), b, 0o600)
			return 0, "vouches for no deletion"
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			d := copyDir(t, dir)
			no, want := damage(d)
			r, err := Verify(d)
			if err != nil {
				t.Fatal(err)
			}
			got := problems(r)
			if r.OK() || !strings.Contains(got, want) || (no > 0 && !strings.Contains(got, segmentName(no)) && !strings.Contains(got, fmt.Sprintf("%08d", no))) {
				t.Fatalf("want %q naming segment %d, got:\n%s", want, no, got)
			}
		})
	}
}

func TestRetentionByAge(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	dir := t.TempDir()
	writeTrail(t, dir, signer, 300) // records are stamped t0 + i s
	l := newLog(t, Config{Dir: dir, Node: "n1", Signer: signer, RetainAge: time.Minute})
	// "now" is 3 minutes after the first record: segments whose newest
	// record is older than 2 minutes go.
	if err := l.retainOnce(t0.Add(3 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	recs, err := Search(dir, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Time.After(t0.Add(2*time.Minute)) || recs[0].Seq == 1 {
		t.Fatalf("oldest kept %v (seq %d)", recs[0].Time, recs[0].Seq)
	}
	// Everything whose segment ended more than a minute before "now" is
	// gone, nothing newer.
	if recs[len(recs)-1].Seq != 300 {
		t.Fatalf("newest record lost: seq %d", recs[len(recs)-1].Seq)
	}
	if r, err := Verify(dir); err != nil || !r.OK() {
		t.Fatalf("verify: %v\n%s", err, problems(r))
	}
}

// A range verify reads only the segments in the range and checks the first
// against the segment before's signed final checkpoint.
func TestVerifyRange(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	dir := t.TempDir()
	writeTrail(t, dir, signer, 600)
	segs, _ := listSegments(dir)
	full, _ := Verify(dir)
	r, err := VerifyWith(dir, VerifyOptions{From: Bound{Seq: 200}, To: Bound{Seq: 400}})
	if err != nil || !r.OK() {
		t.Fatalf("range: %v\n%s", err, problems(r))
	}
	if r.Segments == 0 || r.Segments >= full.Segments || r.Records < 201 {
		t.Fatalf("range verified %d segments, %d records (full: %d)", r.Segments, r.Records, full.Segments)
	}
	// Segments outside the range may be missing; a changed byte inside is
	// found.
	os.Remove(segs[0].Path)
	os.Remove(segs[len(segs)-1].Path)
	if r, _ := VerifyWith(dir, VerifyOptions{From: Bound{Seq: 200}, To: Bound{Seq: 400}}); !r.OK() {
		t.Fatalf("range with outside segments gone:\n%s", problems(r))
	}
	mid := segs[len(segs)/2]
	raw := rawSegment(t, mid.Path)
	fr := frames(t, raw)
	raw[fr[1][0]+10] ^= 1
	writeRaw(t, mid.Path, raw)
	r, _ = VerifyWith(dir, VerifyOptions{From: Bound{Seq: 1}, To: Bound{Seq: 600}})
	if r.OK() || !strings.Contains(problems(r), mid.Name()) {
		t.Fatalf("changed byte in range not named:\n%s", problems(r))
	}
}

// The index returns exactly what a linear scan does, for random filters
// over a random trail (request and admin records, several agents, users,
// tools, decisions, times).
func TestIndexMatchesScan(t *testing.T) {
	dir := t.TempDir()
	l := newLog(t, Config{Dir: dir, Node: "n1", SegmentBytes: 32 << 10, BufferBytes: 8 << 10})
	rng := rand.New(rand.NewPCG(1, 2))
	agents := []string{"a1", "a2", "a3", "a-rare"}
	for i := range 3000 {
		if rng.IntN(20) == 0 {
			if err := l.WriteAdmin(AdminEvent{Time: t0.Add(time.Duration(i) * time.Second), Admin: Admin{Identity: "admin@n1", Action: "POST /v1/apply", Status: 200, Result: "ok"}}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		d := decision(i)
		d.Agent = agents[rng.IntN(3)]
		if rng.IntN(200) == 0 {
			d.Agent = "a-rare"
		}
		d.User = []string{"", "alice", "bob"}[rng.IntN(3)]
		d.Decision = []string{gateway.Allow, gateway.Deny, gateway.Fail}[rng.IntN(3)]
		d.Time = t0.Add(time.Duration(i) * time.Second)
		if err := l.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	indexed := 0
	for _, s := range segs {
		if readIndex(s) != nil {
			indexed++
		}
	}
	if indexed != len(segs) || len(segs) < 5 {
		t.Fatalf("%d of %d segments indexed", indexed, len(segs))
	}
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	for i := range 120 {
		f := Filter{Agent: pick("", "", "a1", "a2", "a-rare", "nobody"), User: pick("", "", "alice"), Tool: pick("", "helpdesk_get_ticket"),
			Decision: pick("", "allow", "deny", "error"), Kind: pick("", "", KindRequest, KindAdmin), Persona: pick("", "support-triage")}
		if rng.IntN(2) == 0 {
			f.Since = t0.Add(time.Duration(rng.IntN(3000)) * time.Second)
		}
		if rng.IntN(2) == 0 {
			f.Until = t0.Add(time.Duration(rng.IntN(3000)) * time.Second)
		}
		if rng.IntN(3) == 0 {
			f.Limit = 1 + rng.IntN(50)
		}
		want, err := search(dir, f, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := search(dir, f, true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("filter %d %+v: index gave %d records, scan %d", i, f, len(got), len(want))
		}
		// Paging through returns the same records in order.
		var paged []Record
		var cur uint64
		for {
			page, next, err := Page(dir, f, cur, 1+rng.IntN(40))
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if next == 0 {
				break
			}
			cur = next
		}
		f.Limit = 0
		all, _ := search(dir, f, false)
		if len(paged) != len(all) || (len(all) > 0 && (paged[0].Seq != all[0].Seq || paged[len(paged)-1].Seq != all[len(all)-1].Seq)) {
			t.Fatalf("filter %+v: paging gave %d records, scan %d", f, len(paged), len(all))
		}
	}
}

// A segment compressed before indexes existed (one zstd frame) is indexed
// at the next start and searched through its index.
func TestOldSegmentsGetIndexed(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, nil, 200)
	segs, _ := listSegments(dir)
	for _, s := range segs {
		writeRaw(t, s.Path, rawSegment(t, s.Path)) // one frame, as before
		os.Remove(indexPath(s.Path))
	}
	want, _ := search(dir, Filter{Agent: "agent-1"}, false)
	l := newLog(t, Config{Dir: dir, Node: "n1"})
	l.indexMissing()
	l.Close()
	for _, s := range segs {
		if readIndex(s) == nil {
			t.Fatalf("%s not indexed", s.Name())
		}
	}
	got, err := Search(dir, Filter{Agent: "agent-1"})
	if err != nil || !reflect.DeepEqual(got, want) || len(got) == 0 {
		t.Fatalf("search via rebuilt index: %d records (want %d), %v", len(got), len(want), err)
	}
	if r, _ := Verify(dir); !r.OK() {
		t.Fatalf("verify:\n%s", problems(r))
	}
}

// Admin records are in the same chain, found by kind, and carry digests.
func TestAdminRecords(t *testing.T) {
	dir := t.TempDir()
	l := newLog(t, Config{Dir: dir, Node: "n1"})
	l.Write(decision(1))
	ev := AdminEvent{Time: t0, Admin: Admin{Identity: "admin@n1", TokenID: "0a1b2c3d", Role: "admin", Action: "PUT /v1/secrets/:name", Path: "/v1/secrets/db",
		Status: 200, Result: "ok", Objects: []ObjectChange{{Kind: "Secret", Name: "db", After: strings.Repeat("ab", 32)}}}}
	if err := l.WriteAdmin(ev); err != nil {
		t.Fatal(err)
	}
	l.Close()
	recs, err := Search(dir, Filter{Kind: KindAdmin})
	if err != nil || len(recs) != 1 || recs[0].Admin == nil || recs[0].Admin.Objects[0].Name != "db" || recs[0].Seq != 2 {
		t.Fatalf("admin search: %+v %v", recs, err)
	}
	if reqs, _ := Search(dir, Filter{Kind: KindRequest}); len(reqs) != 1 || reqs[0].Kind != KindRequest {
		t.Fatalf("request search: %+v", reqs)
	}
	if r, _ := Verify(dir); !r.OK() {
		t.Fatalf("verify:\n%s", problems(r))
	}
}

func TestParseBound(t *testing.T) {
	now := t0
	for in, want := range map[string]Bound{
		"":                     {},
		"42":                   {Seq: 42},
		"seq:7":                {Seq: 7},
		"2026-12-04T09:00:00Z": {Time: t0.Add(-time.Hour)},
		"1h":                   {Time: t0.Add(-time.Hour)},
	} {
		got, err := ParseBound(in, now)
		if err != nil || !got.Time.Equal(want.Time) || got.Seq != want.Seq {
			t.Errorf("ParseBound(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "seq:", "seq:x", "yesterday", "-", "99999999999999999999999"} {
		if _, err := ParseBound(bad, now); err == nil {
			t.Errorf("ParseBound(%q) accepted", bad)
		}
	}
}

// A damaged posting list makes search read the segment's records rather
// than miss a match.
func TestDamagedIndexListStillFindsRecords(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, nil, 300)
	want, _ := search(dir, Filter{Tool: "helpdesk_search_tickets"}, false)
	segs, _ := listSegments(dir)
	ip := indexPath(segs[0].Path)
	b, _ := os.ReadFile(ip)
	for i := len(b) - 40; i < len(b); i++ {
		b[i] = 0xff // the last list (tool helpdesk_search_tickets): varints that never end
	}
	os.WriteFile(ip, b, 0o600)
	got, err := Search(dir, Filter{Tool: "helpdesk_search_tickets"})
	if err != nil || !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Fatalf("with a damaged list: %d records, want %d (%v)", len(got), len(want), err)
	}
}
