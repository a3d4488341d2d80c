package incident

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

//go:embed report.html.tmpl
var reportTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"dur": func(a, b time.Time) string {
		d := b.Sub(a)
		if d <= 0 {
			return ""
		}
		return d.Round(time.Millisecond).String()
	},
	"pct": func(n, of int) string {
		if of == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
	},
}).Parse(reportTemplate))

// JSON renders the report as indented JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// HTML renders the report as one self-contained page (inline CSS, no
// scripts, nothing fetched), fit for a browser and for printing.
func (r *Report) HTML() ([]byte, error) {
	var b bytes.Buffer
	if err := page.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("incident: render html: %w", err)
	}
	return b.Bytes(), nil
}

// Chromium finds a headless-capable Chromium: $PORTCULLIS_CHROMIUM, then
// chromium, chromium-browser, google-chrome on PATH.
func Chromium() (string, error) {
	if p := os.Getenv("PORTCULLIS_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("incident: no Chromium to print the PDF with (apt-get install chromium, or set PORTCULLIS_CHROMIUM); -o report.html needs none")
}

// PrintPDF prints the HTML page to PDF with headless Chromium (chrome,
// the path Chromium returns), in a temporary profile, within ctx.
func PrintPDF(ctx context.Context, chrome string, html []byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "portcullis-report-")
	if err != nil {
		return nil, fmt.Errorf("incident: pdf: %w", err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(in, html, 0o600); err != nil {
		return nil, fmt.Errorf("incident: pdf: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--no-pdf-header-footer", "--print-to-pdf="+out, "file://"+in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("incident: pdf: %s: %w: %s", filepath.Base(chrome), err, tailOf(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		return nil, fmt.Errorf("incident: pdf: %s wrote no PDF: %v %s", filepath.Base(chrome), err, tailOf(stderr.String()))
	}
	return b, nil
}

func tailOf(s string) string {
	if len(s) > 400 {
		return s[len(s)-400:]
	}
	return s
}
