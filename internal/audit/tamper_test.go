package audit

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTamperIsDetected: each way of editing a trail after the fact is
// reported, naming the file and, where it is about one record, its number.
func TestTamperIsDetected(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	pub := signer.Public().(*ecdsa.PublicKey)
	base := t.TempDir()
	writeTrail(t, base, signer, 400)
	segs, err := listSegments(base)
	if err != nil || len(segs) < 4 {
		t.Fatalf("want at least 4 segments, have %d (%v)", len(segs), err)
	}
	lastNo := segs[len(segs)-1].No

	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		// want: a problem whose text contains every string
		want []string
	}{
		{"flip a byte inside a record", func(t *testing.T, dir string) {
			p := segPath(dir, 2)
			raw := rawSegment(t, p)
			fr := frames(t, raw)[9]
			raw[fr[0]+40] ^= 0x01
			writeRaw(t, p, raw)
		}, []string{"segment-00000002.log.zst", "record 10", "changed"}},
		{"flip a byte of the compressed file", func(t *testing.T, dir string) {
			p := segPath(dir, 3)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o600)
		}, []string{"segment-00000003.log.zst", "record"}},
		{"delete a record", func(t *testing.T, dir string) {
			p := segPath(dir, 2)
			raw := rawSegment(t, p)
			fr := frames(t, raw)[4]
			writeRaw(t, p, append(raw[:fr[0]:fr[0]], raw[fr[1]:]...))
		}, []string{"segment-00000002.log.zst", "record 5", "removed, reordered or inserted"}},
		{"swap two records", func(t *testing.T, dir string) {
			p := segPath(dir, 2)
			raw := rawSegment(t, p)
			fr := frames(t, raw)
			a, b := raw[fr[6][0]:fr[6][1]], raw[fr[7][0]:fr[7][1]]
			out := slices.Concat(raw[:fr[6][0]], b, a, raw[fr[7][1]:])
			writeRaw(t, p, out)
		}, []string{"segment-00000002.log.zst", "record 7", "removed, reordered or inserted"}},
		{"remove a segment", func(t *testing.T, dir string) {
			os.Remove(segPath(dir, 2))
		}, []string{"segment-00000002.log", "missing"}},
		{"remove the first segment", func(t *testing.T, dir string) {
			os.Remove(segPath(dir, 1))
		}, []string{"segment-00000001.log", "missing"}},
		{"remove the newest segment", func(t *testing.T, dir string) {
			os.Remove(segPath(dir, lastNo))
		}, []string{segmentName(lastNo), "missing", "vouches"}},
		{"truncate the tail inside a record", func(t *testing.T, dir string) {
			p := segPath(dir, lastNo)
			raw := rawSegment(t, p)
			fr := frames(t, raw)
			writeRaw(t, p, raw[:fr[len(fr)-1][0]+10])
		}, []string{segmentName(lastNo), "truncated"}},
		{"truncate the tail at a record boundary", func(t *testing.T, dir string) {
			p := segPath(dir, lastNo)
			raw := rawSegment(t, p)
			fr := frames(t, raw)
			writeRaw(t, p, raw[:fr[len(fr)-3][0]])
		}, []string{segmentName(lastNo), "cut off"}},
		{"rewrite a record and its chain, re-signed with another key", func(t *testing.T, dir string) {
			forger := hsmSigner(t, "audit-forger")
			p := segPath(dir, 2)
			raw := rawSegment(t, p)
			fr := frames(t, raw)
			sr, err := newSegmentReader(strings.NewReader(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			out := append([]byte(nil), raw[:fr[0][0]]...)
			head := sr.prev
			for i, f := range fr {
				payload := raw[f[0]+4 : f[1]-hashSize]
				if i == 3 {
					var r Record
					json.Unmarshal(payload, &r)
					r.Decision = "allow" // hide a denial
					payload, _ = json.Marshal(&r)
				}
				out, head = appendFrame(out, payload, head)
			}
			writeRaw(t, p, out)
			// Replace segment 2's checkpoints with ones the forger signs.
			id, _ := KeyID(forger.Public().(*ecdsa.PublicKey))
			cf := filepath.Join(dir, ckptFile)
			data, _ := os.ReadFile(cf)
			cps, _, _ := parseCheckpoints(data)
			var lines []string
			for _, c := range cps {
				if c.Segment == 2 && c.Final {
					c.Head = hex.EncodeToString(head[:])
					if err := c.sign(forger, id); err != nil {
						t.Fatal(err)
					}
				}
				if c.Segment == 2 && !c.Final {
					continue
				}
				js, _ := json.Marshal(&c.Checkpoint)
				lines = append(lines, string(js))
			}
			os.WriteFile(cf, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		}, []string{ckptFile, "segment 2", "not the trail's public key"}},
		{"remove the checkpoints", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, ckptFile))
		}, []string{ckptFile, "removed"}},
		{"renumber segments", func(t *testing.T, dir string) {
			a, b := segPath(dir, 2), segPath(dir, 3)
			os.Rename(a, a+".x")
			os.Rename(b, a)
			os.Rename(a+".x", b)
		}, []string{"segment-00000002.log.zst", "renamed or swapped"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, base)
			if r, err := Verify(dir, pub); err != nil || !r.OK() {
				t.Fatalf("the untouched copy does not verify: %v %v", err, r.Problems)
			}
			c.tamper(t, dir)
			r, err := Verify(dir, pub)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() {
				t.Fatal("verify passed a tampered trail")
			}
			var texts []string
			for _, p := range r.Problems {
				s := p.String()
				texts = append(texts, s)
				ok := true
				for _, w := range c.want {
					ok = ok && strings.Contains(s, w)
				}
				if ok {
					t.Logf("reported: %s", s)
					return
				}
			}
			t.Fatalf("no problem mentions all of %q; verify reported:\n%s", c.want, strings.Join(texts, "\n"))
		})
	}
}

// TestEveryByteMatters: changing any one byte of a segment, compressed or
// not, fails verification.
func TestEveryByteMatters(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	pub := signer.Public().(*ecdsa.PublicKey)
	base := t.TempDir()
	writeTrail(t, base, signer, 120)
	// A second copy keeps segment 1 uncompressed, as a crash leaves it.
	rawDir := copyDir(t, base)
	zst := segPath(rawDir, 1)
	writeRaw(t, strings.TrimSuffix(zst, ".zst"), rawSegment(t, zst))
	os.Remove(zst)
	if r, _ := Verify(rawDir, pub); !r.OK() {
		t.Fatalf("an uncompressed closed segment does not verify: %v", r.Problems)
	}
	for _, dir := range []string{base, rawDir} {
		p := segPath(dir, 1)
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		step := max(1, len(orig)/400)
		for i := 0; i < len(orig); i += step {
			b := slices.Clone(orig)
			b[i] ^= 0x04
			os.WriteFile(p, b, 0o600)
			if r, err := Verify(dir, pub); err != nil || r.OK() {
				t.Fatalf("%s: byte %d of %d changed, verify passed (%v)", filepath.Base(p), i, len(orig), err)
			}
		}
		os.WriteFile(p, orig, 0o600)
	}
}
