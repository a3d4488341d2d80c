package dlpqa

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

// gitleaksVersion is the gitleaks release the comparison installs.
const gitleaksVersion = "v8.30.1"

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestGitleaksComparison installs gitleaks with `go install` into a
// temporary GOBIN, runs it and the DLP scanner over the same secrets corpus
// in the same run, and reports CPU time, throughput, their ratio and the
// recall of each on the labeled credentials. Run with -v for the figures.
func TestGitleaksComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("installs gitleaks with go install; skipped in -short")
	}
	gobin := t.TempDir()
	install := exec.Command("go", "install", "github.com/zricethezav/gitleaks/v8@"+gitleaksVersion)
	install.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install gitleaks: %v\n%s", err, out)
	}
	gl := filepath.Join(gobin, "gitleaks")

	// The secrets corpus: every document holding a credential, as text.
	var docs []Doc
	for seed := uint64(10); len(docs) < 6000; seed++ {
		docs = append(docs, Generate(seed, 8).Secrets()...)
	}
	var blob bytes.Buffer
	type lab struct {
		Label
		value string
	}
	var labels []lab
	for _, d := range docs {
		base := blob.Len()
		blob.Write(d.Text)
		blob.WriteByte('\n')
		for _, l := range d.Labels {
			if det, _ := dlp.Lookup(l.Detector); det.Category == dlp.Secrets {
				labels = append(labels, lab{Label{l.Detector, base + l.Start, base + l.End}, string(d.Text[l.Start:l.End])})
			}
		}
	}
	dir := t.TempDir()
	corpus := filepath.Join(dir, "secrets.txt")
	if err := os.WriteFile(corpus, blob.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	size := float64(blob.Len())

	// gitleaks, with its default recursive decoding (depth 5) and without
	type glRun struct {
		name      string
		cpu, wall time.Duration
		findings  []struct{ RuleID, Secret, Match string }
	}
	var runs []glRun
	for _, depth := range []string{"5", "0"} {
		report := filepath.Join(dir, "report-"+depth+".json")
		cmd := exec.Command(gl, "dir", corpus, "--no-banner", "--report-format", "json", "--report-path", report,
			"--exit-code", "0", "--max-target-megabytes", "1000", "--log-level", "error", "--max-decode-depth", depth)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gitleaks: %v\n%s", err, out)
		}
		run := glRun{name: "--max-decode-depth " + depth, wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
		raw, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &run.findings); err != nil {
			t.Fatalf("gitleaks report: %v", err)
		}
		runs = append(runs, run)
	}

	// the DLP scanner, all detectors on, same bytes, same run
	sc, err := dlp.New(dlp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var fs []dlp.Finding
	const rounds = 5
	c0, w0 := processCPU(), time.Now()
	for range rounds {
		fs = sc.Scan(blob.Bytes())
	}
	ourCPU := (processCPU() - c0) / rounds
	ourWall := time.Since(w0) / rounds

	// recall on the labeled credentials
	ours := 0
	for _, l := range labels {
		for _, f := range fs {
			if f.Start < l.End && l.Start < f.End && dlp.Category(f.Category) == dlp.Secrets {
				ours++
				break
			}
		}
	}
	glRecall := func(run glRun) int {
		secrets := make([]string, 0, 2*len(run.findings))
		for _, g := range run.findings {
			secrets = append(secrets, g.Secret, g.Match)
		}
		all := strings.Join(secrets, "\x00")
		n := 0
		for _, l := range labels {
			if strings.Contains(all, l.value) || containsAny(secrets, l.value) {
				n++
			}
		}
		return n
	}
	mbs := func(d time.Duration) float64 { return size / d.Seconds() / 1e6 }
	types := map[string]bool{}
	for _, l := range labels {
		types[l.Detector] = true
	}
	t.Logf("secrets corpus: %.1f MB, %d labeled credentials of %d detector types", size/1e6, len(labels), len(types))
	t.Logf("portcullis dlp: cpu %v (%.1f MB/s per core), wall %v, recall %.4f (%d findings, all %d detectors on)",
		ourCPU.Round(time.Millisecond), mbs(ourCPU), ourWall.Round(time.Millisecond), float64(ours)/float64(len(labels)), len(fs), len(dlp.All()))
	for _, run := range runs {
		theirs := glRecall(run)
		t.Logf("gitleaks %s %s: cpu %v (%.2f MB/s), wall %v, recall %.4f (%d findings); cpu ratio gitleaks/portcullis %.1fx",
			gitleaksVersion, run.name, run.cpu.Round(time.Millisecond), mbs(run.cpu), run.wall.Round(time.Millisecond),
			float64(theirs)/float64(len(labels)), len(run.findings), run.cpu.Seconds()/ourCPU.Seconds())
	}
	if ours < len(labels)*98/100 {
		t.Errorf("recall on credentials %d/%d below 0.98", ours, len(labels))
	}
}

func containsAny(hay []string, v string) bool {
	for _, h := range hay {
		if h != "" && (strings.Contains(v, h) && len(h) >= len(v)/2) {
			return true
		}
	}
	return false
}
