package appliance

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
)

// A single dev node is a one-member cluster: it records itself and its admin
// credential in the replicated state, reports itself as leader (API and
// metrics), makes join tokens, and refuses joins without a valid one,
// clearly and without writing anything.
func TestSingleNodeIsAOneMemberCluster(t *testing.T) {
	if hsm.DefaultModulePath() == "" {
		t.Skip("SoftHSM2 is not installed")
	}
	dir := t.TempDir()
	a, _ := start(t, testConfig(t, dir))
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	tok, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	do := func(method, path, body string, auth bool) (int, string) {
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	var st ClusterStatus
	for i := 0; ; i++ { // the leader records itself within a second
		code, body := do("GET", "/v1/cluster", "", true)
		if code != 200 {
			t.Fatalf("cluster status: %d %s", code, body)
		}
		json.Unmarshal([]byte(body), &st)
		if len(a.store.Current().Members) == 1 && len(a.store.Current().Admins) == 1 {
			break
		}
		if i > 100 {
			t.Fatalf("the node did not record itself: %+v", a.store.Current().Members)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Leader != st.Self || len(st.Members) != 1 || !st.Members[0].Healthy || st.Members[0].State != "leader" || !st.Serving {
		t.Fatalf("status of a single node: %+v", st)
	}
	code, body := do("GET", "/metrics", "", true)
	for _, want := range []string{"portcullis_cluster_leader 1", "portcullis_cluster_staleness_seconds 0", "portcullis_cluster_members 1", "portcullis_cluster_max_stale_seconds 30"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	code, body = do("POST", "/v1/cluster/join-tokens", `{"ttl":"10m"}`, true)
	var created struct{ Token string }
	if json.Unmarshal([]byte(body), &created); code != 201 || !strings.HasPrefix(created.Token, "pcj1.") {
		t.Fatalf("join token: %d %s", code, body)
	}
	if code, body := do("POST", "/v1/cluster/join-tokens", `{"ttl":"10s"}`, true); code != 422 || !strings.Contains(body, "between 1m and 168h") {
		t.Fatalf("a 10s token: %d %s", code, body)
	}
	if code, _ := do("POST", "/v1/cluster/join-tokens", `{}`, false); code != 401 {
		t.Fatalf("join token without the admin token: %d", code)
	}
	before := a.store.Current()
	for _, c := range []struct{ token, want string }{
		{"nonsense", "not a Portcullis join token"},
		{created.Token[:len(created.Token)-20] + "AAAAAAAAAAAAAAAAAAAA", "not a Portcullis join token"},
		{strings.Replace(created.Token, ".", ".x", 2), "not valid for this cluster"},
	} {
		req, _ := json.Marshal(joinRequest{Token: c.token, NodeID: "n9", RaftAddr: "127.0.0.1:9"})
		code, body := do("POST", "/v1/cluster/join", string(req), false)
		if code != 401 || !strings.Contains(body, c.want) {
			t.Errorf("join with %q: %d %s, want 401 %q", c.token, code, body, c.want)
		}
	}
	req, _ := json.Marshal(joinRequest{Token: created.Token, NodeID: "bad id!", RaftAddr: "127.0.0.1:9"})
	if code, body := do("POST", "/v1/cluster/join", string(req), false); code != 422 || !strings.Contains(body, "node id") {
		t.Errorf("join with a bad node id: %d %s", code, body)
	}
	req, _ = json.Marshal(joinRequest{Token: created.Token, NodeID: "n9", RaftAddr: "127.0.0.1:9", CSR: "not a csr"})
	if code, body := do("POST", "/v1/cluster/join", string(req), false); code != 422 || !strings.Contains(body, "CERTIFICATE REQUEST") {
		t.Errorf("join with a bad CSR: %d %s", code, body)
	}
	after := a.store.Current()
	if after.Index != before.Index || after.JoinTokens[strings.Split(created.Token, ".")[1]].UsedBy != "" || len(after.Members) != 1 {
		t.Fatalf("refused joins changed the state (index %d → %d)", before.Index, after.Index)
	}
	if code, body := do("DELETE", "/v1/cluster/members/"+st.Self, "", true); code != 409 || !strings.Contains(body, "last member") {
		t.Fatalf("removing the last member: %d %s", code, body)
	}
}
