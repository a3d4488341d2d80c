package appliance

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/persona/personallm"
)

// Command is the `portcullis server` command: its flags fill a Config and
// it runs the node with Run. It lives here, beside Config, so that the
// command tree (internal/cli) never imports the wiring; cmd/portcullis
// hands it to cli.Main.
func Command() *cobra.Command {
	var cfg Config
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Portcullis node",
		Long: "Run a Portcullis appliance node. Agents connect to the gateway listener; admins\n" +
			"(CLI, REST API, UI) to the admin listener. State is kept in raft in the data\n" +
			"directory, so a restart keeps every object.\n\n" +
			"--dev runs a single development node on loopback with plain HTTP allowed. The first\n" +
			"start writes a random admin token to DATA_DIR/admin-token (mode 0600).",
		Example: "  portcullis server --dev --data-dir ./.data --gateway-addr 127.0.0.1:8443 --admin-addr 127.0.0.1:9443",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			if cfg.DataDir == "" {
				if !cfg.Dev {
					return fmt.Errorf("--data-dir is required (or use --dev for ./.data)")
				}
				cfg.DataDir = ".data"
			}
			if cfg.RaftAddr == "" {
				cfg.RaftAddr = besideAdmin(cfg.AdminAddr)
			}
			cfg.Logger = log
			return Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Dev, "dev", false, "development mode: loopback only, plain HTTP, admin token generated in the data dir")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the node's state (dev default ./.data)")
	f.StringVar(&cfg.GatewayAddr, "gateway-addr", "127.0.0.1:8443", "agents' listener (MCP endpoints), HOST:PORT")
	f.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:9443", "management listener (admin API), HOST:PORT")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "", "node-to-node listener (raft and cluster RPCs, mutual TLS), HOST:PORT (default: the admin host, admin port + 1)")
	f.StringVar(&cfg.Join, "join", "", "on the first start, join the cluster of the node whose admin API is at this URL (e.g. http://127.0.0.1:9443)")
	f.StringVar(&cfg.JoinCAFile, "join-ca-file", "", "PEM CA that signed the --join URL's TLS certificate (default: the system roots)")
	f.StringVar(&cfg.JoinTokenFile, "join-token-file", "", "file holding the join token for --join (from `portcullis cluster join-token create`)")
	f.DurationVar(&cfg.MaxStale, "max-stale", defaultMaxStale, "how long a node that has lost the cluster's leader keeps serving agents from its last state before refusing calls (503)")
	f.StringVar(&cfg.NodeID, "node-id", "", "stable node id (default: generated on first start and kept in the data dir)")
	f.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "admin token file (default DATA_DIR/admin-token; created 0600 if missing)")
	f.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate for both listeners (required unless --dev)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key for --tls-cert")
	f.StringVar(&cfg.HSM.ModulePath, "hsm-module", "", "PKCS#11 module of the HSM (default: SoftHSM2)")
	f.StringVar(&cfg.HSM.TokenLabel, "hsm-token", "", "label of the HSM token that seals backend secrets (dev default: a SoftHSM2 token in the data dir)")
	f.StringVar(&cfg.HSM.PINFile, "hsm-pin-file", "", "file holding the HSM user PIN (default: $"+HSMPINEnv+"; there is no flag for the PIN itself)")
	f.DurationVar(&cfg.SecretCacheTTL, "secret-cache-ttl", 30*time.Second, "how long the gateway keeps an unsealed backend secret in memory (negative: unseal on every call)")
	f.Uint64Var(&cfg.SnapshotThreshold, "raft-snapshot-threshold", 0, "raft log entries after which a snapshot is taken (default 1024)")
	f.DurationVar(&cfg.SnapshotInterval, "raft-snapshot-interval", 0, "how often raft checks whether to snapshot (default 2m)")
	f.StringVar(&cfg.ICAPURL, "icap-url", "", "ICAP service for tool arguments and results after the built-in DLP, icap://HOST[:PORT]/SERVICE (e.g. icap://127.0.0.1:1344/echo)")
	f.StringSliceVar(&cfg.ICAPModes, "icap-mode", []string{"reqmod", "respmod"}, "what goes to the ICAP service: reqmod (arguments), respmod (results); comma-separated, or both")
	f.BoolVar(&cfg.ICAPFailOpen, "icap-fail-open", false, "pass messages uninspected when the ICAP service is unreachable (default: refuse the call)")
	f.DurationVar(&cfg.ICAPTimeout, "icap-timeout", 10*time.Second, "time limit of one ICAP exchange")
	f.StringSliceVar(&cfg.Network.Ifaces, "xdp-iface", nil, "attach the XDP network filter to these interfaces (IFACE[,IFACE]); needs root")
	f.StringVar(&cfg.Network.Mode, "xdp-mode", "auto", "XDP attach mode: auto (native where the driver supports it, else generic), native or generic")
	f.StringVar(&cfg.Network.Fail, "xdp-fail", "open", "when XDP cannot load or attach: open (enforce in userspace only, warn) or closed (refuse to start)")
	f.StringVar(&cfg.PersonaModel.URL, "persona-model-url", "", "OpenAI-compatible API base of an on-premises model that helps persona draft choose skills, e.g. http://10.0.0.5:8000/v1 (vLLM, Ollama, llama.cpp server); default: offline drafter only")
	f.StringVar(&cfg.PersonaModel.Model, "persona-model", "", "model name for --persona-model-url")
	f.StringVar(&cfg.PersonaModel.Mode, "persona-model-mode", "chat", "API of --persona-model-url: chat (/chat/completions) or embeddings (/embeddings)")
	f.StringVar(&cfg.PersonaModel.APIKeyFile, "persona-model-key-file", "", "file holding the bearer API key of --persona-model-url (there is no flag for the key itself)")
	f.StringVar(&cfg.PersonaModel.APIKeyEnv, "persona-model-key-env", "", "environment variable holding the bearer API key of --persona-model-url")
	f.DurationVar(&cfg.PersonaModel.Timeout, "persona-model-timeout", personallm.DefaultTimeout, "time limit of one draft's model calls; on timeout the draft is the offline one, with a warning (a longer one needs persona draft --timeout above it plus 10s)")
	addAuditFlags(f, &cfg.Audit)
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// besideAdmin is the default raft address: the admin listener's host and
// the next port (port 0 stays 0: any free port, for tests).
func besideAdmin(admin string) string {
	host, port, err := net.SplitHostPort(admin)
	if err != nil {
		return admin // validate reports it
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 || p >= 65535 {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}
