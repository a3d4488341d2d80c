package cli

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/spf13/cobra"
)

func init() { register(newSecretCmd) }

// newSecretCmd is the "secret" group: backend credentials sealed by the HSM.
// Its subcommands never print or accept a plaintext on the command line.
func newSecretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Backend credentials sealed by the HSM (values are never shown)",
	}
	cmd.AddCommand(newSecretTrustJoinKeyCmd())
	return cmd
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
				cfg.TokenLabel, cfg.SoftHSMConf, cfg.PINFile = hsm.DevTokenLabel, p.Conf, p.UserPINFile
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
			so, err := os.ReadFile(soPINFile)
			if err != nil {
				return fmt.Errorf("read SO PIN: %w", err)
			}
			defer clear(so)
			so = trimNewline(so)
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

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
