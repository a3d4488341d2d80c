package geoip

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestImportHandler(t *testing.T) {
	var got []byte
	h := ImportHandler(func(_ context.Context, blob []byte) error { got = blob; return nil })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/geoip", strings.NewReader(dbipCSV)))
	if rec.Code != 200 {
		t.Fatalf("import: %d %s", rec.Code, rec.Body)
	}
	var res ImportResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatDBIPCSV || res.Ranges != 4 || res.Countries != 3 {
		t.Fatalf("result: %+v", res)
	}
	tbl, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Lookup(addr("1.0.2.3")).String() != "CN" {
		t.Fatal("replicated table does not map 1.0.2.3 to CN")
	}

	got = nil
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/geoip?format=dbip-csv", strings.NewReader("1.0.0.0,1.0.0.255,Australia\n")))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "line 1") || got != nil {
		t.Fatalf("bad file: %d %s, applied=%v", rec.Code, rec.Body, got != nil)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/geoip?format=xml", strings.NewReader(dbipCSV)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("bad format: %d", rec.Code)
	}
	fail := ImportHandler(func(context.Context, []byte) error { return errors.New("no leader") })
	rec = httptest.NewRecorder()
	fail.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/geoip", strings.NewReader(dbipCSV)))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("apply failure: %d", rec.Code)
	}
}
