// Command portcullis runs a Portcullis appliance node and administers it.
package main

import (
	"os"

	"github.com/portcullis-gw/portcullis/appliance"
	"github.com/portcullis-gw/portcullis/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], appliance.Command)) }
