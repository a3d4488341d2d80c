package authn

import (
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// A key without a pin is refused once its persona pins credentials to
// client addresses (the key predates the rule).
func TestUnpinnedKeyOfPinningPersona(t *testing.T) {
	a, tok, snap := setup(t)
	snap.Personas = map[string]*state.Persona{"triage": {Meta: state.Meta{Name: "triage"}, Network: &state.Network{PinTokensToIP: true}}}
	if _, err := a.Authenticate(req("Bearer " + tok).httpRequest); err == nil || !strings.Contains(err.Error(), "--pin-ip") {
		t.Fatalf("unpinned key of a pinning persona: %v", err)
	}
	for _, k := range snap.Keys {
		k.PinIP = "10.1.2.3"
	}
	if _, err := a.Authenticate(req("Bearer " + tok).httpRequest); err != nil {
		t.Fatalf("pinned key from its address: %v", err)
	}
}
