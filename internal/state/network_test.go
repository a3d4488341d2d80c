package state

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNetworkPolicyValidate(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"empty", "{}", "spec: a network policy must set allowCIDRs, denyCIDRs or unknownCountry"},
		{"bad cidr", "{denyCIDRs: [198.51.100.0/33]}", "spec.denyCIDRs[0]: \"198.51.100.0/33\" is not a CIDR prefix"},
		{"host bits", "{allowCIDRs: [10.0.0.1/8]}", "spec.allowCIDRs[0]: \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)"},
		{"unknown rule", "{unknownCountry: maybe}", "spec.unknownCountry: unknown rule \"maybe\" (want allow or deny)"},
		{"typo", "{denyCidrs: [10.0.0.0/8]}", "unknown field \"denyCidrs\" (did you mean \"denyCIDRs\"?)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := "apiVersion: portcullis/v1\nkind: NetworkPolicy\nmetadata: {name: edge}\nspec: " + c.spec + "\n"
			_, err := ParseDocuments("np.yaml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
		})
	}
	objs, err := ParseDocuments("np.yaml", []byte("apiVersion: portcullis/v1\nkind: NetworkPolicy\nmetadata: {name: edge}\nspec:\n  denyCIDRs: [198.51.100.0/24, \"2001:db8:bad::/48\", 203.0.113.9]\n  unknownCountry: deny\n"))
	if err != nil {
		t.Fatal(err)
	}
	np := objs[0].(*NetworkPolicy)
	if len(np.DenyCIDRs) != 3 || np.UnknownCountry != "deny" {
		t.Fatalf("parsed %+v", np)
	}
	_, err = ParseDocuments("p.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [], network: {allowCountries: [DE], unknownCountry: perhaps}}\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.network.unknownCountry: unknown rule \"perhaps\"") {
		t.Fatalf("persona unknownCountry: %v", err)
	}
	for in, want := range map[string]Kind{"networkpolicies": KindNetworkPolicy, "NetworkPolicy": KindNetworkPolicy, "networkpolicy": KindNetworkPolicy} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v", in, got, err)
		}
	}
}

func TestNetworkPolicyLifecycleAndGeoIP(t *testing.T) {
	s := NewStore(nil)
	objs, err := ParseDocuments("f.yaml", []byte(`apiVersion: portcullis/v1
kind: NetworkPolicy
metadata: {name: edge}
spec: {denyCIDRs: [198.51.100.0/24]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: a}
spec: {skills: [], endpoint: {listen: "10.77.0.1:9001"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := applyObjs(t, s, 1, objs...); err != nil {
		t.Fatal(err)
	}
	if got := s.Current().NetworkPolicies["edge"]; got == nil || got.DenyCIDRs[0] != "198.51.100.0/24" || got.Revision != 1 {
		t.Fatalf("network policy not stored: %+v", got)
	}
	if l := s.Current().List(KindNetworkPolicy); len(l) != 1 {
		t.Fatalf("List = %v", l)
	}

	// Two personas cannot share a listener, also not through 0.0.0.0.
	for i, listen := range []string{"10.77.0.1:9001", "0.0.0.0:9001"} {
		dup, err := ParseDocuments("f.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: b}\nspec: {skills: [], endpoint: {listen: \""+listen+"\"}}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := applyObjs(t, s, uint64(2+i), dup...); err == nil || !strings.Contains(err.Error(), `is already the endpoint of persona "a"`) {
			t.Fatalf("%s: duplicate listener: %v", listen, err)
		}
	}
	ok, _ := ParseDocuments("f.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: b}\nspec: {skills: [], endpoint: {listen: \"[::]:9001\"}}\n"))
	if _, err := applyObjs(t, s, 4, ok...); err != nil {
		t.Fatalf("IPv6 wildcard on the same port is another socket: %v", err)
	}

	// GeoIP: only serialized tables, replaced whole.
	if _, err := applyCmd(t, s, 5, &Command{Op: OpGeoIPImport, GeoIP: []byte("1.0.0.0,1.0.0.255,AU")}); err == nil || !strings.Contains(err.Error(), "not a serialized GeoIP table") {
		t.Fatalf("raw CSV accepted: %v", err)
	}
	if s.Current().GeoIP != nil {
		t.Fatal("refused import changed the state")
	}
	blob := append([]byte(geoIPMagic), 1, 2, 3)
	when := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	res, err := applyCmd(t, s, 6, &Command{Op: OpGeoIPImport, Time: when, GeoIP: blob})
	if err != nil || res.Changes[0].Action != "created" {
		t.Fatalf("import: %v %+v", err, res)
	}

	snap, _ := s.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	r := NewStore(nil)
	if err := r.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	got := r.Current()
	if string(got.GeoIP) != string(blob) || !got.GeoIPImported.Equal(when) || got.NetworkPolicies["edge"] == nil {
		t.Fatalf("restored: geoip %q at %v, policies %v", got.GeoIP, got.GeoIPImported, got.NetworkPolicies)
	}

	if _, err := applyCmd(t, s, 7, &Command{Op: OpDelete, Kind: KindNetworkPolicy, Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 8, &Command{Op: OpDelete, Kind: KindNetworkPolicy, Name: "edge"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestListenerLimitsAndCountries(t *testing.T) {
	s := NewStore(nil)
	persona := func(name, listen string) Object {
		objs, err := ParseDocuments("f.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: "+name+"}\nspec: {skills: [], endpoint: {listen: \""+listen+"\"}}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return objs[0]
	}
	idx := uint64(1)
	for i := range MaxListenersPerAddr - 2 {
		if _, err := applyObjs(t, s, idx, persona("p"+string(rune('a'+i)), "10.0.0.1:"+itoa(9000+i))); err != nil {
			t.Fatal(err)
		}
		idx++
	}
	// Two wildcard endpoints serve 10.0.0.1 too: 16 in all, the limit.
	for i, name := range []string{"w1", "w2"} {
		if _, err := applyObjs(t, s, idx, persona(name, "0.0.0.0:"+itoa(8000+i))); err != nil {
			t.Fatal(err)
		}
		idx++
	}
	if _, err := applyObjs(t, s, idx, persona("over", "10.0.0.1:7000")); err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Fatalf("17th endpoint on one address: %v", err)
	}
	if _, err := applyObjs(t, s, idx, persona("wild", "0.0.0.0:7000")); err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Fatalf("wildcard endpoint over the limit: %v", err)
	}
	if _, err := applyObjs(t, s, idx, persona("other", "10.0.0.2:7000")); err != nil {
		t.Fatalf("another address: %v", err)
	}
	_, err := ParseDocuments("f.yaml", []byte("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [], network: {denyCountries: [ZZ]}}\n"))
	if err == nil || !strings.Contains(err.Error(), "not an ISO 3166-1 alpha-2 country code") {
		t.Fatalf("ZZ accepted: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
