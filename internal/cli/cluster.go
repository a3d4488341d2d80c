package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(newClusterCmd) }

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Build and inspect a cluster: join tokens, status, members, leadership",
		Long: `A cluster is 3 or 5 nodes that replicate every object with raft. Start the
first node, create a join token on it, and start each further node with
--join ADMIN_URL --join-token-file FILE (and a fixed --raft-addr). Any node then
accepts admin writes and serves agents from its own replicated state.`,
	}
	tokens := &cobra.Command{Use: "join-token", Short: "Create tokens that admit new nodes"}
	tokens.AddCommand(newJoinTokenCreateCmd())
	cmd.AddCommand(tokens, newClusterStatusCmd(), newClusterRemoveCmd(), newClusterTransferCmd())
	cmd.AddCommand(newVIPConfigCmd()) // vip.go
	return cmd
}

func newJoinTokenCreateCmd() *cobra.Command {
	var opts clientOpts
	var ttl string
	cmd := &cobra.Command{
		Use:   "create [--ttl 1h]",
		Short: "Create a single-use join token and print it",
		Long: `Prints one token on stdout. It admits one node, once, until it expires; keep it
secret (a file readable only by the installer), and pass it to the new node
with --join-token-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var out struct {
				Token   string `json:"token"`
				Expires string `json:"expires"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/cluster/join-tokens", map[string]string{"ttl": ttl}, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "single use, expires %s\n", out.Expires)
			return nil
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&ttl, "ttl", "1h", "how long the token is valid (1m to 168h)")
	return cmd
}

type clusterStatus struct {
	Leader  string `json:"leader"`
	Term    uint64 `json:"term"`
	Members []struct {
		ID            string `json:"id"`
		RaftAddr      string `json:"raftAddr"`
		State         string `json:"state"`
		Voter         bool   `json:"voter"`
		Healthy       bool   `json:"healthy"`
		LastIndex     uint64 `json:"lastIndex"`
		AppliedIndex  uint64 `json:"appliedIndex"`
		Lag           uint64 `json:"lag"`
		LastContactMS int64  `json:"lastContactMs"`
		Error         string `json:"error"`
	} `json:"members"`
	Self            string  `json:"self"`
	StaleSeconds    float64 `json:"staleSeconds"`
	MaxStaleSeconds float64 `json:"maxStaleSeconds"`
	Serving         bool    `json:"serving"`
}

func newClusterStatusCmd() *cobra.Command {
	var opts clientOpts
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the members, the leader, and each member's health and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/cluster", nil, &raw); err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(cmd.OutOrStdout(), raw)
			}
			var st clusterStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("decode cluster status: %w", err)
			}
			w := cmd.OutOrStdout()
			leader := st.Leader
			if leader == "" {
				leader = "none"
			}
			serving := "serving agents"
			if !st.Serving {
				serving = "NOT serving agents"
			}
			fmt.Fprintf(w, "leader %s, term %d; asked node %s: state %.1fs old (max %.0fs), %s\n\n", leader, st.Term, st.Self, st.StaleSeconds, st.MaxStaleSeconds, serving)
			tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "MEMBER\tRAFT ADDRESS\tSTATE\tVOTER\tHEALTHY\tLAST INDEX\tAPPLIED\tLAG")
			for _, m := range st.Members {
				state := m.State
				if m.Error != "" {
					state += " (" + m.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%d\t%d\t%d\n", m.ID, m.RaftAddr, state, m.Voter, m.Healthy, m.LastIndex, m.AppliedIndex, m.Lag)
			}
			return tw.Flush()
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newClusterRemoveCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "remove NODE",
		Short: "Remove a member (a dead node being replaced, or one taken out of service)",
		Long: `Removes the member from the cluster: the leader takes it out of raft, and its
certificate and CA stop being trusted by every node. To bring the same
machine back, wipe its data dir and join it again with a new token.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/v1/cluster/members/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func newClusterTransferCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "transfer-leader [NODE]",
		Short: "Hand raft leadership to NODE (or to any other voter), e.g. before restarting the leader",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var out struct {
				Leader string `json:"leader"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/cluster/leader", map[string]string{"to": strings.Join(args, "")}, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leadership transferred; leader now %s\n", out.Leader)
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}
