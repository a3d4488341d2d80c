package credential

import (
	"context"
	"encoding/json"
	"errors"
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

	dist := &fakeDist{}
	rotate := RotateHandler(cfg, dist)
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

	if dist.distributed != 2 {
		t.Fatalf("keys distributed %d times, want once per rotation", dist.distributed)
	}
	dist.checkErr = errors.New("node n3 is unreachable")
	w = httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/seal-keys/rotate", nil))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "n3 is unreachable") || !strings.Contains(w.Body.String(), "no key was made") {
		t.Fatalf("rotate with a member unreachable: %d %s", w.Code, w.Body)
	}
	if kv, _ := s.ks.CurrentKeyVersion(context.Background()); kv != 3 {
		t.Fatalf("a refused rotation changed the key: v%d", kv)
	}
	dist.checkErr, dist.err = nil, errors.New("node n2 went away")
	sealedBefore := string(st.Current().Secrets["crm"].Sealed)
	w = httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/seal-keys/rotate", nil))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "not resealed") || string(st.Current().Secrets["crm"].Sealed) != sealedBefore {
		t.Fatalf("rotate whose key did not reach a node: %d %s (secrets resealed: %v)", w.Code, w.Body, string(st.Current().Secrets["crm"].Sealed) != sealedBefore)
	}
	w = httptest.NewRecorder()
	rotate.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/seal-keys/rotate", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET rotate: %d", w.Code)
	}
	for _, v := range values {
		logs.assertAbsent(t, v)
	}
}

type fakeDist struct {
	checkErr, err error
	distributed   int
}

func (d *fakeDist) Check(context.Context) error { return d.checkErr }
func (d *fakeDist) Distribute(context.Context) error {
	if d.err != nil {
		return d.err
	}
	d.distributed++
	return nil
}
