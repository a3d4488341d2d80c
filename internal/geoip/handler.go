package geoip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxImportBytes bounds an uploaded database (GeoLite2-Country is ~10 MB,
// the IP2Location DB1 IPv6 CSV ~40 MB).
const MaxImportBytes = 256 << 20

// ImportResult is the JSON answer of the import route.
type ImportResult struct {
	Format     Format         `json:"format"`
	Ranges     int            `json:"ranges"`
	Prefixes   int            `json:"prefixes"`
	Countries  int            `json:"countries"`
	Bytes      int            `json:"bytes"` // serialized (compressed) size
	TopByRange map[string]int `json:"rangesByCountry,omitempty"`
}

// Summarize describes a table for the import answer.
func Summarize(t *Table, f Format, blob []byte) ImportResult {
	res := ImportResult{Format: f, Ranges: t.Len(), Bytes: len(blob), TopByRange: map[string]int{}}
	for _, c := range t.cc {
		res.TopByRange[c.String()]++
	}
	res.Countries = len(res.TopByRange)
	for range t.Prefixes() {
		res.Prefixes++
	}
	return res
}

// ImportHandler serves POST /v1/geoip (mount it with api.Config.Routes as
// {Method: "POST", Path: "/geoip"}): the request body is the database
// file, ?format= names its format (default: detected). It parses and
// serializes the table and hands the blob to apply, which replicates it
// (raft) and returns once it is committed. Bad input gets 400 with the
// parser's message and changes nothing.
func ImportHandler(apply func(ctx context.Context, blob []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeErr(w, http.StatusMethodNotAllowed, "bad_request", "use POST with the database file as the body")
			return
		}
		f, err := ParseFormat(r.URL.Query().Get("format"))
		if err != nil {
			writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("database larger than %d bytes", MaxImportBytes))
				return
			}
			writeErr(w, http.StatusBadRequest, "bad_request", "reading the upload failed")
			return
		}
		if f == FormatAuto {
			if f, err = DetectFormat(data); err != nil {
				writeErr(w, http.StatusBadRequest, "invalid", err.Error())
				return
			}
		}
		t, err := Parse(data, f)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		blob, err := t.MarshalBinary()
		if err != nil {
			writeErr(w, http.StatusInternalServerError, "internal", "serializing the table failed")
			return
		}
		if err := apply(r.Context(), blob); err != nil {
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "replicating the table failed: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Summarize(t, f, blob))
	})
}

// writeErr answers in the admin API's error envelope:
// {"error": {"code", "message"}}.
func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
