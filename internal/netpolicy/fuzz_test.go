package netpolicy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/geoip"
	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

// FuzzCompile: whatever the state accepts must compile into rules the
// datapath accepts, or one bad document would freeze every node's network
// policy at its previous version.
func FuzzCompile(f *testing.F) {
	f.Add(baseDocs)
	f.Add("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [], endpoint: {listen: \"[::ffff:10.0.0.1]:9\"}, network: {denyCountries: [AA], unknownCountry: allow, pinTokensToIP: true}}\n")
	f.Add("apiVersion: portcullis/v1\nkind: NetworkPolicy\nmetadata: {name: n}\nspec: {allowCIDRs: [\"::/0\", 0.0.0.0/0], denyCIDRs: [\"fe80::1%eth0\"]}\n")
	f.Add("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [], endpoint: {listen: \"0.0.0.0:1\"}, network: {allowCIDRs: [1.2.3.4]}}\n")
	f.Fuzz(func(t *testing.T, docs string) {
		objs, err := state.ParseDocuments("fuzz.yaml", []byte(docs))
		if err != nil {
			return
		}
		s := state.NewStore(nil)
		cmd := &state.Command{Op: state.OpApply, Time: time.Unix(1700000000, 0)}
		for _, o := range objs {
			cmd.Documents = append(cmd.Documents, state.EncodeDocument(o))
		}
		b, _ := cmd.Encode()
		if _, ok := s.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: b}).(error); ok {
			return
		}
		r, errs := Compile(s.Current())
		if len(errs) > 0 {
			t.Fatalf("valid state, compile problems: %v", errs)
		}
		if _, err := xdp.NewPolicy(r, nil); err != nil {
			t.Fatalf("valid state, datapath refuses its rules: %v", err)
		}
		sr, _ := CompileShared(s.Current())
		if _, err := xdp.NewPolicy(sr, nil); err != nil {
			t.Fatalf("valid state, shared rules refused: %v", err)
		}
	})
}

// bigState is a node with 200 personas on dedicated listeners and 5000
// pinned keys.
func bigState(b *testing.B) *state.Store {
	s := state.NewStore(nil)
	var docs strings.Builder
	docs.WriteString("apiVersion: portcullis/v1\nkind: NetworkPolicy\nmetadata: {name: edge}\nspec: {denyCIDRs: [198.51.100.0/24, \"2001:db8:bad::/48\"]}\n")
	for i := range 200 {
		fmt.Fprintf(&docs, "---\napiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p%d}\nspec: {skills: [], endpoint: {listen: \"10.%d.%d.1:9001\"}, network: {allowCIDRs: [10.0.0.0/8], denyCIDRs: [10.9.0.0/16], allowCountries: [DE, FR], pinTokensToIP: true}}\n", i, i/250, i%250)
		fmt.Fprintf(&docs, "---\napiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: a%d}\nspec: {persona: p%d}\n", i, i)
	}
	objs, err := state.ParseDocuments("big.yaml", []byte(docs.String()))
	if err != nil {
		b.Fatal(err)
	}
	cmd := &state.Command{Op: state.OpApply, Time: time.Now()}
	for _, o := range objs {
		cmd.Documents = append(cmd.Documents, state.EncodeDocument(o))
	}
	idx := uint64(1)
	apply := func(c *state.Command) {
		raw, _ := c.Encode()
		if err, ok := s.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: raw}).(error); ok {
			b.Fatal(err)
		}
		idx++
	}
	apply(cmd)
	tbl, err := geoip.Parse([]byte("10.0.0.0,10.255.255.255,DE\n198.51.100.0,198.51.100.255,CN\n"), geoip.FormatDBIPCSV)
	if err != nil {
		b.Fatal(err)
	}
	blob, _ := tbl.MarshalBinary()
	apply(&state.Command{Op: state.OpGeoIPImport, Time: time.Now(), GeoIP: blob})
	for k := range 5000 {
		apply(&state.Command{Op: state.OpKeyCreate, Time: time.Now(), Key: &state.APIKey{
			ID: fmt.Sprintf("k%05d", k), Agent: fmt.Sprintf("a%d", k%200), Hash: make([]byte, 32),
			PinIP: fmt.Sprintf("10.%d.%d.%d", k%200/250, k%250, 10+k/200%200),
		}})
	}
	return s
}

// BenchmarkCompile measures turning a state snapshot into datapath rules
// (done once per committed change).
func BenchmarkCompile(b *testing.B) {
	s := bigState(b)
	b.ResetTimer()
	for b.Loop() {
		r, _ := Compile(s.Current())
		if len(r.Listeners) != 200 {
			b.Fatal(len(r.Listeners))
		}
	}
}

// BenchmarkGuard measures the userspace check on every request.
func BenchmarkGuard(b *testing.B) {
	s := bigState(b)
	d, err := xdp.New(xdp.Config{Ifaces: []string{"pc-nope0"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	e, err := New(Config{State: s, Datapath: d})
	if err != nil {
		b.Fatal(err)
	}
	h := e.Guard(Persona, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.RemoteAddr = "10.0.7.10:40000"
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.0.7.1:9001"))))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if w.Code != 200 {
		b.Fatalf("pinned source refused: %d %s", w.Code, w.Body)
	}
}
