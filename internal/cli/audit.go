package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/audit"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and search a node's audit trail (offline, from its directory)",
		Long: "The audit trail is the node's hash-chained, HSM-checkpointed record of every gateway\n" +
			"decision, under DATA_DIR/audit (server --audit-dir). These commands read the directory\n" +
			"itself: run them on a stopped node, or on a copy.",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditSearchCmd(), newAuditExportCmd(), newAuditAnchorsCmd())
	return cmd
}

// auditDirFlags are the two ways to name the trail's directory.
type auditDirFlags struct{ auditDir, dataDir string }

func (f *auditDirFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.auditDir, "audit-dir", "", "the audit trail's directory (server --audit-dir)")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "a node's data directory: its trail is DATA_DIR/audit")
}

func (f *auditDirFlags) dir() (string, error) {
	switch {
	case f.auditDir != "":
		return f.auditDir, nil
	case f.dataDir != "":
		return filepath.Join(f.dataDir, "audit"), nil
	}
	return "", errors.New("--audit-dir (or --data-dir) is required")
}

func newAuditVerifyCmd() *cobra.Command {
	var dirs auditDirFlags
	var anchors anchorFlags
	var pubFile, output, from, to, bundle string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that the audit trail is intact: exit 0 if so, non-zero naming each damaged place",
		Long: "Walks every segment and checkpoint: detects a changed byte, a removed, reordered or\n" +
			"inserted record, a removed segment, a cut tail, and checkpoints not signed by the\n" +
			"trail's key, naming the segment file and record number. --pub is the public key to\n" +
			"verify checkpoints with (PEM; default the trail's own audit-pub.pem: pass a copy kept\n" +
			"elsewhere to rule out a replaced key). Segments deleted by retention (--audit-retain-age,\n" +
			"--audit-retain-bytes) are accepted through their signed marker in retention.log.\n" +
			"--from and --to verify only the segments overlapping a range (a seq, seq:N, an RFC 3339\n" +
			"time or a duration before now), chained to the signed checkpoint before it. --bundle\n" +
			"verifies an export bundle (portcullis audit export) offline.",
		Example: "  portcullis audit verify --audit-dir /var/lib/portcullis/audit --pub audit-pub.pem\n" +
			"  portcullis audit verify --audit-dir ./audit --from 24h\n" +
			"  portcullis audit verify --bundle audit-2026-12.tar.zst --pub audit-pub.pem",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts audit.VerifyOptions
			var err error
			now := time.Now()
			if opts.From, err = audit.ParseBound(from, now); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if opts.To, err = audit.ParseBound(to, now); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if pubFile != "" {
				if opts.Keys, err = audit.ReadPublicKeys(pubFile); err != nil {
					return fmt.Errorf("--pub: %w", err)
				}
			}
			var dir string
			var r *audit.Report
			switch {
			case bundle != "":
				if !opts.From.IsZero() || !opts.To.IsZero() {
					return errors.New("--bundle verifies the bundle's own range: --from and --to do not apply")
				}
				dir = bundle
				if r, _, err = audit.VerifyBundle(bundle, opts.Keys...); err != nil {
					return err
				}
			case anchors.file != "":
				if !opts.From.IsZero() || !opts.To.IsZero() {
					return errors.New("--anchors verifies the whole trail: --from and --to do not apply")
				}
				if dir, err = dirs.dir(); err != nil {
					return errors.New("--audit-dir or --data-dir is required")
				}
				if r, err = anchors.verify(dir, opts.Keys); err != nil {
					return err
				}
			default:
				if dir, err = dirs.dir(); err != nil {
					return errors.New("--audit-dir, --data-dir or --bundle is required")
				}
				if r, err = audit.VerifyWith(dir, opts); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				type problem struct {
					File    string `json:"file,omitempty"`
					Record  int    `json:"record,omitempty"`
					Seq     uint64 `json:"seq,omitempty"`
					Message string `json:"message"`
				}
				out := struct {
					OK          bool      `json:"ok"`
					Segments    int       `json:"segments"`
					Records     uint64    `json:"records"`
					Bytes       int64     `json:"bytes"`
					Checkpoints int       `json:"checkpoints"`
					Signed      int       `json:"signed"`
					Problems    []problem `json:"problems"`
					Notes       []string  `json:"notes"`
				}{r.OK(), r.Segments, r.Records, r.Bytes, r.Checkpoints, r.Signed, []problem{}, r.Notes}
				for _, p := range r.Problems {
					out.Problems = append(out.Problems, problem{p.File, p.Record, p.Seq, p.Msg})
				}
				if out.Notes == nil {
					out.Notes = []string{}
				}
				b, _ := json.MarshalIndent(out, "", "  ")
				fmt.Fprintln(w, string(b))
			} else {
				for _, p := range r.Problems {
					fmt.Fprintln(w, "DAMAGED", p.String())
				}
				for _, n := range r.Notes {
					fmt.Fprintln(w, "note:", n)
				}
				state := "intact"
				if !r.OK() {
					state = "NOT intact"
				}
				fmt.Fprintf(w, "%s: %s: %d segments, %d records, %d checkpoints (%d signature-verified)\n",
					dir, state, r.Segments, r.Records, r.Checkpoints, r.Signed)
			}
			if !r.OK() {
				return fmt.Errorf("audit trail %s is not intact: %d problems, the first: %s", dir, len(r.Problems), r.Problems[0])
			}
			return nil
		},
	}
	dirs.add(cmd)
	anchors.add(cmd)
	cmd.Flags().StringVar(&pubFile, "pub", "", "PEM public key(s) the checkpoints must be signed with (default: the trail's audit-pub.pem)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&from, "from", "", "verify from this seq (N or seq:N), RFC 3339 time or duration before now")
	cmd.Flags().StringVar(&to, "to", "", "verify up to this seq, RFC 3339 time or duration before now")
	cmd.Flags().StringVar(&bundle, "bundle", "", "verify an export bundle (tar or tar.zst) instead of a directory")
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var dirs auditDirFlags
	var since, until, output string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the segments covering a time range as a bundle that verifies offline",
		Long: "Writes a tar (zstd-compressed when the name ends in .zst) with the segments that cover\n" +
			"[--since, --until), their indexes, checkpoints.log, retention.log, audit-pub.pem and a\n" +
			"manifest. An auditor checks it with portcullis audit verify --bundle FILE (and --pub with\n" +
			"a copy of the key kept elsewhere).",
		Example: "  portcullis audit export --audit-dir ./.data/audit --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z -o day.tar.zst",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := dirs.dir()
			if err != nil {
				return err
			}
			if output == "" {
				return errors.New("-o FILE is required (bundle.tar or bundle.tar.zst)")
			}
			now := time.Now()
			var opts audit.ExportOptions
			if opts.Since, err = parseWhen(since, now); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if opts.Until, err = parseWhen(until, now); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			opts.Zstd = strings.HasSuffix(output, ".zst")
			f, err := os.OpenFile(output, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			m, err := audit.Export(dir, opts, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(output)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d segments, seq %d..%d\n", output, len(m.Segments), m.FirstSeq, m.LastSeq)
			return nil
		},
	}
	dirs.add(cmd)
	cmd.Flags().StringVar(&since, "since", "", "records at or after this time (RFC 3339, or a duration before now)")
	cmd.Flags().StringVar(&until, "until", "", "records before this time (RFC 3339, or a duration before now)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "the bundle file to write (.tar or .tar.zst)")
	return cmd
}

func newAuditSearchCmd() *cobra.Command {
	var dirs auditDirFlags
	var opts clientOpts
	var f audit.Filter
	var since, until, output string
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Print the audit records that match, newest last",
		Long: "Finds the records matching every given filter, through each closed segment's index\n" +
			"(the open segment is scanned). --since and --until take RFC 3339 times or a duration\n" +
			"before now (1h, 30m). --kind admin selects the admin-action records. -o json prints one\n" +
			"JSON object per record and line. Without --audit-dir or --data-dir it asks a running\n" +
			"node's admin API (--server) for its own trail, page by page.",
		Example: "  portcullis audit search --audit-dir ./.data/audit --agent triage-bot --decision deny --since 1h -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if f.Since, err = parseWhen(since, now); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if f.Until, err = parseWhen(until, now); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if f.Limit < 0 {
				return errors.New("--limit must not be negative")
			}
			if output != "json" && output != "table" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			if f.Kind != "" && f.Kind != audit.KindRequest && f.Kind != audit.KindAdmin {
				return fmt.Errorf("--kind %q: want request or admin", f.Kind)
			}
			var recs []audit.Record
			if dir, err := dirs.dir(); err == nil {
				if recs, err = audit.Search(dir, f); err != nil {
					return err
				}
			} else if recs, err = searchNode(cmd, &opts, f); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(w)
				for i := range recs {
					if err := enc.Encode(&recs[i]); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tAGENT\tPERSONA\tTOOL\tDECISION\tREASON")
			for _, r := range recs {
				if r.Admin != nil {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format(time.RFC3339Nano), r.Admin.Identity, "(admin)", r.Admin.Action, r.Admin.Result, r.Admin.Path)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format(time.RFC3339Nano), r.Agent, r.Persona, r.Tool, r.Decision, r.Reason)
			}
			return tw.Flush()
		},
	}
	dirs.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.Agent, "agent", "", "only this agent's records")
	fl.StringVar(&f.User, "user", "", "only records of calls made for this user")
	fl.StringVar(&f.Kind, "kind", "", "only this kind of record: request or admin")
	fl.StringVar(&f.Persona, "persona", "", "only this persona's records")
	fl.StringVar(&f.Tool, "tool", "", "only calls of this tool (its exposed name)")
	fl.StringVar(&f.Decision, "decision", "", "only this decision: allow, deny or error")
	fl.StringVar(&since, "since", "", "records at or after this time (RFC 3339, or a duration before now)")
	fl.StringVar(&until, "until", "", "records before this time (RFC 3339, or a duration before now)")
	fl.IntVar(&f.Limit, "limit", 0, "print only the newest N matches (0: all)")
	fl.StringVarP(&output, "output", "o", "table", "output format: table or json (one object per line)")
	opts.addFlags(cmd)
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration before now ("" is zero).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration (1h, 30m)", s)
	}
	return now.Add(-d), nil
}

// searchNode asks a running node's admin API for its trail's records:
// the newest --limit, or every match page by page (cursor).
func searchNode(cmd *cobra.Command, opts *clientOpts, f audit.Filter) ([]audit.Record, error) {
	c, err := opts.client()
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"agent": f.Agent, "user": f.User, "kind": f.Kind, "persona": f.Persona, "tool": f.Tool, "decision": f.Decision} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
		var resp struct {
			Records []audit.Record `json:"records"`
		}
		if err := c.do(cmd.Context(), http.MethodGet, "/v1/audit/records?"+q.Encode(), nil, &resp); err != nil {
			return nil, err
		}
		return resp.Records, nil
	}
	var out []audit.Record
	for cursor := "0"; cursor != ""; {
		q.Set("cursor", cursor)
		var resp struct {
			Records []audit.Record `json:"records"`
			Next    string         `json:"next"`
		}
		if err := c.do(cmd.Context(), http.MethodGet, "/v1/audit/records?"+q.Encode(), nil, &resp); err != nil {
			return nil, err
		}
		out = append(out, resp.Records...)
		cursor = resp.Next
	}
	return out, nil
}
