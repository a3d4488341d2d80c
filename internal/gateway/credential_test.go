package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/credential"
)

// TestCredentialFailureMessages: each backend-credential failure reaches
// the agent as its own clear error naming the upstream and never the
// secret; other failures keep their usual mapping.
func TestCredentialFailureMessages(t *testing.T) {
	wrap := func(e error) error {
		return fmt.Errorf("post tools/call: %w", fmt.Errorf("%w: unseal %q: hsm: unavailable", e, "crm-password"))
	}
	for _, c := range []struct {
		err          error
		want, status string
	}{
		{wrap(credential.ErrUnavailable), `upstream "crm": backend credential unavailable: HSM unreachable`, "credential unavailable"},
		{wrap(credential.ErrSecretNotFound), `upstream "crm": backend credential unavailable: a secret it needs is not stored`, "credential missing"},
		{wrap(credential.ErrTokenEndpoint), `upstream "crm": backend credential unavailable: its OAuth token endpoint failed`, "token endpoint failed"},
		{wrap(credential.ErrBadSecret), `upstream "crm": backend credential unusable`, "credential unusable"},
		{wrap(credential.ErrOtherOrigin), `upstream "crm": refused to send its backend credential to another origin`, "credential redirect refused"},
		{errors.New("connection refused"), `upstream "crm" is unavailable`, "unavailable"},
		{context.DeadlineExceeded, `did not answer within 5s`, "timeout"},
	} {
		e, status := upstreamFailure("crm", c.err, 5*time.Second)
		if !strings.Contains(e.Message, c.want) || status != c.status {
			t.Errorf("%v: got %q (%s), want %q (%s)", c.err, e.Message, status, c.want, c.status)
		}
		if strings.Contains(e.Message, "crm-password") {
			t.Errorf("%v: the agent's error names the secret: %q", c.err, e.Message)
		}
	}
}
