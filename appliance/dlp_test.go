package appliance

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/state"
)

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(tWriter{t}, nil)) }

func TestICAPConfig(t *testing.T) {
	ic, err := icapConfig(Config{ICAPURL: "icap://127.0.0.1/dlp", ICAPModes: []string{"respmod"}, Logger: testLog(t)})
	if err != nil || ic == nil || ic.ReqMod || !ic.RespMod || ic.FailOpen {
		t.Fatalf("respmod only: %+v %v", ic, err)
	}
	if ic, err := icapConfig(Config{ICAPURL: "icap://[::1]:11344/echo", Logger: testLog(t)}); err != nil || !ic.ReqMod || !ic.RespMod {
		t.Fatalf("default modes: %+v %v", ic, err)
	}
	if ic, err := icapConfig(Config{}); ic != nil || err != nil {
		t.Fatalf("no URL: %+v %v", ic, err)
	}
	for url, want := range map[string]string{
		"http://127.0.0.1:1344/echo": "want icap://HOST[:PORT]/SERVICE",
		"icap://127.0.0.1:1344":      "name the service",
		"icap:///echo":               "want icap://HOST[:PORT]/SERVICE",
		"icap://127.0.0.1/ bad":      "--icap-url",
	} {
		if _, err := icapConfig(Config{ICAPURL: url, Logger: testLog(t)}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", url, err, want)
		}
	}
	if _, err := icapConfig(Config{ICAPURL: "icap://127.0.0.1/echo", ICAPModes: []string{"reqmod", "all"}, Logger: testLog(t)}); err == nil || !strings.Contains(err.Error(), `--icap-mode "all"`) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestApplyRefusesUnknownDLPDetectors(t *testing.T) {
	errs := validateDLP(&state.Persona{DLP: []state.DLPRule{
		{Categories: []string{"pci"}, Action: "redact"},
		{Detectors: []string{"no-such-detector"}, Action: "block"},
	}})
	if len(errs) != 1 || errs[0].Field != "spec.dlp[1]" || !strings.Contains(errs[0].Msg, `unknown detector "no-such-detector"`) {
		t.Fatalf("errors: %v", errs)
	}
	if errs := validateDLP(&state.Agent{}); errs != nil {
		t.Fatalf("agent: %v", errs)
	}
}
