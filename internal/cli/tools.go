package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// toolRow is one tool of GET /v1/tools.
type toolRow struct {
	Tool        string `json:"tool"`
	Description string `json:"description"`
	Risk        struct {
		Score   int      `json:"score"`
		Level   string   `json:"level"`
		Reasons []string `json:"reasons"`
	} `json:"risk"`
	ExactGrantOnly bool `json:"exactGrantOnly"`
}

// getTools is `portcullis get tools`: every upstream tool the node sees,
// with its automatic risk level (and, -o wide, its score and reasons).
func getTools(cmd *cobra.Command, c *client, output string) error {
	var resp struct {
		Items       []json.RawMessage `json:"items"`
		Unavailable map[string]string `json:"unavailable"`
	}
	if err := c.do(cmd.Context(), http.MethodGet, "/v1/tools", nil, &resp); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	switch output {
	case "json":
		b, err := json.MarshalIndent(map[string]any{"items": resp.Items, "unavailable": resp.Unavailable}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "", "table", "wide":
	case "yaml":
		return fmt.Errorf("tools are not objects to apply; use -o json, table or wide")
	default:
		return fmt.Errorf("unknown output format %q (want table, wide or json)", output)
	}
	rows := make([]toolRow, 0, len(resp.Items))
	for _, raw := range resp.Items {
		var r toolRow
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("GET /v1/tools: %w", err)
		}
		rows = append(rows, r)
	}
	printTools(w, rows, output == "wide")
	names := make([]string, 0, len(resp.Unavailable))
	for n := range resp.Unavailable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(cmd.ErrOrStderr(), "upstream %s: tools unavailable: %s\n", n, resp.Unavailable[n])
	}
	return nil
}

func printTools(w io.Writer, rows []toolRow, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if wide {
		fmt.Fprintln(tw, "TOOL\tRISK\tSCORE\tGRANT\tREASONS")
	} else {
		fmt.Fprintln(tw, "TOOL\tRISK\tDESCRIPTION")
	}
	for _, r := range rows {
		if wide {
			grant := "pattern or exact"
			if r.ExactGrantOnly {
				grant = "exact only"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Tool, r.Risk.Level, r.Risk.Score, grant, strings.Join(r.Risk.Reasons, "; "))
		} else {
			d := r.Description
			if len(d) > 60 {
				d = d[:57] + "..."
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Tool, r.Risk.Level, d)
		}
	}
	tw.Flush()
}
