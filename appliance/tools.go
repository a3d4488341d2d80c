package appliance

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/guard"
)

// toolsRoutes serve the tool catalog with risk scores on the admin API.
func (a *Appliance) toolsRoutes() []api.Route {
	return []api.Route{{Method: http.MethodGet, Path: "/tools", Handler: http.HandlerFunc(a.serveTools)}}
}

// toolInfo is one upstream tool as GET /v1/tools reports it.
type toolInfo struct {
	Tool        string     `json:"tool"` // upstream/name, as skills grant it
	Upstream    string     `json:"upstream"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Risk        guard.Risk `json:"risk"`
	// ExactGrantOnly: a skill's "*" pattern does not reach it (high risk).
	ExactGrantOnly bool `json:"exactGrantOnly"`
}

// serveTools is GET /v1/tools: every upstream's tools from this node's
// cache (lists not loaded yet are fetched, waiting up to 10 s), each with
// its automatic risk score and reasons, and the upstreams whose list could
// not be had.
func (a *Appliance) serveTools(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	cat := a.gw.UpstreamTools(ctx)
	items := make([]toolInfo, 0, len(cat.Tools))
	for _, t := range cat.Tools {
		items = append(items, toolInfo{Tool: t.ID(), Upstream: t.Upstream, Name: t.Name, Description: shortDescription(t.Definition),
			Risk: t.Risk, ExactGrantOnly: t.Risk.High()})
	}
	unavailable := map[string]string{}
	for name, err := range cat.Unavailable {
		unavailable[name] = err.Error()
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "unavailable": unavailable})
}

// shortDescription is a tool definition's description, cut at 200 bytes.
func shortDescription(def []byte) string {
	var d struct {
		Description string `json:"description"`
	}
	_ = json.Unmarshal(def, &d)
	if len(d.Description) > 200 {
		return d.Description[:197] + "..."
	}
	return d.Description
}
