package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/xdp"
)

func init() { register(newXDPCmd) }

func newXDPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xdp",
		Short: "Inspect the NIC-level network enforcement (XDP)",
	}
	var (
		opts   clientOpts
		asJSON bool
	)
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show XDP attach state and packet counters per verdict reason",
		Long: "Show where the XDP program is attached (native or generic mode), or why it is not\n" +
			"and the rules are enforced in userspace only, and the per-reason counters: packets\n" +
			"the kernel passed or dropped (global_deny, cidr, country, pin, malformed) and the\n" +
			"userspace check's decisions.",
		Example: "  portcullis xdp stats --server https://10.0.0.5:9443 --token-file /etc/portcullis/admin-token",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var s xdp.Stats
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/xdp/stats", nil, &s); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			return printXDPStats(cmd.OutOrStdout(), s)
		},
	}
	opts.addFlags(stats)
	stats.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	cmd.AddCommand(stats)
	return cmd
}

func printXDPStats(w io.Writer, s xdp.Stats) error {
	if s.Kernel {
		var where []string
		for _, a := range s.Attachments {
			where = append(where, a.Iface+" ("+a.Mode+")")
		}
		if len(where) == 0 {
			where = []string{"loaded, not attached"}
		}
		fmt.Fprintf(w, "XDP: active on %s\n", strings.Join(where, ", "))
	} else {
		fmt.Fprintf(w, "XDP: NOT ACTIVE, rules enforced in userspace only: %s\n", s.Unavailable)
	}
	fmt.Fprintf(w, "policy: %d listeners, %d GeoIP ranges, %d updates, %d failed\n", s.Listeners, s.GeoRanges, s.Updates, s.Failed)
	if s.LastError != "" {
		fmt.Fprintf(w, "last update error: %s\n", s.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "reason\tkernel packets\tuserspace decisions\t")
	for _, r := range xdp.Reasons() {
		k := "-"
		if s.Packets != nil {
			k = fmt.Sprint(s.Packets[r.String()])
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t\n", r, k, s.Userspace[r.String()])
	}
	return tw.Flush()
}

var errNoFile = errors.New("give the database file")
