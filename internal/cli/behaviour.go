package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newApprovalsCmd) }

// approvalInfo mirrors state.Approval.
type approvalInfo struct {
	ID        string    `json:"id"`
	Agent     string    `json:"agent"`
	Persona   string    `json:"persona"`
	Tool      string    `json:"tool"`
	Rule      string    `json:"rule"`
	Reason    string    `json:"reason"`
	Node      string    `json:"node"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	State     string    `json:"state"`
	DecidedBy string    `json:"decidedBy"`
}

func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny calls held by a sequence rule (action: hold)",
		Long: "A sequence rule with action hold parks the matching call until an admin approves\n" +
			"or denies it, from any node, or its timeout denies it.",
	}
	var opts clientOpts
	list := &cobra.Command{
		Use:   "list",
		Short: "List held calls (pending, and those decided in the last hour)",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var resp struct {
				Items []approvalInfo `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/approvals", nil, &resp); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tAGENT\tTOOL\tRULE\tEXPIRES\tREASON")
			for _, a := range resp.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Agent, a.Tool, a.Rule, a.Expires.UTC().Format(time.RFC3339), a.Reason)
			}
			return tw.Flush()
		},
	}
	opts.addFlags(list)
	cmd.AddCommand(list, newApprovalDecideCmd("approve", "Let a held call proceed"), newApprovalDecideCmd("deny", "Refuse a held call"))
	return cmd
}

func newApprovalDecideCmd(verb, short string) *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var a approvalInfo
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/approvals/"+url.PathEscape(args[0])+"/"+verb, nil, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approval %s %s (agent %s, tool %s)\n", args[0], a.State, a.Agent, a.Tool)
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func newAgentReleaseCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "release AGENT",
		Short: "Lift an agent's quarantine on every node",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/v1/quarantines/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s released\n", args[0])
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func newAgentQuarantinesCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "quarantined",
		Short: "List quarantined agents and why",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var resp struct {
				Items []struct {
					Agent  string    `json:"agent"`
					Reason string    `json:"reason"`
					Rule   string    `json:"rule"`
					Node   string    `json:"node"`
					Since  time.Time `json:"since"`
				} `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/quarantines", nil, &resp); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tSINCE\tRULE\tNODE\tREASON")
			for _, q := range resp.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", q.Agent, q.Since.UTC().Format(time.RFC3339), q.Rule, q.Node, q.Reason)
			}
			return tw.Flush()
		},
	}
	opts.addFlags(cmd)
	return cmd
}
