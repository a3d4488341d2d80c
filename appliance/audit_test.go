package appliance

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Every admin write leaves one admin record in the node's trail, naming the
// admin credential, the action, the objects changed with the digests of
// their documents before and after, and the result; refused writes too. No
// secret value, admin token or API key ever reaches the trail's bytes.
func TestAdminWritesAreAudited(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		t.Fatal("SoftHSM2 is not installed: apt-get install softhsm2")
	}
	t.Setenv("SOFTHSM2_CONF", "")
	dir := t.TempDir()
	a, stop := start(t, testConfig(t, dir))
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	tokb, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	tok := strings.TrimSpace(string(tokb))
	do := func(method, path, ctype, body, token string) (int, []byte) {
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	docs := func(url string) string {
		return "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: up}\nspec: {url: '" + url + "'}\n---\n" +
			"apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec: {tools: [{tool: up/x}]}\n---\n" +
			"apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: p}\nspec: {skills: [s]}\n---\n" +
			"apiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: bot}\nspec: {persona: p}\n"
	}
	digest := func(k state.Kind, name string) string { return api.ObjectDigest(a.store.Current().Get(k, name)) }

	if c, b := do("POST", "/v1/apply", "application/yaml", docs("http://127.0.0.1:9/mcp"), tok); c != 200 {
		t.Fatalf("apply: %d %s", c, b)
	}
	upV1 := digest(state.KindUpstream, "up")
	if c, b := do("POST", "/v1/apply", "application/yaml", docs("http://127.0.0.1:10/mcp"), tok); c != 200 {
		t.Fatalf("apply: %d %s", c, b)
	}
	upV2 := digest(state.KindUpstream, "up")
	c, b := do("POST", "/v1/agents/bot/keys", "", "", tok)
	var key struct{ ID, Key string }
	json.Unmarshal(b, &key)
	if c != 201 || key.Key == "" {
		t.Fatalf("create key: %d %s", c, b)
	}
	plaintext := "s3cret-" + strings.Repeat("q", 24)
	val, _ := json.Marshal(map[string][]byte{"value": []byte(plaintext)})
	if c, b := do("PUT", "/v1/secrets/db-password", "application/json", string(val), tok); c != 200 {
		t.Fatalf("put secret: %d %s", c, b)
	}
	if c, b := do("DELETE", "/v1/agents/bot/keys/"+key.ID, "", "", tok); c/100 != 2 {
		t.Fatalf("revoke: %d %s", c, b)
	}
	if c, _ := do("DELETE", "/v1/upstreams/up", "", "", tok); c != 409 {
		t.Fatalf("delete of a referenced upstream: %d, want 409", c)
	}
	if c, _ := do("POST", "/v1/apply", "application/yaml", "kind: Nonsense\n", tok); c != 422 && c != 400 {
		t.Fatalf("invalid apply: %d", c)
	}
	if c, _ := do("DELETE", "/v1/agents/bot", "", "", "wrong-token-"+strings.Repeat("z", 20)); c != 401 {
		t.Fatalf("wrong token: %d", c)
	}
	if c, _ := do("GET", "/v1/upstreams", "", "", tok); c != 200 { // a read: no record
		t.Fatalf("list: %d", c)
	}
	// The records are searchable through the admin API while the node runs.
	c, b = do("GET", "/v1/audit/records?kind=admin&cursor=0&limit=3", "", "", tok)
	var page struct {
		Records []audit.Record
		Next    string
	}
	json.Unmarshal(b, &page)
	if c != 200 || len(page.Records) != 3 || page.Next == "" {
		t.Fatalf("paged admin records: %d %s", c, b)
	}
	// The digest key comes from the HSM's MAC key: the same every time
	// (and on every node holding that key), never empty with an HSM.
	if k1, k2 := a.auditDigestKey(), a.auditDigestKey(); len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("digest key %x / %x", k1, k2)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	adir := filepath.Join(dir, "audit")
	recs, err := audit.Search(adir, audit.Filter{Kind: audit.KindAdmin})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Admin.Action+" "+r.Admin.Result)
	}
	want := []string{
		"POST /v1/apply ok", "POST /v1/apply ok", "POST /v1/agents/:name/keys ok", "PUT /v1/secrets/:name ok",
		"DELETE /v1/agents/:name/keys/:id ok", "DELETE /v1/upstreams/:name conflict", "POST /v1/apply " + recs[min(6, len(recs)-1)].Admin.Result,
		"DELETE /v1/agents/:name unauthorized",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("admin records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := recs[6].Admin.Result; r != "invalid" && r != "bad_request" {
		t.Fatalf("invalid apply recorded as %q", r)
	}
	create, update := recs[0].Admin, recs[1].Admin
	if create.Identity == "" || create.Role != "admin" || len(create.TokenID) != 8 || strings.Contains(tok, create.TokenID) {
		t.Fatalf("who: %+v", create)
	}
	if len(create.Objects) != 4 || recs[7].Admin.Identity != "" || len(recs[7].Admin.Objects) != 0 {
		t.Fatalf("objects of the first apply %+v; unauthorized %+v", create.Objects, recs[7].Admin)
	}
	find := func(a *audit.Admin, kind, name string) audit.ObjectChange {
		for _, o := range a.Objects {
			if o.Kind == kind && o.Name == name {
				return o
			}
		}
		t.Fatalf("%s %s/%s: not among %+v", a.Action, kind, name, a.Objects)
		return audit.ObjectChange{}
	}
	if o := find(create, "Upstream", "up"); o.Before != "" || o.After != upV1 {
		t.Fatalf("create digests %+v, want after %s", o, upV1)
	}
	if o := find(update, "Upstream", "up"); o.Before != upV1 || o.After != upV2 || len(update.Objects) != 1 {
		t.Fatalf("update digests %+v (objects %+v), want %s -> %s", o, update.Objects, upV1, upV2)
	}
	if o := find(recs[2].Admin, "APIKey", key.ID); o.Before != "" || o.After == "" {
		t.Fatalf("key create %+v", o)
	}
	if o := find(recs[3].Admin, "Secret", "db-password"); o.Before != "" || o.After == "" {
		t.Fatalf("secret put %+v", o)
	}
	if o := find(recs[4].Admin, "APIKey", key.ID); o.Before == "" || o.After != "" {
		t.Fatalf("key revoke %+v", o)
	}
	if rep, err := audit.Verify(adir); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	// Not one byte of the trail holds the secret, the admin token or the key.
	filepath.WalkDir(adir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, _ := os.ReadFile(p)
		if strings.HasSuffix(p, ".zst") {
			zr, _ := zstd.NewReader(bytes.NewReader(raw))
			raw, _ = io.ReadAll(zr)
			zr.Close()
		}
		for name, s := range map[string]string{"secret": plaintext, "admin token": tok, "API key": key.Key} {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("%s holds the %s", p, name)
			}
		}
		return nil
	})
}
