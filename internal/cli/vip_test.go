package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVIPConfig(t *testing.T) {
	pass := filepath.Join(t.TempDir(), "vrrp-pass")
	if err := os.WriteFile(pass, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "", "cluster", "vip-config", "--vip", "10.0.0.100/24", "--iface", "eth0", "--router-id", "51",
		"--priority", "150", "--peer", "10.0.0.12,10.0.0.13", "--src-ip", "10.0.0.11", "--auth-pass-file", pass,
		"--health-url", "https://127.0.0.1:9443/healthz", "--fall", "3")
	if err != nil {
		t.Fatalf("vip-config: %v\n%s", err, out)
	}
	for _, want := range []string{"virtual_router_id 51", "priority 150", "10.0.0.100/24 dev eth0",
		"unicast_src_ip 10.0.0.11", "10.0.0.12\n", "10.0.0.13\n", "auth_pass s3cret\n", "https://127.0.0.1:9443/healthz", "fall 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("vip-config output lacks %q:\n%s", want, out)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--iface", "eth0", "--router-id", "1", "--priority", "1"}, `--vip "": want ADDRESS/PREFIX`},
		{[]string{"--vip", "10.0.0.100", "--iface", "eth0", "--router-id", "1", "--priority", "1"}, `--vip "10.0.0.100"`},
		{[]string{"--vip", "10.0.0.100/24", "--router-id", "1", "--priority", "1"}, "interface (--iface)"},
		{[]string{"--vip", "10.0.0.100/24", "--iface", "eth0", "--priority", "1"}, "virtual router id (--router-id) 0"},
		{[]string{"--vip", "10.0.0.100/24", "--iface", "eth0", "--router-id", "1", "--priority", "1", "--peer", "10.0.0.x"}, `peer "10.0.0.x"`},
		{[]string{"--vip", "10.0.0.100/24", "--iface", "eth0", "--router-id", "1", "--priority", "1", "--auth-pass-file", "/nonexistent"}, "--auth-pass-file"},
		{[]string{"--vip", "10.0.0.100/24", "--iface", "eth0", "--router-id", "1", "--priority", "1", "--interval", "500ms"}, "whole seconds"},
	} {
		out, err := runCLI(t, "", append([]string{"cluster", "vip-config"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vip-config %v: %v, want an error mentioning %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
