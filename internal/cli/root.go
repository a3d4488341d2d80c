// Package cli is the portcullis command tree: the server command that runs a
// node and the admin commands that talk to a node's REST API.
//
// Each command group lives in its own file and adds itself with register, so
// cmd/portcullis stays a few lines.
package cli

import (
	"fmt"
	"os"

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
