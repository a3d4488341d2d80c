package credential

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
)

// buildFaultShim builds hsm/testdata/faultshim.c, a PKCS#11 module in front
// of SoftHSM that answers CKR_DEVICE_REMOVED while the returned flag file
// exists.
func buildFaultShim(t *testing.T) (module, flag string) {
	t.Helper()
	inc, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Fatalf("locate pkcs11 headers: %v", err)
	}
	dir := t.TempDir()
	module, flag = filepath.Join(dir, "faultshim.so"), filepath.Join(dir, "hsm-down")
	out, err := exec.Command("gcc", "-shared", "-fPIC", "-O1", "-I", strings.TrimSpace(string(inc)),
		"-o", module, "../../hsm/testdata/faultshim.c", "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("build fault shim (needs gcc, as cgo does): %v\n%s", err, out)
	}
	t.Setenv("FAULT_SHIM_TARGET", hsm.DefaultModulePath())
	t.Setenv("FAULT_SHIM_DOWN", flag)
	return module, flag
}

// TestHSMOutage: while the HSM is away, calls that need an unseal fail closed
// with ErrUnavailable and send nothing; other traffic keeps flowing; calls
// work again by themselves once the HSM is back.
func TestHSMOutage(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		if testing.Short() {
			t.Skip("SoftHSM2 not installed")
		}
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2")
	}
	module, flag := buildFaultShim(t)
	s := newStore(t, module)
	secretA, secretB := canary(t), canary(t)
	s.put(t, "a", secretA)
	s.put(t, "b", secretB)
	upA, upB, upPlain := newUpstream(t), newUpstream(t), newUpstream(t)
	trA, logsA := newTransport(t, s, Spec{Secret: "a", Header: "Authorization", Format: "Bearer {secret}"}, func(c *Config) { c.CacheTTL = 150 * time.Millisecond })
	trB, _ := newTransport(t, s, Spec{Secret: "b", Header: "Authorization"}, nil)
	for _, c := range []struct {
		tr http.RoundTripper
		up *upstream
	}{{trA, upA}, {trB, upB}} {
		if _, err := do(t, c.tr, agentRequest(t, c.up.URL)); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // A's cached plaintext has expired
	before := upA.count()
	_, err := do(t, trA, agentRequest(t, upA.URL))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call needing an unseal with the HSM away: %v, want ErrUnavailable", err)
	}
	if upA.count() != before {
		t.Fatal("a request went upstream without its credential")
	}
	// Other traffic flows: an upstream without a credential, and one whose
	// credential is still within its cache lifetime.
	if resp, err := do(t, http.DefaultTransport, agentRequest(t, upPlain.URL)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain upstream during the outage: %v %v", resp, err)
	}
	if _, err := do(t, trB, agentRequest(t, upB.URL)); err != nil {
		t.Fatalf("cached credential during the outage: %v", err)
	}

	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := do(t, trA, agentRequest(t, upA.URL))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := upA.last(t).Header.Get("Authorization"); got != "Bearer "+secretA {
		t.Fatal("wrong credential after recovery")
	}
	logsA.assertAbsent(t, secretA, secretB)
}
