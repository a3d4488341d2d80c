package gateway_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/icap/icaptest"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/icap"
)

// startCICAP runs the real c-icap server with its "echo" and "filter"
// services (see icaptest).
func startCICAP(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the c-icap server; skipped in -short")
	}
	return icaptest.Start(t)
}

func icapStage(t *testing.T, addr, service string, failOpen bool) *gateway.ICAPConfig {
	c, err := icap.New(icap.Config{Addr: addr, Service: service, Timeout: 3 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &gateway.ICAPConfig{Client: c, ReqMod: true, RespMod: true, FailOpen: failOpen}
}

// The ICAP stage against the real c-icap: an echo service changes nothing;
// a content filter's replacement reaches the agent (the JSON stays valid)
// and its block refuses the call in both directions.
func TestICAP(t *testing.T) {
	addr := startCICAP(t)
	t.Run("echo", func(t *testing.T) {
		e := newDLPEnv(t, func(c *gateway.Config) { c.ICAP = icapStage(t, addr, "echo", false) })
		cs := e.agent("p-none", "2025-11-25", nil)
		res, err := call(t, cs, "vault_lookup", nil)
		if err != nil || !strings.Contains(text(t, res), e.card) || structured(t, res)["name"] != "Jane Roe" {
			t.Fatalf("lookup through echo: %v %+v", err, res)
		}
		if _, err := call(t, cs, "crm_store", map[string]any{"note": "hello"}); err != nil {
			t.Fatal(err)
		}
		if got := e.rec["crm"].received(); len(got) != 1 || !strings.Contains(got[0], `"hello"`) {
			t.Fatalf("upstream received %q", got)
		}
		seen := 0
		for len(e.decisions) > 0 {
			if d := <-e.decisions; strings.Contains(d.ICAP, "mod") && !strings.Contains(d.ICAP, "failed") {
				seen++
			}
		}
		if seen < 2 {
			t.Fatalf("decisions recorded %d ICAP exchanges", seen)
		}
	})
	t.Run("filter", func(t *testing.T) {
		e := newDLPEnv(t, func(c *gateway.Config) { c.ICAP = icapStage(t, addr, "filter", false) })
		cs := e.agent("p-redact", "2026-07-28", nil)
		e.rec["vault"].setSay(" of Project Nightjar")
		res, err := call(t, cs, "vault_lookup", nil)
		if err != nil {
			t.Fatal(err)
		}
		note := fmt.Sprint(structured(t, res)["note"])
		if note != "VIP of CLASSIFIED" || strings.Contains(text(t, res), "Nightjar") || strings.Contains(text(t, res), e.card) {
			t.Fatalf("filtered result: note %q, text %q", note, text(t, res))
		}

		e.rec["vault"].setSay(" EICAR-TEST-SIGNATURE")
		_, err = call(t, cs, "vault_lookup", nil)
		if je := dlpError(t, err); !strings.Contains(je.Message, "refused by the ICAP service") || !strings.Contains(je.Message, "HTTP 403") {
			t.Fatalf("blocked result: %q", je.Message)
		}
		_, err = call(t, cs, "crm_store", map[string]any{"note": "EICAR-TEST-SIGNATURE"})
		if je := dlpError(t, err); !strings.Contains(je.Message, "request was refused by the ICAP service") {
			t.Fatalf("blocked request: %q", je.Message)
		}
		if _, err := call(t, cs, "crm_store", map[string]any{"note": "about Project Nightjar"}); err != nil {
			t.Fatal(err)
		}
		if got := e.rec["crm"].received(); len(got) != 1 || !strings.Contains(got[0], "about CLASSIFIED") {
			t.Fatalf("upstream received %q, want only the rewritten call", got)
		}
	})
	t.Run("down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := l.Addr().String()
		l.Close()
		e := newDLPEnv(t, func(c *gateway.Config) { c.ICAP = icapStage(t, dead, "echo", false) })
		_, err = call(t, e.agent("p-none", "2025-11-25", nil), "crm_store", map[string]any{"note": "x"})
		if err == nil || !strings.Contains(err.Error(), "content inspection is unavailable") || len(e.rec["crm"].received()) != 0 {
			t.Fatalf("fail-closed: %v", err)
		}
		open := newDLPEnv(t, func(c *gateway.Config) { c.ICAP = icapStage(t, dead, "echo", true) })
		if res, err := call(t, open.agent("p-none", "2025-11-25", nil), "crm_store", map[string]any{"note": "x"}); err != nil || res.IsError {
			t.Fatalf("fail-open: %v", err)
		}
	})
}
