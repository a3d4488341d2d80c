package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

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
			"description, using its Skill Registry and the tools its upstreams offer. The node\n" +
			"drafts it itself, deterministically: the description goes to no external service\n" +
			"(no LLM, nothing leaves the premises), but the command needs a running node (--server)\n" +
			"because the registry and the tool catalog live there. Nothing is applied: review\n" +
			"the proposal, edit it, then `portcullis apply -f` it.",
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

// printDraft prints the proposal. The server renders it as annotated YAML
// documents that apply accepts ("yaml"); -o json prints the whole proposal
// with the reason for every choice.
func printDraft(cmd *cobra.Command, raw json.RawMessage, output string) error {
	w := cmd.OutOrStdout()
	switch output {
	case "json":
		return writeIndented(w, raw)
	case "yaml":
	default:
		return fmt.Errorf("unknown output format %q (want yaml or json)", output)
	}
	var p struct {
		YAML string `json:"yaml"`
	}
	if err := json.Unmarshal(raw, &p); err == nil && p.YAML != "" {
		_, err := io.WriteString(w, p.YAML)
		return err
	}
	y, err := jsonToYAML(raw)
	if err != nil {
		return fmt.Errorf("render yaml: %w", err)
	}
	_, err = w.Write(y)
	return err
}
