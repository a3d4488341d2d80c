package appliance

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/icap"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// dlpKeyLabel is the HSM MAC input the DLP key is derived from.
const dlpKeyLabel = "portcullis/dlp/key/v1"

// dlpKey is the key of DLP tokens and taint fingerprints: with an HSM it is
// derived from the HSM's MAC key (shared by every node of the cluster, so
// tokens agree everywhere; one HSM round trip at start instead of one per
// sensitive value). Without an HSM it is nil and the gateway uses a random
// per-process key, and says so.
func (a *Appliance) dlpKey() (dlp.MAC, error) {
	if a.keystore == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := a.keystore.MAC(ctx, []byte(dlpKeyLabel))
	if err != nil {
		return nil, fmt.Errorf("derive the DLP key from the HSM: %w", err)
	}
	return dlp.NewHMAC(k)
}

// icapConfig builds the gateway's ICAP stage from --icap-url and
// --icap-mode (nil when no URL is set).
func icapConfig(cfg Config) (*gateway.ICAPConfig, error) {
	if cfg.ICAPURL == "" {
		return nil, nil
	}
	u, err := url.Parse(cfg.ICAPURL)
	if err != nil || u.Scheme != "icap" || u.Host == "" {
		return nil, fmt.Errorf("--icap-url %q: want icap://HOST[:PORT]/SERVICE", cfg.ICAPURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "1344")
	}
	svc := strings.Trim(u.Path, "/")
	if svc == "" {
		return nil, fmt.Errorf("--icap-url %q: name the service, e.g. icap://127.0.0.1:1344/echo", cfg.ICAPURL)
	}
	c, err := icap.New(icap.Config{Addr: addr, Service: svc, Timeout: cfg.ICAPTimeout, Logger: cfg.Logger.With("component", "icap")})
	if err != nil {
		return nil, fmt.Errorf("--icap-url: %w", err)
	}
	ic := &gateway.ICAPConfig{Client: c, FailOpen: cfg.ICAPFailOpen}
	modes := cfg.ICAPModes
	if len(modes) == 0 {
		modes = []string{"reqmod", "respmod"}
	}
	for _, m := range modes {
		switch strings.ToLower(strings.TrimSpace(m)) {
		case "reqmod":
			ic.ReqMod = true
		case "respmod":
			ic.RespMod = true
		case "both":
			ic.ReqMod, ic.RespMod = true, true
		default:
			return nil, fmt.Errorf("--icap-mode %q: want reqmod, respmod (comma-separated) or both", m)
		}
	}
	return ic, nil
}

// validateDLP is the admin API's extra check of applied objects: a
// persona's DLP rules must name detectors this build knows. (The state
// machine cannot ask package dlp, which imports state.)
func validateDLP(o state.Object) []*state.FieldError {
	p, ok := o.(*state.Persona)
	if !ok {
		return nil
	}
	var errs []*state.FieldError
	for i, r := range p.DLP {
		if _, err := dlp.PolicyFromSpec([]state.DLPRule{r}); err != nil {
			msg := err.Error()
			if _, after, found := strings.Cut(msg, "rule 1: "); found {
				msg = after
			}
			errs = append(errs, &state.FieldError{Field: fmt.Sprintf("spec.dlp[%d]", i), Msg: msg})
		}
	}
	return errs
}
