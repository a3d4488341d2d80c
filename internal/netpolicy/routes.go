package netpolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/portcullis-gw/portcullis/internal/geoip"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Applier replicates a state command (the cluster node).
type Applier interface {
	Apply(ctx context.Context, cmd []byte) (any, error)
}

// ImportHandler serves POST /v1/geoip: the body is a GeoIP database file
// (?format= mmdb, dbip-csv or ip2location-csv; default detected). It parses
// the file, and replicates the serialized table as one geoip.import command;
// every node's datapath uses it from the commit on. Errors use the admin
// API's envelope {"error": {"code", "message"}}; a bad file changes nothing.
func ImportHandler(c Applier, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := geoip.ParseFormat(r.URL.Query().Get("format"))
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, geoip.MaxImportBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeAPIError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("database larger than %d bytes", tooBig.Limit))
				return
			}
			writeAPIError(w, http.StatusBadRequest, "bad_request", "reading the upload failed")
			return
		}
		if len(data) == 0 {
			writeAPIError(w, http.StatusBadRequest, "bad_request", "the body must be the GeoIP database file")
			return
		}
		if f == geoip.FormatAuto {
			if f, err = geoip.DetectFormat(data); err != nil {
				writeAPIError(w, http.StatusBadRequest, "bad_request", err.Error())
				return
			}
		}
		t, err := geoip.Parse(data, f)
		if err != nil {
			writeAPIError(w, http.StatusUnprocessableEntity, "invalid", err.Error())
			return
		}
		blob, err := t.MarshalBinary()
		if err != nil {
			writeAPIError(w, http.StatusInternalServerError, "internal", "serializing the table failed")
			return
		}
		if len(blob) > state.MaxGeoIPBytes {
			writeAPIError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the table serializes to %d bytes; at most %d replicate", len(blob), state.MaxGeoIPBytes))
			return
		}
		cmd, err := state.Validate(&state.Command{Op: state.OpGeoIPImport, Time: now().UTC(), GeoIP: blob}, state.Node{})
		if err != nil {
			writeAPIError(w, http.StatusUnprocessableEntity, "invalid", err.Error())
			return
		}
		b, err := cmd.Encode()
		if err == nil {
			_, err = c.Apply(r.Context(), b)
		}
		if err != nil {
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "replicating the table failed: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, geoip.Summarize(t, f, blob))
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": errCode, "message": msg}})
}
