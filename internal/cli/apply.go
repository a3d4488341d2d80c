package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
				var b []byte
				var err error
				name := f
				if f == "-" {
					name = "<stdin>"
					b, err = io.ReadAll(cmd.InOrStdin())
				} else {
					b, err = os.ReadFile(f)
				}
				if err != nil {
					return fmt.Errorf("read %s: %w", name, err)
				}
				req.Files = append(req.Files, applyFile{Name: name, Content: string(b)})
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
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "YAML file to apply (repeatable; - reads stdin)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show what would change, apply nothing")
	return cmd
}
