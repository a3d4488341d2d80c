package gateway_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/icap"
)

// startCICAP runs the real c-icap server (Debian c-icap) with two
// services: "echo" (returns every message unchanged) and "filter"
// (srv_content_filtering from libc-icap-mod-contentfiltering: replaces the
// codename "Project Nightjar" and blocks bodies holding the marker
// "EICAR-TEST-SIGNATURE").
func startCICAP(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the c-icap server; skipped in -short")
	}
	bin, err := exec.LookPath("c-icap")
	if err != nil {
		t.Fatalf("c-icap not installed (apt-get install c-icap libc-icap-mod-contentfiltering; listed in .ci/packages.d/dlpwire): %v", err)
	}
	mods, _ := filepath.Glob("/usr/lib/*/c_icap/srv_content_filtering.so")
	if len(mods) == 0 {
		t.Fatal("the c-icap content filtering service is not installed (apt-get install libc-icap-mod-contentfiltering)")
	}
	modDir := filepath.Dir(mods[0])
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf(`PidFile %[1]s/c-icap.pid
CommandsSocket %[1]s/c-icap.ctl
Timeout 30
StartServers 1
MaxServers 1
MinSpareThreads 2
MaxSpareThreads 4
ThreadsPerChild 8
MaxRequestsPerChild 0
Port %[2]s
ServerName portcullis-test
TmpDir %[1]s
MaxMemObject 131072
DebugLevel 1
ModulesDir %[3]s
ServicesDir %[3]s
TemplateDir /usr/share/c_icap/templates/
LoadMagicFile /etc/c-icap/c-icap.magic
ServerLog %[1]s/server.log
AccessLog %[1]s/access.log
Service echo srv_echo.so
Service filter srv_content_filtering.so
acl local src 127.0.0.1/255.255.255.255
srv_content_filtering.Match codename body /Project.Nightjar/g score=10 info{RED}=CLASSIFIED
srv_content_filtering.Match marker body /EICAR-TEST-SIGNATURE/ score=100
srv_content_filtering.Profile gw block score{marker>50}
srv_content_filtering.Profile gw replace score{codename>5} replaceInfo=RED
srv_content_filtering.ProfileOption gw AnyContentType
srv_content_filtering.ProfileAccess gw local
`, dir, addr, modDir)
	cf := filepath.Join(dir, "c-icap.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-N", "-f", cf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start c-icap: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Logf("c-icap output:\n%s\nserver.log:\n%s", out.String(), log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("c-icap did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
