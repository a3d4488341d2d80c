package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs the command tree in process with stdin and returns what it
// printed (stdout and stderr together).
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}
