package audit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// An export bundle is a tar file (optionally zstd-compressed) holding the
// segments that cover a time range, with their indexes, the whole
// checkpoints.log and retention.log, audit-pub.pem, and manifest.json
// naming the range and the segments. VerifyBundle checks it offline: the
// segments chain from the signed final checkpoint of the segment before the
// range, and every segment the manifest lists is there.
const manifestFile = "manifest.json"

// Manifest describes an export bundle.
type Manifest struct {
	V        int       `json:"v"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
	Segments []uint64  `json:"segments"`
	FirstSeq uint64    `json:"firstSeq"`
	LastSeq  uint64    `json:"lastSeq"`
	Created  time.Time `json:"created"`
	Node     string    `json:"node,omitempty"`
}

// ExportOptions select what Export writes.
type ExportOptions struct {
	Since, Until time.Time // zero: unbounded
	Zstd         bool      // compress the tar with zstd
}

// Export writes the bundle of dir's segments that overlap [Since, Until)
// to w, and returns its manifest. A segment whose time range is unknown (no
// index: the open one) is included.
func Export(dir string, opts ExportOptions, w io.Writer) (*Manifest, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, ckptFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	cps, _, _ := parseCheckpoints(data)
	bySeg := map[uint64][]checkpointLine{}
	for _, c := range cps {
		bySeg[c.Segment] = append(bySeg[c.Segment], c)
	}
	var to Bound
	if !opts.Until.IsZero() {
		to = Bound{Time: opts.Until.Add(-1)}
	}
	sel := selectSegments(segs, bySeg, Bound{Time: opts.Since}, to)
	if len(sel) == 0 {
		return nil, errors.New("audit export: no segment covers that time range")
	}
	m := &Manifest{V: 1, Since: opts.Since, Until: opts.Until, Created: time.Now().UTC()}
	for _, s := range sel {
		m.Segments = append(m.Segments, s.No)
		sr, c, err := openSegment(s)
		if err != nil {
			return nil, fmt.Errorf("audit export: %s: %w", s.Name(), err)
		}
		if m.FirstSeq == 0 {
			m.FirstSeq, m.Node = sr.hdr.First, sr.hdr.Node
		}
		c.Close()
		if g := rangeOf(s, bySeg[s.No]); g.lastSeq > 0 {
			m.LastSeq = g.lastSeq
		} else {
			m.LastSeq = 0 // unknown (the open segment): verify to the end
		}
	}
	var zw *zstd.Encoder
	out := w
	if opts.Zstd {
		if zw, err = zstd.NewWriter(w, zstd.WithEncoderCRC(true)); err != nil {
			return nil, fmt.Errorf("audit export: %w", err)
		}
		out = zw
	}
	tw := tar.NewWriter(out)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	err = add(manifestFile, append(mj, '\n'))
	for _, f := range []string{pubKeyFile, ckptFile, retentionFile} {
		if err != nil {
			break
		}
		b, rerr := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(rerr, os.ErrNotExist) {
			continue
		}
		if rerr != nil {
			err = rerr
			break
		}
		err = add(f, b)
	}
	for _, s := range sel {
		if err != nil {
			break
		}
		var b []byte
		if b, err = os.ReadFile(s.Path); err != nil {
			break
		}
		err = add(s.Name(), b)
		if ib, ierr := os.ReadFile(indexPath(s.Path)); ierr == nil && err == nil {
			err = add(filepath.Base(indexPath(s.Path)), ib)
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	return m, nil
}

// Limits of the bundle reader.
const (
	maxBundleFile  = 4 << 30
	maxBundleTotal = 64 << 30
	maxBundleFiles = 100_000
)

// bundleName reports whether name may be a file of a bundle.
func bundleName(name string) bool {
	switch name {
	case manifestFile, pubKeyFile, ckptFile, retentionFile:
		return true
	}
	if _, _, ok := parseSegmentName(name); ok {
		return true
	}
	if stem, ok := strings.CutSuffix(name, idxSuffix); ok {
		_, _, ok := parseSegmentName(stem + segSuffix)
		return ok
	}
	return false
}

// ReadBundle unpacks a bundle (tar, or zstd-compressed tar) into dir,
// which must exist and be empty, and returns its manifest. It accepts only
// the files a bundle holds, flat (no paths, links or devices), each once,
// within size limits.
func ReadBundle(r io.Reader, dir string) (*Manifest, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if head, _ := br.Peek(4); bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, fmt.Errorf("audit bundle: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	seen := map[string]bool{}
	var total int64
	var m *Manifest
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audit bundle: not a readable tar: %w", err)
		}
		switch {
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("audit bundle: %q is not a regular file", h.Name)
		case !bundleName(h.Name) || filepath.Base(h.Name) != h.Name:
			return nil, fmt.Errorf("audit bundle: unexpected file %q", h.Name)
		case seen[h.Name]:
			return nil, fmt.Errorf("audit bundle: %q appears twice", h.Name)
		case h.Size < 0 || h.Size > maxBundleFile || total+h.Size > maxBundleTotal || len(seen) >= maxBundleFiles:
			return nil, fmt.Errorf("audit bundle: %q: too large", h.Name)
		}
		seen[h.Name] = true
		total += h.Size
		if h.Name == manifestFile {
			b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err != nil {
				return nil, fmt.Errorf("audit bundle: %w", err)
			}
			m = &Manifest{}
			if err := json.Unmarshal(b, m); err != nil || m.V != 1 {
				return nil, fmt.Errorf("audit bundle: %s is not a version 1 manifest", manifestFile)
			}
			if err := os.WriteFile(filepath.Join(dir, h.Name), b, 0o600); err != nil {
				return nil, fmt.Errorf("audit bundle: %w", err)
			}
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit bundle: %w", err)
		}
		_, err = io.Copy(f, io.LimitReader(tr, h.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("audit bundle: %s: %w", h.Name, err)
		}
	}
	if m == nil {
		return nil, fmt.Errorf("audit bundle: no %s", manifestFile)
	}
	return m, nil
}

// VerifyBundle unpacks a bundle into a temporary directory and verifies it
// (VerifyWith over the manifest's range); every segment the manifest lists
// must be present.
func VerifyBundle(file string, keys ...*ecdsa.PublicKey) (*Report, *Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("audit bundle: %w", err)
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "audit-bundle-")
	if err != nil {
		return nil, nil, fmt.Errorf("audit bundle: %w", err)
	}
	defer os.RemoveAll(dir)
	m, err := ReadBundle(f, dir)
	if err != nil {
		return nil, nil, err
	}
	opts := VerifyOptions{Keys: keys, From: Bound{Seq: m.FirstSeq}, To: Bound{Seq: m.LastSeq}}
	if m.FirstSeq == 0 {
		opts.From = Bound{Seq: 1}
	}
	r, err := VerifyWith(dir, opts)
	if err != nil {
		return nil, nil, err
	}
	segs, _ := listSegments(dir)
	present := map[uint64]bool{}
	for _, s := range segs {
		present[s.No] = true
	}
	for _, no := range m.Segments {
		if !present[no] {
			r.problem(segmentName(no), 0, 0, "missing from the bundle: %s lists it", manifestFile)
		}
	}
	return r, m, nil
}
