// Package cli is the portcullis command tree: the server command that runs a
// node and the admin commands that talk to a node's REST API.
//
// Each command group lives in its own file and adds itself with register, so
// cmd/portcullis stays a few lines.
package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the top-level subcommands.
var commands []func() *cobra.Command

// register adds a top-level subcommand constructor. Call it from init.
func register(f func() *cobra.Command) { commands = append(commands, f) }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "portcullis",
		Short:         "Portcullis: a security appliance that governs what AI agents do with their tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range commands {
		root.AddCommand(f())
	}
	return root
}

// argsBetween is cobra.RangeArgs that also refuses empty arguments: an
// empty NAME would otherwise address the whole collection (`get persona ""`
// listed every persona as if it were one).
func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(cmd, args); err != nil {
			return err
		}
		for i, a := range args {
			if strings.TrimSpace(a) == "" {
				return fmt.Errorf("argument %d of %q is empty", i+1, cmd.CommandPath())
			}
		}
		return nil
	}
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "portcullis:", err)
		return 1
	}
	return 0
}
