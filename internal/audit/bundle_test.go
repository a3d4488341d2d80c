package audit

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An exported time range verifies offline from the bundle alone (the
// public key inside, or one passed), tar or tar.zst; a bundle with a
// segment dropped or a byte changed does not.
func TestExportBundleVerifies(t *testing.T) {
	signer := hsmSigner(t, "audit-checkpoints")
	dir := t.TempDir()
	writeTrail(t, dir, signer, 600) // t0 .. t0+599s
	since, until := t0.Add(150*time.Second), t0.Add(420*time.Second)
	for _, z := range []bool{false, true} {
		var buf bytes.Buffer
		m, err := Export(dir, ExportOptions{Since: since, Until: until, Zstd: z}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		segs, _ := listSegments(dir)
		if len(m.Segments) < 2 || len(m.Segments) >= len(segs) || m.FirstSeq > 151 || m.LastSeq < 420 {
			t.Fatalf("manifest %+v (trail has %d segments)", m, len(segs))
		}
		file := filepath.Join(t.TempDir(), "bundle.tar")
		os.WriteFile(file, buf.Bytes(), 0o600)
		r, _, err := VerifyBundle(file)
		if err != nil || !r.OK() || r.Signed == 0 {
			t.Fatalf("zstd=%v: %v\n%s", z, err, problems(r))
		}
		// The records of the range are all in the bundle.
		ud := t.TempDir()
		if _, err := ReadBundle(bytes.NewReader(buf.Bytes()), ud); err != nil {
			t.Fatal(err)
		}
		got, _ := Search(ud, Filter{Since: since, Until: until})
		want, _ := Search(dir, Filter{Since: since, Until: until})
		if len(got) != len(want) || len(want) != 270 {
			t.Fatalf("bundle holds %d records of the range, trail %d", len(got), len(want))
		}
	}

	var buf bytes.Buffer
	m, _ := Export(dir, ExportOptions{Since: since, Until: until}, &buf)
	mid := segmentName(m.Segments[len(m.Segments)/2])
	for name, edit := range map[string]func(name string, b []byte) ([]byte, bool){
		"segment dropped": func(name string, b []byte) ([]byte, bool) {
			return b, !strings.HasPrefix(name, strings.TrimSuffix(mid, segSuffix))
		},
		"byte changed": func(name string, b []byte) ([]byte, bool) {
			if name == mid+".zst" {
				raw := rawSegment(t, filepath.Join(dir, name))
				fr := frames(t, raw)
				raw[fr[2][0]+12] ^= 1
				var out bytes.Buffer
				p := filepath.Join(t.TempDir(), name)
				writeRaw(t, p, raw)
				f, _ := os.ReadFile(p)
				out.Write(f)
				return out.Bytes(), true
			}
			return b, true
		},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			tw := tar.NewWriter(&out)
			tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				b, _ := io.ReadAll(tr)
				b, keep := edit(h.Name, b)
				if !keep {
					continue
				}
				h.Size = int64(len(b))
				tw.WriteHeader(h)
				tw.Write(b)
			}
			tw.Close()
			file := filepath.Join(t.TempDir(), "bundle.tar")
			os.WriteFile(file, out.Bytes(), 0o600)
			r, _, err := VerifyBundle(file)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() || !strings.Contains(problems(r), mid) {
				t.Fatalf("not detected, or %s not named:\n%s", mid, problems(r))
			}
		})
	}
}

// FuzzReadBundle: any bytes as a bundle are unpacked or refused, never
// written outside the directory.
func FuzzReadBundle(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	m := []byte(`{"v":1,"segments":[1],"firstSeq":1}`)
	tw.WriteHeader(&tar.Header{Name: manifestFile, Mode: 0o600, Size: int64(len(m)), Typeflag: tar.TypeReg})
	tw.Write(m)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "b")
		os.Mkdir(dir, 0o700)
		_, _ = ReadBundle(bytes.NewReader(data), dir)
		ents, _ := os.ReadDir(parent)
		if len(ents) != 1 {
			t.Fatalf("bundle wrote outside its directory: %v", ents)
		}
		inner, _ := os.ReadDir(dir)
		for _, e := range inner {
			if !bundleName(e.Name()) {
				t.Fatalf("unexpected file %q", e.Name())
			}
		}
	})
}
