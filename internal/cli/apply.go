package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func init() { register(newApplyCmd) }

// applyFile and applyRequest mirror the admin API's POST /v1/apply body.
type applyFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

type applyRequest struct {
	Files  []applyFile `json:"files"`
	DryRun bool        `json:"dryRun,omitempty"`
}

type applyResult struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
}

func newApplyCmd() *cobra.Command {
	var opts clientOpts
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE...]",
		Short: "Create or update objects from YAML documents",
		Long: "Apply upstreams, skills, personas and agents declared in YAML (several documents per\n" +
			"file, separated by ---). All files of one apply are validated together and applied as\n" +
			"one change: if any document is invalid, nothing is applied and every problem is listed\n" +
			"with its file, document number and field.",
		Example: "  portcullis apply -f helpdesk.yaml\n  cat *.yaml | portcullis apply -f -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("no input: pass -f FILE (or -f - for stdin)")
			}
			req := applyRequest{DryRun: dryRun}
			for _, f := range files {
				read, err := readInputs(cmd.InOrStdin(), f)
				if err != nil {
					return err
				}
				req.Files = append(req.Files, read...)
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			var resp struct {
				Results []applyResult `json:"results"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/apply", req, &resp); err != nil {
				return err
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			for _, r := range resp.Results {
				fmt.Fprintf(cmd.OutOrStdout(), "%s/%s %s%s\n", strings.ToLower(r.Kind), r.Name, r.Action, suffix)
			}
			return nil
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "YAML file or directory to apply (repeatable; - reads stdin)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show what would change, apply nothing")
	return cmd
}

// readInputs reads one -f argument: "-" is stdin, a directory contributes
// its *.yaml, *.yml and *.json files (sorted, not recursive).
func readInputs(stdin io.Reader, f string) ([]applyFile, error) {
	if f == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return []applyFile{{Name: "<stdin>", Content: string(b)}}, nil
	}
	fi, err := os.Stat(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f, err)
	}
	paths := []string{f}
	if fi.IsDir() {
		entries, err := os.ReadDir(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		paths = paths[:0]
		for _, e := range entries {
			switch filepath.Ext(e.Name()) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					paths = append(paths, filepath.Join(f, e.Name()))
				}
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("%s holds no .yaml, .yml or .json files", f)
		}
	}
	var out []applyFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		out = append(out, applyFile{Name: p, Content: string(b)})
	}
	return out, nil
}
