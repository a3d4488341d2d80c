package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

func init() { register(newDLPCmd) }

// dlpScanMax is the largest input scan reads whole (--mode auto/json);
// larger input is refused rather than truncated.
var dlpScanMax int64 = 1 << 30

func newDLPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlp",
		Short: "Inspect the data-loss-prevention detectors and scan data offline",
	}
	cmd.AddCommand(newDLPDetectorsCmd(), newDLPScanCmd())
	return cmd
}

func checkFormat(f string) error {
	if f != "json" && f != "table" {
		return fmt.Errorf("unknown --format %q (want json or table)", f)
	}
	return nil
}

func newDLPDetectorsCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "detectors",
		Short: "List every built-in detector (id, category, compliance tags)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			all := dlp.All()
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCATEGORY\tTAGS\tDESCRIPTION")
			for _, d := range all {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", d.ID, d.Category, d.Tags, d.Description)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: json or table")
	return cmd
}

func newDLPScanCmd() *cobra.Command {
	var (
		format, mode string
		categories   []string
		minConf      float64
	)
	cmd := &cobra.Command{
		Use:   "scan [FILE]",
		Short: "Scan a file (or standard input) and print one line per finding",
		Long: "Scan reads FILE (or standard input) and prints the findings. With --format json it\n" +
			"prints one JSON object per line: detector, category, start, end (byte offsets in the\n" +
			"input), confidence, and path (for JSON input; for JSON Lines the path starts with the\n" +
			"line number, \"3:$.user.email\"). --mode auto scans valid JSON as JSON, JSON Lines\n" +
			"line by line as JSON, and anything else as text; --mode text streams input of any\n" +
			"size with bounded memory.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if mode != "auto" && mode != "json" && mode != "jsonl" && mode != "text" {
				return fmt.Errorf("unknown --mode %q (want auto, json, jsonl or text)", mode)
			}
			var in io.Reader = cmd.InOrStdin()
			if len(args) == 1 {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("dlp scan: %w", err)
				}
				defer f.Close()
				in = f
			}
			cfg := dlp.Config{MinConfidence: minConf}
			for _, c := range categories {
				cfg.Categories = append(cfg.Categories, dlp.Category(c))
			}
			sc, err := dlp.New(cfg)
			if err != nil {
				return err
			}
			var fs []dlp.Finding
			if mode == "text" {
				// any size, bounded memory
				st := sc.NewStream(func(f dlp.Finding) { fs = append(fs, f) })
				if _, err := io.Copy(st, in); err != nil {
					return fmt.Errorf("dlp scan: read: %w", err)
				}
				if err := st.Close(); err != nil {
					return err
				}
			} else {
				data, err := io.ReadAll(io.LimitReader(in, dlpScanMax+1))
				if err != nil {
					return fmt.Errorf("dlp scan: read: %w", err)
				}
				if int64(len(data)) > dlpScanMax {
					// never scan a silently truncated input
					return fmt.Errorf("dlp scan: input larger than %d bytes; use --mode text to stream it", dlpScanMax)
				}
				if fs, err = scanWhole(sc, mode, data); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				for _, f := range fs {
					if err := enc.Encode(f); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DETECTOR\tCATEGORY\tSTART\tEND\tCONFIDENCE\tPATH")
			for _, f := range fs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\t%s\n", f.Detector, f.Category, f.Start, f.End, f.Confidence, f.Path)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: json (one object per line) or table")
	cmd.Flags().StringVar(&mode, "mode", "auto", "input kind: auto, json, jsonl (JSON Lines) or text")
	cmd.Flags().StringSliceVar(&categories, "category", nil, "only these categories (pci, banking, national-id, phi, secrets, pii, crypto)")
	cmd.Flags().Float64Var(&minConf, "min-confidence", 0, "drop findings below this confidence (default 0.5)")
	return cmd
}

// scanWhole scans a whole input in mode auto, json or jsonl. Auto tries
// JSON, then JSON Lines (each line as JSON: NDJSON logs and exports would
// otherwise fail as JSON and be scanned as text without keys or paths),
// then text.
func scanWhole(sc *dlp.Scanner, mode string, data []byte) ([]dlp.Finding, error) {
	switch mode {
	case "json":
		return sc.ScanJSON(data)
	case "jsonl":
		return sc.ScanJSONLines(data)
	}
	if fs, err := sc.ScanJSON(data); err == nil {
		return fs, nil
	}
	if dlp.LooksJSONLines(data) {
		if fs, err := sc.ScanJSONLines(data); err == nil {
			return fs, nil
		}
	}
	return sc.Scan(data), nil
}
