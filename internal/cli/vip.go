package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portcullis-gw/portcullis/internal/vip"
)

// newVIPConfigCmd is `portcullis cluster vip-config`.
func newVIPConfigCmd() *cobra.Command {
	var (
		cfg          vip.Config
		vipFlag, src string
		peers        []string
		authPassFile string
	)
	cmd := &cobra.Command{
		Use:   "vip-config --vip ADDR/PREFIX --iface IFACE --router-id N --priority N [--peer IP ...]",
		Short: "Print the keepalived configuration that gives the cluster one address (a VRRP virtual IP)",
		Long: `Prints keepalived.conf for this node. Run it on every node with the same
--vip, --iface, --router-id (and password), a different --priority each:
keepalived checks this node's gateway GET /healthz every --interval; the
healthy node of highest priority holds the address, a node whose check
fails --fall times in a row (no answer, or 503: starting, or state older
than --max-stale) gives it up and never takes it while it fails. Agents
and admins then use https://VIP:PORT: start the nodes with --gateway-addr
0.0.0.0:8443 (a gateway bound to the node's own address needs
--health-url https://NODE_IP:8443/healthz), and put the VIP in their TLS
certificate.

Install and run (Debian):
  apt install keepalived curl
  portcullis cluster vip-config ... > /etc/keepalived/keepalived.conf
  chmod 600 /etc/keepalived/keepalived.conf
  systemctl enable --now keepalived
  ip -br addr show IFACE        # the VIP appears on the node holding it

Without --peer, VRRP advertisements go to multicast 224.0.0.18 (the nodes
share one L2 segment); with --peer (the other nodes' addresses, and
--src-ip for this node's) they go unicast, for networks that drop
multicast. Allow IP protocol 112 (VRRP) between the nodes. The check
skips TLS verification of the local listener unless --health-ca is given.`,
		Example: "  portcullis cluster vip-config --vip 10.0.0.100/24 --iface eth0 --router-id 51 --priority 150 \\\n" +
			"      --peer 10.0.0.12 --peer 10.0.0.13 --src-ip 10.0.0.11 --auth-pass-file /etc/portcullis/vrrp-pass",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := netip.ParsePrefix(vipFlag)
			if err != nil {
				return fmt.Errorf("--vip %q: want ADDRESS/PREFIX, e.g. 10.0.0.100/24", vipFlag)
			}
			cfg.VIP = p
			if cfg.Peers, err = vip.ParsePeers(peers); err != nil {
				return err
			}
			if src != "" {
				if cfg.SourceIP, err = netip.ParseAddr(src); err != nil {
					return fmt.Errorf("--src-ip %q: want this node's IPv4 address", src)
				}
			}
			if authPassFile != "" {
				b, err := os.ReadFile(authPassFile)
				if err != nil {
					return fmt.Errorf("--auth-pass-file: %w", err)
				}
				if cfg.AuthPass = strings.TrimSpace(string(b)); cfg.AuthPass == "" {
					return errors.New("--auth-pass-file: the file is empty")
				}
			}
			out, err := vip.Render(cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&vipFlag, "vip", "", "the cluster address with the subnet's prefix length, e.g. 10.0.0.100/24 (required)")
	f.StringVar(&cfg.Interface, "iface", "", "interface that carries the address, e.g. eth0 (required)")
	f.IntVar(&cfg.RouterID, "router-id", 0, "VRRP virtual router id 1-255, the same on every node, unique on the segment (required)")
	f.IntVar(&cfg.Priority, "priority", 0, "1-254, a different one per node: the healthy node with the highest holds the address (required)")
	f.StringSliceVar(&peers, "peer", nil, "another node's address, for unicast VRRP (repeat, or comma-separated; default: multicast)")
	f.StringVar(&src, "src-ip", "", "this node's own address for unicast VRRP (default: the interface's primary address)")
	f.StringVar(&cfg.HealthURL, "health-url", vip.DefaultHealthURL, "this node's gateway /healthz")
	f.StringVar(&cfg.HealthCA, "health-ca", "", "PEM CA file, readable by user nobody (the check runs as nobody), to verify the gateway's certificate with (default: an https check skips verification)")
	f.DurationVar(&cfg.Interval, "interval", vip.DefaultInterval, "time between health checks, whole seconds (also the check's time limit)")
	f.IntVar(&cfg.Fall, "fall", vip.DefaultFall, "failed checks in a row that make the node give the address up")
	f.IntVar(&cfg.Rise, "rise", vip.DefaultRise, "good checks in a row that make it eligible again")
	f.DurationVar(&cfg.Advert, "advert", vip.DefaultAdvert, "VRRP advertisement interval, whole seconds (backups take over about 3 intervals after the holder falls silent)")
	f.StringVar(&authPassFile, "auth-pass-file", "", "file holding the VRRP password (1-8 characters, the same on every node; sent in clear, a guard against mistakes only)")
	f.BoolVar(&cfg.NoPreempt, "nopreempt", false, "keep the address where it is when a node of higher priority recovers")
	return cmd
}
