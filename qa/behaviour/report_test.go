package behaviourqa

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// checkReport writes agent's incident report through the CLI, as JSON and
// (with Chromium) as PDF, and checks that a person reading it learns what
// happened: every want appears in the root-cause summary and in the PDF's
// text. With PORTCULLIS_REPORT_SAMPLES=DIR the PDF and the PNG of its
// first page are kept there (qa/behaviour/testdata holds such samples).
func checkReport(t *testing.T, n *harness.Node, agent, name string, want ...string) {
	t.Helper()
	out := n.MustCLI("incident", "report", "--agent", agent, "--since", "1h", "-o", "-")
	var rep struct {
		RootCause []string `json:"rootCause"`
		Totals    struct{ Calls int }
		Sequence  []struct{ Tool string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("incident report -o -: %v\n%.300s", err, out)
	}
	summary := strings.Join(rep.RootCause, "\n")
	for _, w := range want {
		if !strings.Contains(summary, w) {
			t.Errorf("%s report's root cause lacks %q:\n%s", name, w, summary)
		}
	}
	if rep.Totals.Calls == 0 || len(rep.Sequence) == 0 {
		t.Errorf("%s report has no calls: %+v", name, rep.Totals)
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Logf("no chromium: the PDF of the %s report is not checked", name)
		return
	}
	dir := t.TempDir()
	pdf := filepath.Join(dir, name+".pdf")
	n.MustCLI("incident", "report", "--agent", agent, "--since", "1h", "-o", pdf)
	if text, err := exec.Command("pdftotext", pdf, "-").Output(); err == nil {
		flat := strings.Join(strings.Fields(string(text)), " ")
		for _, w := range append([]string{"Root cause", "Sequence of calls"}, want...) {
			if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
				t.Errorf("the %s report's PDF text lacks %q", name, w)
			}
		}
	}
	if keep := os.Getenv("PORTCULLIS_REPORT_SAMPLES"); keep != "" {
		b, _ := os.ReadFile(pdf)
		os.WriteFile(filepath.Join(keep, name+".pdf"), b, 0o644)
		if out, err := exec.Command("pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", pdf, filepath.Join(keep, name)).CombinedOutput(); err != nil {
			t.Logf("pdftoppm: %v %s", err, out)
		}
	}
}
