package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(newStatusCmd) }

type statusResponse struct {
	StateIndex uint64 `json:"stateIndex"`
	Raft       struct {
		NodeID       string `json:"node_id"`
		State        string `json:"state"`
		LeaderID     string `json:"leader_id"`
		Term         uint64 `json:"term"`
		LastIndex    uint64 `json:"last_index"`
		AppliedIndex uint64 `json:"applied_index"`
		Members      []struct {
			ID      string `json:"id"`
			Address string `json:"address"`
			Voter   bool   `json:"voter"`
			Leader  bool   `json:"leader"`
		} `json:"members"`
	} `json:"raft"`
}

func newStatusCmd() *cobra.Command {
	var opts clientOpts
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node's raft status and cluster members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/status", nil, &raw); err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(cmd.OutOrStdout(), raw)
			}
			var st statusResponse
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("decode status: %w", err)
			}
			w := cmd.OutOrStdout()
			r := st.Raft
			fmt.Fprintf(w, "node %s: %s, term %d, leader %s, applied %d of %d, state index %d\n\n",
				r.NodeID, r.State, r.Term, r.LeaderID, r.AppliedIndex, r.LastIndex, st.StateIndex)
			tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "MEMBER\tADDRESS\tVOTER\tLEADER")
			for _, m := range r.Members {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", m.ID, m.Address, m.Voter, m.Leader)
			}
			return tw.Flush()
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
