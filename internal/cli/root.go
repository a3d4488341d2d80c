// Package cli is the portcullis command tree: the admin commands that talk to
// a node's REST API, and the local HSM commands.
//
// Each command group lives in its own file and adds itself with register, so
// cmd/portcullis stays a few lines. The command that runs a node (`portcullis
// server`) belongs to the wiring package, appliance, which this package must
// not import: cmd/portcullis passes it to Main.
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

// newRoot builds the command tree: the registered commands and extra, the
// constructors of commands defined elsewhere (the server command).
func newRoot(extra ...func() *cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "portcullis",
		Short:         "Portcullis: a security appliance that governs what AI agents do with their tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range append(commands[:len(commands):len(commands)], extra...) {
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

// Main runs the command line and returns the process exit code. extra adds
// top-level commands built elsewhere (cmd/portcullis passes
// appliance.Command, so that this package never imports the wiring).
func Main(args []string, extra ...func() *cobra.Command) int {
	root := newRoot(extra...)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "portcullis:", err)
		return 1
	}
	return 0
}
