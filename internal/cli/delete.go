package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func init() { register(newDeleteCmd) }

func newDeleteCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:     "delete KIND NAME",
		Short:   "Delete an object (refused while other objects still reference it)",
		Example: "  portcullis delete agent support-bot",
		Args:    kindArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/v1/"+k.path+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted\n", strings.ToLower(k.kind), args[1])
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}
