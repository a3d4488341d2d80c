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

	"github.com/portcullis-gw/portcullis/internal/geoip"
	"github.com/portcullis-gw/portcullis/internal/netpolicy"
	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

func TestXDPStatsAndGeoIPImport(t *testing.T) {
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
	const token = "test-admin-token-0123456789"
	t.Setenv("PORTCULLIS_TOKEN", token)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/xdp/stats", xdp.StatsHandler(d))
	mux.Handle("POST /v1/geoip", netpolicy.ImportHandler(applierFunc(func(_ context.Context, b []byte) (any, error) {
		cmd, err := state.DecodeCommand(b)
		if err != nil || cmd.Op != state.OpGeoIPImport {
			return nil, fmt.Errorf("unexpected command %v", err)
		}
		mu.Lock()
		applied = cmd.GeoIP
		mu.Unlock()
		return &state.Result{}, nil
	}), nil))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"wrong admin token"}}`)
			return
		}
		mux.ServeHTTP(w, r)
	}))
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
	// A wrong explicit format is reported before anything is sent.
	if _, err := runCLI(t, "", "geoip", "import", file, "--format", "ip2location-csv", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "not an IP number") {
		t.Fatalf("wrong --format: %v", err)
	}
	t.Setenv("PORTCULLIS_TOKEN", "wrong-token-0123456789")
	if _, err := runCLI(t, "", "xdp", "stats", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "rejected the admin token") {
		t.Fatalf("wrong token: %v", err)
	}
}

type applierFunc func(context.Context, []byte) (any, error)

func (f applierFunc) Apply(ctx context.Context, b []byte) (any, error) { return f(ctx, b) }

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
