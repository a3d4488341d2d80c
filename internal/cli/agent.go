package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newAgentCmd) }

// keyInfo mirrors the admin API's key metadata; the key itself is only in
// the answer to create.
type keyInfo struct {
	ID        string     `json:"id"`
	Agent     string     `json:"agent"`
	Key       string     `json:"key,omitempty"`
	Prefix    string     `json:"prefix,omitempty"`
	PinIP     string     `json:"pinIP,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Manage agents' credentials",
	}
	key := &cobra.Command{
		Use:   "key",
		Short: "Create, list and revoke an agent's API keys",
	}
	key.AddCommand(newAgentKeyCreateCmd(), newAgentKeyListCmd(), newAgentKeyRevokeCmd())
	cmd.AddCommand(key, newAgentReleaseCmd(), newAgentQuarantinesCmd()) // behaviour.go
	return cmd
}

func keysPath(agent string) string { return "/v1/agents/" + url.PathEscape(agent) + "/keys" }

func newAgentKeyCreateCmd() *cobra.Command {
	var opts clientOpts
	var pinIP string
	var expiresIn time.Duration
	cmd := &cobra.Command{
		Use:   "create AGENT",
		Short: "Create an API key for an agent and print it (shown only this once)",
		Long: "Create an API key for AGENT. Only the key is printed on stdout, so it can be\n" +
			"captured by a script; the server keeps only a hash. Agents send it as\n" +
			"Authorization: Bearer <key>.",
		Example: "  KEY=$(portcullis agent key create support-bot)",
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("expires-in") && expiresIn <= 0 {
				return fmt.Errorf("--expires-in %s: want a positive duration such as 720h (leave it out for a key that never expires)", expiresIn)
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			body := map[string]any{}
			if pinIP != "" {
				body["pinIP"] = pinIP
			}
			if expiresIn > 0 {
				body["expiresIn"] = expiresIn.String()
			}
			var k keyInfo
			if err := c.do(cmd.Context(), http.MethodPost, keysPath(args[0]), body, &k); err != nil {
				return err
			}
			if k.Key == "" {
				return fmt.Errorf("server returned no key")
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Key)
			fmt.Fprintf(cmd.ErrOrStderr(), "created key %s for agent %s; store it now, it is not shown again\n", k.ID, args[0])
			return nil
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&pinIP, "pin-ip", "", "accept the key only from this client IP address")
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime of the key, e.g. 720h (default: no expiry)")
	return cmd
}

func newAgentKeyListCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "list AGENT",
		Short: "List an agent's API keys (metadata only)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var resp struct {
				Items []keyInfo `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, keysPath(args[0]), nil, &resp); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tPREFIX\tCREATED\tEXPIRES\tPINNED IP")
			for _, k := range resp.Items {
				exp := "never"
				if k.ExpiresAt != nil {
					exp = k.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.CreatedAt.UTC().Format(time.RFC3339), exp, k.PinIP)
			}
			return tw.Flush()
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func newAgentKeyRevokeCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "revoke AGENT KEY_ID",
		Short: "Revoke an agent's API key",
		Args:  argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, keysPath(args[0])+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s of agent %s revoked\n", args[1], args[0])
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}
