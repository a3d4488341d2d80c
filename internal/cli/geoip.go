package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

func init() { register(newGeoIPCmd) }

func newGeoIPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "geoip",
		Short: "Manage the GeoIP database used for geofencing",
	}
	var opts clientOpts
	var format string
	var dryRun bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a GeoIP database cluster-wide (MaxMind MMDB, DB-IP CSV or IP2Location CSV)",
		Long: `Import a GeoIP country database and replicate it to every node.

Formats: MaxMind-format MMDB (GeoLite2/GeoIP2 Country, DB-IP MMDB), DB-IP's
CSV (start,end,country) and IP2Location's CSV (decimal ip_from,ip_to,country).
The format is detected unless --format is given. The file is checked locally
first, so a broken file is reported without contacting the cluster.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errNoFile
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := geoip.ParseFormat(format)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if f == geoip.FormatAuto {
				if f, err = geoip.DetectFormat(data); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			t, err := geoip.Parse(data, f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			if dryRun {
				blob, err := t.MarshalBinary()
				if err != nil {
					return err
				}
				printImport(out, args[0], geoip.Summarize(t, f, blob))
				return nil
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			var res geoip.ImportResult
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/geoip?format="+url.QueryEscape(string(f)), data, &res); err != nil {
				return err
			}
			printImport(out, args[0], res)
			return nil
		},
	}
	opts.addFlags(imp)
	imp.Flags().StringVar(&format, "format", "", "mmdb, dbip-csv or ip2location-csv (default: detect)")
	imp.Flags().BoolVar(&dryRun, "dry-run", false, "parse and summarize locally, import nothing")
	cmd.AddCommand(imp)
	return cmd
}

func printImport(w interface{ Write([]byte) (int, error) }, file string, r geoip.ImportResult) {
	fmt.Fprintf(w, "%s: %s, %d ranges (%d prefixes), %d countries, %d bytes serialized\n",
		file, r.Format, r.Ranges, r.Prefixes, r.Countries, r.Bytes)
	type kv struct {
		cc string
		n  int
	}
	var top []kv
	for c, n := range r.TopByRange {
		top = append(top, kv{c, n})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n || (top[i].n == top[j].n && top[i].cc < top[j].cc) })
	for i, e := range top {
		if i == 5 {
			break
		}
		fmt.Fprintf(w, "  %s  %d ranges\n", e.cc, e.n)
	}
}
