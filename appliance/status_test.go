package appliance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestUpstreamStatus: GET /v1/upstreams says which upstream this node
// reaches (with its tool count) and which it does not (with why), so a
// shorter tools/list is never a silent one; and what GET prints applies
// again unchanged ("status" is ignored on apply).
func TestUpstreamStatus(t *testing.T) {
	s := sdk.NewServer(&sdk.Implementation{Name: "helpdesk", Version: "1"}, nil)
	for _, name := range []string{"get_ticket", "search_tickets"} {
		sdk.AddTool(s, &sdk.Tool{Name: name}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{}, nil, nil
		})
	}
	up := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
	t.Cleanup(up.Close) // after the node stops (cleanups run last first): it holds a stream open
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/mcp"
	dead.Close() // nothing listens there any more

	dir := t.TempDir()
	cfg := testConfig(t, filepath.Join(dir, "node"))
	a, _ := start(t, cfg)
	admin := "http://" + a.AdminAddr()
	waitHealthy(t, http.DefaultClient, admin+"/healthz")
	tok, _ := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := call("POST", "/v1/apply", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: helpdesk}\nspec: {url: \""+up.URL+"\"}\n---\napiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: gone}\nspec: {url: \""+deadURL+"\"}\n"); code != 200 {
		t.Fatalf("apply: %d %s", code, b)
	}
	type status struct {
		State, Error string
		Tools        int
	}
	var got map[string]status
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := call("GET", "/v1/upstreams", "")
		if code != 200 {
			t.Fatalf("GET /v1/upstreams: %d %s", code, b)
		}
		var l struct {
			Items []struct {
				Metadata struct{ Name string }
				Status   *status
			}
		}
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		got = map[string]status{}
		for _, it := range l.Items {
			if it.Status != nil {
				got[it.Metadata.Name] = *it.Status
			}
		}
		if got["helpdesk"].State != "unknown" && got["gone"].State != "unknown" && len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses never settled: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := got["helpdesk"]; h.State != "up" || h.Tools != 2 || h.Error != "" {
		t.Errorf("helpdesk: %+v, want up with 2 tools", h)
	}
	if g := got["gone"]; g.State != "down" || !strings.Contains(g.Error, "connect") {
		t.Errorf("gone: %+v, want down saying it could not connect", g)
	}

	// The same, as a gauge on the node's /metrics.
	code, metrics := call("GET", "/v1/metrics", "")
	for _, want := range []string{`portcullis_upstream_up{upstream="helpdesk"} 1`, `portcullis_upstream_up{upstream="gone"} 0`} {
		if code != 200 || !strings.Contains(string(metrics), want) {
			t.Errorf("/v1/metrics (%d) lacks %s", code, want)
		}
	}

	// GET's output, status included, applies again as an unchanged object.
	_, one := call("GET", "/v1/upstreams/helpdesk", "")
	if !strings.Contains(string(one), `"status"`) {
		t.Fatalf("GET one upstream shows no status: %s", one)
	}
	if code, b := call("POST", "/v1/apply", string(one)); code != 200 || !strings.Contains(string(b), "unchanged") {
		t.Fatalf("re-applying GET's output: %d %s, want it accepted as unchanged", code, b)
	}
}
