package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditExportAndVerifyBundle(t *testing.T) {
	dir := writeAuditTrail(t, 400) // one record a second, starting an hour ago
	since := time.Now().Add(-time.Hour + 100*time.Second).UTC().Format(time.RFC3339)
	until := time.Now().Add(-time.Hour + 300*time.Second).UTC().Format(time.RFC3339)
	for _, name := range []string{"b.tar", "b.tar.zst"} {
		file := filepath.Join(t.TempDir(), name)
		out, err := runCLI(t, "", "audit", "export", "--audit-dir", dir, "--since", since, "--until", until, "-o", file)
		if err != nil || !strings.Contains(out, "segments, seq ") {
			t.Fatalf("export: %v\n%s", err, out)
		}
		out, err = runCLI(t, "", "audit", "verify", "--bundle", file)
		if err != nil || !strings.Contains(out, "intact: ") {
			t.Fatalf("verify --bundle: %v\n%s", err, out)
		}
		// Truncating the bundle is detected.
		b, _ := os.ReadFile(file)
		os.WriteFile(file, b[:len(b)*2/3], 0o600)
		if _, err := runCLI(t, "", "audit", "verify", "--bundle", file); err == nil {
			t.Fatalf("a truncated %s verified", name)
		}
	}
	if _, err := runCLI(t, "", "audit", "export", "--audit-dir", dir, "-o", ""); err == nil || !strings.Contains(err.Error(), "-o") {
		t.Fatalf("export without -o: %v", err)
	}
	out, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir, "--from", "100", "--to", "seq:200")
	if err != nil || !strings.Contains(out, "intact: ") || strings.Contains(out, " 400 records") {
		t.Fatalf("verify --from --to: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "audit", "verify", "--audit-dir", dir, "--from", "yesterday"); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Fatalf("bad --from: %v", err)
	}
	if _, err := runCLI(t, "", "audit", "search", "--audit-dir", dir, "--kind", "robot"); err == nil || !strings.Contains(err.Error(), "--kind") {
		t.Fatalf("bad --kind: %v", err)
	}
}
