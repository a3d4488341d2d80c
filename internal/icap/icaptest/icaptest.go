// Package icaptest runs the real c-icap server (Debian packages c-icap and
// libc-icap-mod-contentfiltering) for tests, on a free loopback port, with
// two services:
//
//   - "echo" returns every message unchanged;
//   - "filter" (srv_content_filtering) replaces the codename
//     "Project Nightjar" and blocks bodies holding "EICAR-TEST-SIGNATURE".
package icaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Start runs c-icap until the test ends and returns its address. It fails
// the test, naming the packages to install, when c-icap is missing.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("c-icap")
	if err != nil {
		t.Fatalf("c-icap not installed (apt-get install c-icap libc-icap-mod-contentfiltering; listed in .ci/packages.d): %v", err)
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
MaxKeepAliveRequests 100
KeepAliveTimeout 30
StartServers 1
MaxServers 1
MinSpareThreads 2
MaxSpareThreads 4
ThreadsPerChild 8
MaxRequestsPerChild 0
Port %[2]s
ServerAdmin admin@example.invalid
ServerName portcullis-test
TmpDir %[1]s
MaxMemObject 131072
DebugLevel 1
Pipelining on
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
