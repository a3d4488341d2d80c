package xdp

import (
	"encoding/json"
	"net/http"
)

// StatsHandler serves Datapath.Stats as JSON, for the admin API route
// GET /v1/xdp/stats that `portcullis xdp stats` reads (mount it with
// api.Config.Routes as {Method: "GET", Path: "/xdp/stats"}).
func StatsHandler(d *Datapath) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeErr(w, http.StatusMethodNotAllowed, "bad_request", "use GET")
			return
		}
		s, err := d.Stats()
		if err != nil {
			writeErr(w, http.StatusInternalServerError, "internal", "reading the XDP counters failed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
}

// writeErr answers in the admin API's error envelope.
func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
