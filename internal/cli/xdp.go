package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/xdp"
)

func init() { register(newXDPCmd) }

// adminFlags locate a node's admin API for the network commands.
type adminFlags struct {
	url   string
	token string
}

func (a *adminFlags) bind(cmd *cobra.Command) {
	def := os.Getenv("PORTCULLIS_ADMIN")
	if def == "" {
		def = "http://127.0.0.1:9443"
	}
	cmd.PersistentFlags().StringVar(&a.url, "admin", def, "admin API base URL (env PORTCULLIS_ADMIN)")
	cmd.PersistentFlags().StringVar(&a.token, "token", "", "admin API token (default: env PORTCULLIS_TOKEN)")
}

// do sends one request to the admin API and decodes a JSON answer into out.
// Error bodies of the form {"error": "..."} become the returned error.
func (a *adminFlags) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.url, "/")+path, body)
	if err != nil {
		return err
	}
	tok := a.token
	if tok == "" {
		tok = os.Getenv("PORTCULLIS_TOKEN")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API: %s", e.Error)
		}
		return fmt.Errorf("admin API: %s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API: unexpected answer: %w", err)
	}
	return nil
}

func newXDPCmd() *cobra.Command {
	var admin adminFlags
	cmd := &cobra.Command{
		Use:   "xdp",
		Short: "Inspect the NIC-level network enforcement (XDP)",
	}
	admin.bind(cmd)
	var asJSON bool
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show XDP attach state and packet counters per verdict reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			var s xdp.Stats
			if err := admin.do(ctx, http.MethodGet, "/api/v1/xdp/stats", "", nil, &s); err != nil {
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
