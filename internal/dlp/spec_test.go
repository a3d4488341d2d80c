package dlp

import (
	"errors"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/state"
)

func TestPolicyFromSpec(t *testing.T) {
	keep := 2
	p, err := PolicyFromSpec([]state.DLPRule{
		{Categories: []string{"pci", "secrets"}, Direction: "both", Action: "redact"},
		{Categories: []string{"pii"}, Direction: "response", Action: "mask", KeepTail: &keep},
		{Detectors: []string{"iban"}, Action: "tokenize", Format: "ff1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 3 || p.Rules[1].KeepTail == nil || *p.Rules[1].KeepTail != 2 || p.Rules[2].Format != "ff1" || !p.Rules[2].applies(Request) {
		t.Errorf("policy = %+v", p)
	}
	if _, err := PolicyFromSpec([]state.DLPRule{{Detectors: []string{"no-such-detector"}, Action: "block"}}); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("unknown detector: %v", err)
	}
	u := &state.Upstream{Environment: "prod", Egress: "external"}
	u.Name = "crm"
	if got := UpstreamFromSpec(u); got != (Upstream{Name: "crm", Environment: Prod, Egress: External}) {
		t.Errorf("upstream = %+v", got)
	}
}
