package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Each write request gives one AdminAction: who, the route, the objects its
// commands changed with digests matching the stored documents, the result;
// reads give none, and a write the node makes on its own while an admin
// write runs is not attributed to the admin.
func TestAdminActions(t *testing.T) {
	var mu sync.Mutex
	var acts []AdminAction
	var f *fixture
	encode := func(id string) []byte {
		cmd := &state.Command{Op: state.OpAdminPut, Time: time.Now().UTC(), Admin: &state.AdminCredential{ID: id, Hash: make([]byte, 32)}}
		p, _, err := f.store.Prepare(cmd, state.Node{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := p.Encode()
		return b
	}
	// A route that writes through the tracked applier while the node
	// makes a write of its own (as its membership writes are) in the same
	// moment.
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := f.cfg.Cluster.Apply(context.Background(), encode("admin@background")); err != nil {
			t.Error(err)
		}
		if _, err := TrackApplies(f.cfg.Cluster).Apply(r.Context(), encode("admin@route")); err != nil {
			t.Error(err)
		}
		WriteJSON(w, 200, map[string]string{})
	})
	f = newFixture(t, func(c *Config) {
		c.OnAdminWrite = func(a AdminAction) { mu.Lock(); acts = append(acts, a); mu.Unlock() }
		c.Routes = []Route{{Method: "POST", Path: "/test/write", Handler: route}}
	})
	if r := f.applyFiles(ApplyFile{Name: "ex.yaml", Content: example(t)}); r.status != 200 {
		t.Fatalf("apply: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/v1/test/write", "", nil); r.status != 200 {
		t.Fatalf("route: %d %s", r.status, r.raw)
	}
	f.do("GET", "/v1/upstreams", "", nil)
	r := f.do("POST", "/v1/agents/triage-bot/keys", "", nil)
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.raw)
	}
	keyID, _ := r.body["id"].(string)
	token, _ := r.body["key"].(string)
	if r := f.do("DELETE", "/v1/upstreams/helpdesk", "", nil); r.status != 409 {
		t.Fatalf("delete referenced: %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acts) != 4 {
		t.Fatalf("%d admin actions, want 4 (apply, route, key create, refused delete): %+v", len(acts), acts)
	}
	apply, rt, key, del := acts[0], acts[1], acts[2], acts[3]
	if len(rt.Objects) != 1 || rt.Objects[0].Name != "admin@route" || rt.Route != "/v1/test/write" {
		t.Fatalf("route's objects %+v: want only its own write, not the node's", rt.Objects)
	}
	if apply.Identity != "admin@local" || apply.Role != "admin" || apply.Route != "/v1/apply" || apply.Method != "POST" || apply.Result != "ok" || apply.Status != 200 {
		t.Fatalf("apply action %+v", apply)
	}
	snap := f.store.Current()
	if len(apply.Objects) == 0 {
		t.Fatal("apply changed no objects")
	}
	for _, o := range apply.Objects {
		obj := snap.Get(state.Kind(o.Kind), o.Name)
		if obj == nil || o.Before != "" || o.After != ObjectDigest(obj) {
			t.Fatalf("apply object %+v: want created with digest of the stored document", o)
		}
	}
	if len(key.Objects) != 1 || key.Objects[0].Kind != "APIKey" || key.Objects[0].Name != keyID || key.Objects[0].After == "" {
		t.Fatalf("key create objects %+v", key.Objects)
	}
	if del.Result != CodeConflict || del.Status != 409 || len(del.Objects) != 0 || del.Path != "/v1/upstreams/helpdesk" {
		t.Fatalf("refused delete %+v", del)
	}
	for _, a := range acts {
		for _, o := range a.Objects {
			if o.Name == "admin@background" {
				t.Fatalf("the node's own write is attributed to %s", a.Route)
			}
		}
		if strings.Contains(a.TokenID, f.token) || (token != "" && strings.Contains(a.Path, token)) || len(a.TokenID) != 8 {
			t.Fatalf("token id %q", a.TokenID)
		}
	}
}
