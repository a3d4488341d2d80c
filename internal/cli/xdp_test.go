package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/geoip"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

func TestXDPStatsAndGeoIPImport(t *testing.T) {
	t.Setenv("PORTCULLIS_TOKEN", fmt.Sprintf("test-%d", time.Now().UnixNano()))
	// A userspace-only datapath (no interface by that name): what a node
	// without XDP reports.
	d, err := xdp.New(xdp.Config{Ifaces: []string{"pc-none0"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rules := xdp.Rules{Listeners: []xdp.ListenerRules{{Name: "p", Listen: netip.MustParseAddrPort("10.0.0.1:9001"), PinToIP: true}}}
	if err := d.SetRules(rules, nil); err != nil {
		t.Fatal(err)
	}
	d.Allow(netip.MustParseAddr("10.0.0.9"), netip.MustParseAddrPort("10.0.0.1:9001"))

	var (
		mu      sync.Mutex
		applied []byte
	)
	mux := http.NewServeMux()
	mux.Handle("/v1/xdp/stats", xdp.StatsHandler(d))
	mux.Handle("/v1/geoip", geoip.ImportHandler(func(_ context.Context, blob []byte) error {
		mu.Lock()
		applied = blob
		mu.Unlock()
		return nil
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	out, err := runCLI(t, "", "xdp", "stats", "--server", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NOT ACTIVE") || !regexpLine(out, "pin", "1") {
		t.Fatalf("xdp stats output:\n%s", out)
	}

	file := filepath.Join(t.TempDir(), "dbip.csv")
	os.WriteFile(file, []byte("1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.3.255,CN\n2001:db8::,2001:db8::ffff,DE\n"), 0o600)
	out, err = runCLI(t, "", "geoip", "import", file, "--server", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "dbip-csv, 3 ranges") {
		t.Fatalf("geoip import output:\n%s", out)
	}
	mu.Lock()
	tbl, err := geoip.Decode(applied)
	mu.Unlock()
	if err != nil || tbl.Lookup(netip.MustParseAddr("1.0.2.1")).String() != "CN" {
		t.Fatalf("the server did not receive the table: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("1.0.0.0,1.0.0.255,Australia\n"), 0o600)
	if _, err := runCLI(t, "", "geoip", "import", bad, "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad file: %v", err)
	}
}

// regexpLine reports whether a line starts with the first field and
// contains the others.
func regexpLine(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == fields[0] && strings.Contains(l, " "+fields[1]) {
			return true
		}
	}
	return false
}
