package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

type echoIn = harness.EchoIn
type echoOut = harness.EchoOut

func startUpstream(t *testing.T) string { return harness.StartEchoUpstream(t, "cluster-upstream") }

// echoConfig declares the upstream, a persona that may call its echo tool
// (as echo_echo) and an agent of that persona.
func echoConfig(upstream, persona, agent string) string {
	return fmt.Sprintf(`apiVersion: portcullis/v1
kind: Upstream
metadata: {name: echo}
spec: {url: %q}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: echo}
spec:
  description: Echo text
  tools: [{tool: echo/echo, args: {text: {maxLength: 100}}}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: %s}
spec: {skills: [echo]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: %s}
spec: {persona: %s}
`, upstream, persona, agent, persona)
}

const echoTool = "echo_echo"

// endpoint is a persona's MCP endpoint on node n.
func endpoint(n *harness.Node, persona string) string {
	return n.GatewayURL() + "/p/" + persona + "/mcp"
}

// callEcho makes one tools/call of echo and checks the answer.
func callEcho(c *harness.RawClient, text string) error {
	r, err := c.CallTool(echoTool, map[string]any{"text": text})
	if err != nil {
		return err
	}
	if r.Error != nil {
		return fmt.Errorf("tools/call: %d %s", r.Error.Code, r.Error.Message)
	}
	var res struct {
		IsError           bool    `json:"isError"`
		StructuredContent echoOut `json:"structuredContent"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return fmt.Errorf("tools/call result %s: %w", r.Result, err)
	}
	if res.IsError || res.StructuredContent.Echo != text {
		return fmt.Errorf("tools/call result %s, want echo %q", r.Result, text)
	}
	return nil
}

// newAgent returns an initialized raw MCP client of a persona on node n.
func newAgent(t *testing.T, n *harness.Node, persona, key, version string) *harness.RawClient {
	t.Helper()
	c := harness.NewRawClient(endpoint(n, persona), key, 2)
	c.Version = version
	c.HTTP.Timeout = 10 * time.Second
	if err := c.Initialize(); err != nil {
		t.Fatalf("initialize %s on %s: %v\n%s", persona, n.ID(), err, n.Logs())
	}
	return c
}

// agentLoad runs one caller per node: each calls echo in a loop until stop.
type agentLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startAgentLoad(t *testing.T, nodes []*harness.Node, persona, key string, pause time.Duration) *agentLoad {
	t.Helper()
	l := &agentLoad{stop: make(chan struct{})}
	for _, n := range nodes {
		c := newAgent(t, n, persona, key, "2025-11-25")
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-time.After(pause):
				}
				if err := callEcho(c, fmt.Sprintf("%s-%d", n.ID(), i)); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("%s %s: %v", time.Now().Format("15:04:05.000"), n.ID(), err))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the callers and waits for them (idempotent).
func (l *agentLoad) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *agentLoad) Errors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errs, "\n")
}

// upstreamYAML declares Upstream name with url.
func upstreamYAML(name, url string) string {
	return fmt.Sprintf("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: %s}\nspec: {url: %q}\n", name, url)
}

// applyHTTP applies yaml through n's admin API and returns the status
// and body.
func applyHTTP(n *harness.Node, client *http.Client, yaml string) (int, string, error) {
	code, b, err := n.AdminDoClient(client, http.MethodPost, "/v1/apply", yaml)
	return code, string(b), err
}

// upstreamURL reads Upstream name through n (GET syncs with the leader).
func upstreamURL(n *harness.Node, client *http.Client, name string) (string, int, error) {
	code, b, err := n.AdminDoClient(client, http.MethodGet, "/v1/upstreams/"+name, "")
	if err != nil || code != http.StatusOK {
		return "", code, err
	}
	var d struct {
		Spec struct {
			URL string `json:"url"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return "", code, fmt.Errorf("GET upstream %s: %s: %w", name, b, err)
	}
	return d.Spec.URL, code, nil
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs clusters of real processes")
	}
}

// writeRec is one admin write of a writer.
type writeRec struct {
	start, end time.Time
	value      string
	err        error
}

// writeLoad runs one admin writer per node: each applies its own Upstream
// (w-<node>) with a new url value in a loop until stop.
type writeLoad struct {
	mu   sync.Mutex
	recs map[string][]writeRec
	stop chan struct{}
	wg   sync.WaitGroup
}

func startWriteLoad(t *testing.T, nodes []*harness.Node, pause time.Duration) *writeLoad {
	w := &writeLoad{recs: map[string][]writeRec{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, n := range nodes {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-w.stop:
					return
				case <-time.After(pause):
				}
				if !n.Running() {
					continue
				}
				v := fmt.Sprintf("http://127.0.0.1:9/%s/%d", n.ID(), i)
				r := writeRec{start: time.Now(), value: v}
				code, body, err := applyHTTP(n, client, upstreamYAML("w-"+n.ID(), v))
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("HTTP %d: %s", code, strings.TrimSpace(body))
				}
				r.end, r.err = time.Now(), err
				w.mu.Lock()
				w.recs[n.ID()] = append(w.recs[n.ID()], r)
				w.mu.Unlock()
			}
		}()
	}
	t.Cleanup(w.Stop)
	return w
}

func (w *writeLoad) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// records returns a copy of node id's writes.
func (w *writeLoad) records(id string) []writeRec {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]writeRec(nil), w.recs[id]...)
}
