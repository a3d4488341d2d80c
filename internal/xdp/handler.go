package xdp

import (
	"encoding/json"
	"net/http"
)

// StatsHandler serves Datapath.Stats as JSON, for the admin API route
// GET /api/v1/xdp/stats that `portcullis xdp stats` reads.
func StatsHandler(d *Datapath) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s, err := d.Stats()
		if err != nil {
			http.Error(w, "reading XDP counters failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
}
