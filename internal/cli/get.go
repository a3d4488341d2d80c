package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func init() { register(newGetCmd) }

func newGetCmd() *cobra.Command {
	var opts clientOpts
	var output string
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List objects of a kind, or show one",
		Long: "List the upstreams, skills, personas, agents or network policies a node knows, or show one of them.\n" +
			"`get tools` lists every upstream's tools with their automatic risk level (-o wide: score, reasons,\n" +
			"and whether a skill's \"*\" pattern reaches them: high-risk tools need a grant of their exact name).\n" +
			"-o yaml and -o json print documents that `portcullis apply` accepts back: a list is always\n" +
			"{\"items\": [...]} in JSON (even with one item or none), `get KIND NAME` prints the object itself.",
		Example: "  portcullis get personas\n  portcullis get upstream helpdesk -o yaml\n  portcullis get tools -o wide",
		Args:    kindArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if t := strings.ToLower(args[0]); t == "tools" || t == "tool" {
				if len(args) > 1 {
					return fmt.Errorf("get tools takes no NAME (it lists every upstream's tools)")
				}
				c, err := opts.client()
				if err != nil {
					return err
				}
				return getTools(cmd, c, output)
			}
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			switch output {
			case "", "table", "wide", "yaml", "json":
			default:
				return fmt.Errorf("unknown output format %q (want table, yaml or json)", output)
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			var objs []json.RawMessage
			if len(args) == 2 {
				var obj json.RawMessage
				if err := c.do(cmd.Context(), http.MethodGet, "/v1/"+k.path+"/"+url.PathEscape(args[1]), nil, &obj); err != nil {
					return err
				}
				objs = append(objs, obj)
			} else {
				var resp struct {
					Items []json.RawMessage `json:"items"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, "/v1/"+k.path, nil, &resp); err != nil {
					return err
				}
				objs = resp.Items
			}
			if len(objs) == 0 && (output == "table" || output == "") {
				fmt.Fprintf(cmd.ErrOrStderr(), "no %s\n", k.path)
				return nil
			}
			return printObjects(cmd.OutOrStdout(), k, objs, output, len(args) == 2)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, yaml or json")
	return cmd
}
