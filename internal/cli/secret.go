package cli

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/credential"
)

func init() { register(newSecretCmd) }

// newSecretCmd is the "secret" group: backend credentials sealed by the HSM.
// Its subcommands never print or accept a plaintext on the command line.
func newSecretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Backend credentials sealed by the HSM (values are never shown)",
	}
	cmd.AddCommand(newSecretPutCmd(), newSecretListCmd(), newSecretDeleteCmd(), newSecretRotateKeyCmd(), newSecretTrustJoinKeyCmd())
	return cmd
}

func newSecretPutCmd() *cobra.Command {
	var (
		opts        clientOpts
		from        string
		keepNewline bool
	)
	cmd := &cobra.Command{
		Use:   "put NAME --from-file PATH",
		Short: "Store a secret, sealed by the HSM (from a file, or - for stdin)",
		Long: `Stores a backend credential under NAME. The node seals it with its HSM and
replicates only the ciphertext; no command, API or UI shows it again.
The value is read from a file or stdin, never from an argument (which would
show in ps and shell history). One trailing newline is dropped unless
--keep-newline. Putting an existing NAME stores a new version; upstreams use
it from their next request.`,
		Example: "  portcullis secret put helpdesk-token --from-file ./token.txt\n  vault read -field=token kv/helpdesk | portcullis secret put helpdesk-token --from-file -",
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return errors.New("give --from-file PATH (or - for stdin)")
			}
			var (
				value []byte
				err   error
			)
			if from == "-" {
				value, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), credential.MaxSecretBytes+2))
			} else {
				value, err = os.ReadFile(from)
			}
			if err != nil {
				return fmt.Errorf("read secret: %w", err)
			}
			defer clear(value)
			if !keepNewline {
				value = trimOneNewline(value)
			}
			switch {
			case len(value) == 0:
				return errors.New("the secret is empty")
			case len(value) > credential.MaxSecretBytes:
				return fmt.Errorf("the secret exceeds %d bytes", credential.MaxSecretBytes)
			}
			c, err := opts.client()
			if err != nil {
				return err
			}
			var info credential.SecretInfo
			body := struct {
				Value []byte `json:"value"`
			}{value}
			if err := c.do(cmd.Context(), http.MethodPut, "/v1/secrets/"+url.PathEscape(args[0]), body, &info); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secret %s stored (version %d)\n", info.Name, info.Version)
			return nil
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&from, "from-file", "", "file holding the value (- reads stdin)")
	cmd.Flags().BoolVar(&keepNewline, "keep-newline", false, "keep a trailing newline as part of the value")
	return cmd
}

func newSecretListCmd() *cobra.Command {
	var (
		opts   clientOpts
		output string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored secrets: names, versions and dates, never values",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var resp struct {
				Items []credential.SecretInfo `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/secrets", nil, &resp); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(resp.Items)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tCREATED\tUPDATED")
			for _, s := range resp.Items {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Name, s.Version, s.Created.Format(time.RFC3339), s.Updated.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newSecretDeleteCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a secret (refused while an upstream uses it)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/v1/secrets/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secret %s deleted\n", args[0])
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func newSecretRotateKeyCmd() *cobra.Command {
	var opts clientOpts
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Rotate the HSM sealing key and re-encrypt every stored secret under it",
		Long: `Makes the HSM generate the next sealing key (it never leaves the HSM), re-encrypts
every stored secret under it at the same version, and replicates the new
ciphertexts. Values do not change and are never shown; older key versions stay
in the HSM so nothing in flight breaks. Refused on a cluster of more than one
node until the nodes share the new key through the join ceremony.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client()
			if err != nil {
				return err
			}
			var res credential.RotateResult
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/seal-keys/rotate", struct{}{}, &res); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "sealing key version %d is current; %d secret(s) resealed\n", res.KeyVersion, len(res.Resealed))
			if len(res.Skipped) > 0 {
				fmt.Fprintf(out, "skipped (changed meanwhile, already under the new key): %s\n", strings.Join(res.Skipped, ", "))
			}
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func trimOneNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// newSecretTrustJoinKeyCmd is step 2 of the key replication ceremony, run by
// the token's Security Officer on an existing node: it marks a joining node's
// wrapping public key CKA_TRUSTED so the existing node may wrap the cluster's
// sealing keys to it. It runs in its own process because PKCS#11 allows one
// login type per application and the server holds the user login.
func newSecretTrustJoinKeyCmd() *cobra.Command {
	var (
		cfg       hsm.Config
		dataDir   string
		soPINFile string
		pubFile   string
		expect    string
	)
	cmd := &cobra.Command{
		Use:   "trust-join-key --pub FILE --so-pin-file FILE [--data-dir DIR | --token-label LABEL]",
		Short: "As the HSM's Security Officer, trust a joining node's key-wrapping public key",
		Long: `Marks a joining node's wrapping public key (PEM or DER, "-" for stdin) as a
trusted wrapping key in this node's HSM. Only then may this node wrap the
cluster's sealing keys to the joining node's HSM. Compare the printed
fingerprint with the one the joining node shows (or pass --fingerprint).
The SO PIN is read from a file, never from a flag value.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir != "" {
				p := hsm.DevTokenPaths(dataDir)
				cfg.TokenLabel, cfg.PINFile = hsm.DevTokenLabel, p.UserPINFile
				// This process opens only that token: point SoftHSM at its
				// configuration before the module is loaded.
				if err := os.Setenv(hsm.SoftHSMConfEnv, p.Conf); err != nil {
					return fmt.Errorf("set %s: %w", hsm.SoftHSMConfEnv, err)
				}
				if soPINFile == "" {
					soPINFile = p.SOPINFile
				}
			}
			if cfg.TokenLabel == "" {
				return errors.New("give --token-label (or --data-dir for a dev-mode token)")
			}
			if soPINFile == "" {
				return errors.New("give --so-pin-file")
			}
			der, err := readPublicKey(cmd.InOrStdin(), pubFile)
			if err != nil {
				return err
			}
			fp := hsm.WrappingKeyFingerprint(der)
			if expect != "" && expect != fp {
				return fmt.Errorf("fingerprint %s does not match the expected %s: refusing", fp, expect)
			}
			so, err := hsm.ReadPINFile(soPINFile)
			if err != nil {
				return fmt.Errorf("read SO PIN: %w", err)
			}
			defer clear(so)
			if err := hsm.TrustWrappingKey(cfg, so, der); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trusted wrapping key %s on token %q\n", fp, cfg.TokenLabel)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&pubFile, "pub", "", `joining node's wrapping public key, PEM or DER ("-": stdin)`)
	f.StringVar(&soPINFile, "so-pin-file", "", "file holding the token's SO PIN (dev mode: DATA/hsm/so.pin)")
	f.StringVar(&dataDir, "data-dir", "", "use the dev-mode SoftHSM token under this data directory")
	f.StringVar(&cfg.ModulePath, "module", "", "PKCS#11 module (default: SoftHSM2)")
	f.StringVar(&cfg.TokenLabel, "token-label", "", "HSM token label")
	f.StringVar(&expect, "fingerprint", "", "refuse unless the key has this fingerprint")
	_ = cmd.MarkFlagRequired("pub")
	return cmd
}

func readPublicKey(stdin io.Reader, file string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 64<<10))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("read public key: PEM block is %q, want PUBLIC KEY", blk.Type)
		}
		return blk.Bytes, nil
	}
	return b, nil
}
