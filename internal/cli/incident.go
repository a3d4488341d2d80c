package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/incident"
)

func init() { register(newIncidentCmd) }

func newIncidentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "incident", Short: "Incident reports from the audit trail"}
	cmd.AddCommand(newIncidentReportCmd())
	return cmd
}

func newIncidentReportCmd() *cobra.Command {
	var opts clientOpts
	var agent, since, until, output, format string
	cmd := &cobra.Command{
		Use:   "report --agent AGENT [--since T] [--until T] -o FILE",
		Short: "Write an agent's incident report (PDF, HTML or JSON)",
		Long: "Builds the incident report of one agent over a time window from the node's audit trail: a\n" +
			"root-cause summary, a timeline, the sequence of its calls grouped into runs (with the rule,\n" +
			"limit or refusal that fired), the data DLP found (detectors and counts, never values), what\n" +
			"the gateway did and the policy in force. -o report.pdf prints it with headless Chromium\n" +
			"(apt-get install chromium, or PORTCULLIS_CHROMIUM=PATH); .html writes the page, .json the\n" +
			"data; -o - writes JSON to stdout. --since and --until take RFC 3339 times or a duration\n" +
			"before now (default: the last 24 hours).",
		Example: "  portcullis incident report --agent triage-bot --since 2h -o report.pdf",
		Args:    argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agent == "" {
				return fmt.Errorf("--agent is required")
			}
			now := time.Now().UTC()
			from, err := parseWhen(since, now)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if since == "" {
				from = now.Add(-24 * time.Hour)
			}
			to, err := parseWhen(until, now)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if until == "" {
				to = now
			}
			if format == "" {
				switch ext := strings.ToLower(filepath.Ext(output)); {
				case output == "-" || ext == ".json":
					format = "json"
				case ext == ".html" || ext == ".htm":
					format = "html"
				case ext == ".pdf":
					format = "pdf"
				default:
					return fmt.Errorf("-o %q: name a .pdf, .html or .json file (or -o - for JSON), or pass --format", output)
				}
			}
			var chrome string
			if format == "pdf" {
				if chrome, err = incident.Chromium(); err != nil {
					return err // before asking the node: say what is missing first
				}
			} else if format != "json" && format != "html" {
				return fmt.Errorf("--format %q: want pdf, html or json", format)
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			q := url.Values{"agent": {agent}, "since": {from.Format(time.RFC3339Nano)}, "until": {to.Format(time.RFC3339Nano)}}
			var rep incident.Report
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/incidents/report?"+q.Encode(), nil, &rep); err != nil {
				return err
			}
			var out []byte
			switch format {
			case "json":
				out, err = rep.JSON()
				out = append(out, '\n')
			case "html":
				out, err = rep.HTML()
			case "pdf":
				var page []byte
				if page, err = rep.HTML(); err == nil {
					out, err = incident.PrintPDF(cmd.Context(), chrome, page)
				}
			}
			if err != nil {
				return err
			}
			if output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			if err := os.WriteFile(output, out, 0o644); err != nil {
				return fmt.Errorf("write the report: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d calls of %s from %s to %s\n", output, rep.Totals.Calls, agent, from.Format(time.RFC3339), to.Format(time.RFC3339))
			return nil
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&agent, "agent", "", "the agent the report is about")
	f.StringVar(&since, "since", "", "start of the window (RFC 3339, or a duration before now; default 24h)")
	f.StringVar(&until, "until", "", "end of the window (default now)")
	f.StringVarP(&output, "output", "o", "report.pdf", "file to write: .pdf, .html or .json; - for JSON on stdout")
	f.StringVar(&format, "format", "", "pdf, html or json (default: from -o's extension)")
	return cmd
}
