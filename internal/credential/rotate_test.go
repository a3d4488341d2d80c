package credential

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// TestRotateHandler: a rotation re-encrypts every secret under the new
// sealing key at the same version; the values still open, a put afterwards
// works, nothing is shown, and a multi-node cluster is refused.
func TestRotateHandler(t *testing.T) {
	s := newStore(t, "")
	st := state.NewStore(nil)
	apply := &directApply{store: st}
	log, logs := newLogCapture(t)
	cfg := SecretsConfig{Keystore: s.ks, Current: st.Current, Cluster: apply, Logger: log}
	secrets := SecretsHandler(cfg)
	values := map[string]string{"crm": canary(t), "wiki": canary(t)}
	for name, v := range values {
		b, _ := json.Marshal(map[string][]byte{"value": []byte(v)})
		w := httptest.NewRecorder()
		secrets.ServeHTTP(w, httptest.NewRequest(http.MethodPut, "/v1/secrets/"+name, strings.NewReader(string(b))))
		if w.Code != 200 {
			t.Fatalf("put %s: %d %s", name, w.Code, w.Body)
		}
	}
	before := map[string]state.Secret{}
	for name, sec := range st.Current().Secrets {
		before[name] = *sec
	}

	voters := 1
	rotate := RotateHandler(cfg, func() int { return voters })
	w := httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/seal-keys/rotate", nil))
	if w.Code != 200 {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	var res RotateResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.KeyVersion != 2 || strings.Join(res.Resealed, ",") != "crm,wiki" {
		t.Fatalf("rotate answered %s (%v)", w.Body, err)
	}
	u := KeystoreUnsealer{Keystore: s.ks, Lookup: StateLookup(st.Current)}
	for name, v := range values {
		sec := st.Current().Secrets[name]
		kv, err := hsm.KeyVersionOf(sec.Sealed)
		if err != nil || kv != 2 {
			t.Fatalf("%s sealed under key v%d after rotation (%v)", name, kv, err)
		}
		if sec.Version != before[name].Version || string(sec.Sealed) == string(before[name].Sealed) || !sec.Updated.Equal(before[name].Updated) {
			t.Fatalf("%s after rotation: version %d (was %d), updated %v (was %v)", name, sec.Version, before[name].Version, sec.Updated, before[name].Updated)
		}
		pt, _, err := u.Unseal(context.Background(), name)
		if err != nil || string(pt) != v {
			t.Fatalf("%s does not open after rotation: %v", name, err)
		}
	}
	// Again: a new key, both resealed again.
	w = httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/seal-keys/rotate", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"keyVersion":3`) {
		t.Fatalf("second rotate: %d %s", w.Code, w.Body)
	}

	voters = 3
	w = httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/seal-keys/rotate", nil))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "ceremony") {
		t.Fatalf("rotate on a 3-node cluster: %d %s", w.Code, w.Body)
	}
	if kv, _ := s.ks.CurrentKeyVersion(context.Background()); kv != 3 {
		t.Fatalf("a refused rotation changed the key: v%d", kv)
	}
	voters = 1
	w = httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/seal-keys/rotate", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET rotate: %d", w.Code)
	}
	for _, v := range values {
		logs.assertAbsent(t, v)
	}
}
