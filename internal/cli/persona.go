package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"
)

func init() { register(newPersonaCmd) }

func newPersonaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "persona",
		Short: "Work with personas (roles that agents act in)",
	}
	cmd.AddCommand(newPersonaDraftCmd())
	return cmd
}

func newPersonaDraftCmd() *cobra.Command {
	var opts clientOpts
	var description, output string
	cmd := &cobra.Command{
		Use:   "draft --description TEXT",
		Short: "Propose a persona (and its skills) from a job description",
		Long: "Ask the node to draft a least-privilege persona from a plain-language job\n" +
			"description, using the tools its upstreams offer. Nothing is applied: review the\n" +
			"proposal, edit it, then `portcullis apply -f` it.",
		Example: `  portcullis persona draft --description "Answers customer tickets; may read tickets, never close them" > support.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(description) == "" {
				return errors.New("--description is required")
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			var resp json.RawMessage
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/personas/draft", map[string]string{"description": description}, &resp); err != nil {
				return err
			}
			return printDraft(cmd, resp, output)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&description, "description", "", "the job description to draft a persona from")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml (appliable documents) or json")
	return cmd
}

// printDraft prints the proposal. In YAML the proposed objects come out as
// documents that apply accepts, and the drafting notes as comments.
func printDraft(cmd *cobra.Command, raw json.RawMessage, output string) error {
	w := cmd.OutOrStdout()
	if output == "json" {
		return writeIndented(w, raw)
	}
	if output != "yaml" {
		return fmt.Errorf("unknown output format %q (want yaml or json)", output)
	}
	var p struct {
		Documents []json.RawMessage `json:"documents"`
		Notes     []string          `json:"notes"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || len(p.Documents) == 0 {
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("render yaml: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "# %s\n", strings.ReplaceAll(n, "\n", "\n# "))
	}
	for i, d := range p.Documents {
		y, err := yaml.JSONToYAML(d)
		if err != nil {
			return fmt.Errorf("render yaml: %w", err)
		}
		if i > 0 || len(p.Notes) > 0 {
			fmt.Fprintln(w, "---")
		}
		w.Write(y)
	}
	return nil
}
