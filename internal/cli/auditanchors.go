package cli

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/audit"
)

// anchorFlags are verify's check against the chain heads raft anchored.
type anchorFlags struct{ file, node string }

func (f *anchorFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.file, "anchors", "", "also check the trail against the chain heads raft anchored: a file `portcullis audit anchors` wrote, or DATA_DIR/audit/replicas/"+audit.AnchorsFile+" of another node (detects deleted newest segments and checkpoints)")
	cmd.Flags().StringVar(&f.node, "node", "", "with --anchors: the node whose trail this is (default: the node its segments name)")
}

// verify runs audit.Verify, or audit.VerifyAnchored with --anchors.
func (f *anchorFlags) verify(dir string, keys []*ecdsa.PublicKey) (*audit.Report, error) {
	if f.file == "" {
		return audit.Verify(dir, keys...)
	}
	a, err := audit.ReadAnchors(f.file)
	if err != nil {
		return nil, fmt.Errorf("--anchors: %w", err)
	}
	return audit.VerifyAnchored(dir, a.Anchors, f.node, keys...)
}

func newAuditAnchorsCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "anchors",
		Short: "Print the chain heads raft anchored for every node's trail (JSON), for audit verify --anchors",
		Long: "Every node's audit records are replicated through raft, and raft keeps the latest chain\n" +
			"head of every node's trail (segment, record, seq, chain hash, newest signed checkpoint).\n" +
			"Keep the output beside an exported trail: `audit verify --anchors FILE` then detects\n" +
			"what the trail alone cannot show (its newest segments deleted with their checkpoints).",
		Example: "  portcullis audit anchors --server https://node2:9443 --token-file admin-token > anchors.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var a audit.Anchors
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/audit/anchors", nil, &a); err != nil {
				return err
			}
			b, _ := json.MarshalIndent(&a, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}
