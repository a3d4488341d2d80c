package gateway

import "net/http"

// PersonaHandler serves one persona's MCP endpoint at /mcp, for the
// persona's dedicated listener (spec.endpoint.listen). It is the same
// endpoint as /p/<persona>/mcp on the shared listener: the same
// authentication, policy and pipeline, and the same Config.Routes.
func (g *Gateway) PersonaHandler(persona string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		r.SetPathValue("persona", persona)
		g.serve(w, r)
	})
	g.mountRoutes(mux)
	return mux
}
