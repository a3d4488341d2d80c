package credential

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/state"
)

type directApply struct {
	store *state.Store
	index atomic.Uint64
	// before runs before each command is applied (to simulate a racing put).
	before func()
}

func (d *directApply) Apply(_ context.Context, cmd []byte) (any, error) {
	if d.before != nil {
		f := d.before
		d.before = nil
		f()
	}
	res := d.store.Apply(&raft.Log{Type: raft.LogCommand, Index: d.index.Add(1), Data: cmd})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

func TestSecretsHandler(t *testing.T) {
	s := newStore(t, "")
	st := state.NewStore(nil)
	apply := &directApply{store: st}
	log, logs := newLogCapture(t)
	h := SecretsHandler(SecretsConfig{Keystore: s.ks, Current: st.Current, Cluster: apply, Logger: log})
	secret := canary(t)
	req := func(method, path, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
		return w
	}
	put := func(value string) *httptest.ResponseRecorder {
		b, _ := json.Marshal(map[string][]byte{"value": []byte(value)})
		return req(http.MethodPut, "/v1/secrets/crm", string(b))
	}

	if w := put(secret); w.Code != 200 || !strings.Contains(w.Body.String(), `"version":1`) {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	// A put that loses a race re-seals for the next version and succeeds.
	apply.before = func() {
		sealed, _ := s.ks.Seal(context.Background(), "crm", 2, []byte("other"))
		cmd, _ := (&state.Command{Op: state.OpSecretPut, Secret: &state.Secret{Name: "crm", Version: 2, Sealed: sealed}}).Encode()
		st.Apply(&raft.Log{Type: raft.LogCommand, Index: apply.index.Add(1), Data: cmd})
	}
	if w := put(secret + "-v3"); w.Code != 200 || !strings.Contains(w.Body.String(), `"version":3`) {
		t.Fatalf("racing put: %d %s", w.Code, w.Body)
	}
	u := KeystoreUnsealer{Keystore: s.ks, Lookup: StateLookup(st.Current)}
	if pt, v, err := u.Unseal(context.Background(), "crm"); err != nil || v != 3 || string(pt) != secret+"-v3" {
		t.Fatalf("stored v%d %v", v, err)
	}

	for name, tc := range map[string]struct {
		w    *httptest.ResponseRecorder
		code int
	}{
		"empty":        {put(""), 400},
		"too large":    {put(strings.Repeat("x", MaxSecretBytes+1)), 413},
		"not json":     {req(http.MethodPut, "/v1/secrets/crm", secret), 400},
		"unknown key":  {req(http.MethodPut, "/v1/secrets/crm", `{"value":"eA==","x":1}`), 400},
		"bad name":     {req(http.MethodPut, "/v1/secrets/Bad%20Name", `{"value":"eA=="}`), 400},
		"no get value": {req(http.MethodGet, "/v1/secrets/crm", ""), 405},
		"post list":    {req(http.MethodPost, "/v1/secrets", ""), 405},
		"delete none":  {req(http.MethodDelete, "/v1/secrets/nope", ""), 404},
	} {
		if tc.w.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", name, tc.w.Code, tc.w.Body, tc.code)
		}
		if strings.Contains(tc.w.Body.String(), secret) {
			t.Errorf("%s: the answer holds the secret", name)
		}
	}
	if v := st.Current().Secrets["crm"].Version; v != 3 {
		t.Fatalf("bad requests changed the secret: version %d", v)
	}

	w := req(http.MethodGet, "/v1/secrets", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"crm"`) || strings.Contains(w.Body.String(), "sealed") {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}

	// The HSM gone: 503, nothing stored.
	if err := s.ks.Close(); err != nil {
		t.Fatal(err)
	}
	if w := put("new-" + secret); w.Code != 503 || !strings.Contains(w.Body.String(), "HSM") {
		t.Fatalf("put without HSM: %d %s", w.Code, w.Body)
	}
	if v := st.Current().Secrets["crm"].Version; v != 3 {
		t.Fatalf("failed put changed the secret: version %d", v)
	}
	if w := req(http.MethodDelete, "/v1/secrets/crm", ""); w.Code != 200 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, ok := st.Current().Secrets["crm"]; ok {
		t.Fatal("deleted secret still stored")
	}
	logs.assertAbsent(t, secret)
}
