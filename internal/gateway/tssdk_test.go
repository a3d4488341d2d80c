package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// The official TypeScript SDK is a second, independent implementation: a
// TypeScript upstream server and a TypeScript agent, through the gateway.
// Needs node and npm (Debian packages nodejs, npm) and the npm registry.

const tsSDKVersion = "1.32.2"

// tsSDK installs @modelcontextprotocol/sdk once per machine and returns the
// directory holding node_modules.
func tsSDK(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("TypeScript SDK interop needs node and npm; skipped with -short")
	}
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install nodejs with npm (.ci/packages.d/dataplane)", bin)
		}
	}
	dir := filepath.Join(os.TempDir(), "portcullis-ts-mcp-sdk-"+tsSDKVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "ts-sdk-install-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", tmp, "@modelcontextprotocol/sdk@"+tsSDKVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("npm install @modelcontextprotocol/sdk@%s: %v\n%s", tsSDKVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil { // another test process won the race
		os.RemoveAll(tmp)
	}
	return dir
}

const tsServer = `
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { z } from 'zod';

function newServer() {
  const s = new McpServer({ name: 'ts-inventory', version: '1.0.0' });
  s.tool('lookup', 'Look up an item', { sku: z.string() }, async ({ sku }, extra) => {
    if (extra._meta?.progressToken !== undefined) {
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: extra._meta.progressToken, progress: 1, total: 2 } });
    }
    return { content: [{ type: 'text', text: 'item ' + sku + ' in stock' }] };
  });
  s.tool('purge', 'Delete everything', {}, async () => ({ content: [{ type: 'text', text: 'PURGED' }] }));
  return s;
}

const transports = {};
const sseTransports = {};
const srv = http.createServer(async (req, res) => {
  if (req.headers['authorization']) { res.writeHead(400).end('agent credential leaked'); return; }
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/sse') { // the deprecated HTTP+SSE transport
    const t = new SSEServerTransport('/messages', res);
    sseTransports[t.sessionId] = t;
    await newServer().connect(t);
    return;
  }
  let body;
  if (req.method === 'POST') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    body = JSON.parse(Buffer.concat(chunks).toString());
  }
  if (url.pathname === '/messages') {
    const t = sseTransports[url.searchParams.get('sessionId')];
    if (!t) { res.writeHead(404).end(); return; }
    await t.handlePostMessage(req, res, body);
    return;
  }
  const sid = req.headers['mcp-session-id'];
  let t = sid ? transports[sid] : undefined;
  if (!t) {
    if (req.method !== 'POST' || body?.method !== 'initialize') { res.writeHead(404).end(); return; }
    t = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => { transports[id] = t; } });
    await newServer().connect(t);
  }
  await t.handleRequest(req, res, body);
});
srv.listen(0, '127.0.0.1', () => console.log('LISTENING ' + srv.address().port));
`

const tsClient = `
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, key] = process.argv.slice(2);
const out = {};
const client = new Client({ name: 'ts-agent', version: '1.0.0' });
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: 'Bearer ' + key } } });
await client.connect(transport);
out.version = transport.protocolVersion;
out.tools = (await client.listTools()).tools.map((t) => t.name);
let progress = 0;
const r1 = await client.callTool({ name: 'ts_lookup', arguments: { sku: 'A-1' } }, undefined, { onprogress: () => { progress++; } });
out.lookup = r1.content[0].text;
out.progress = progress;
const r4 = await client.callTool({ name: 'tsold_lookup', arguments: { sku: 'B-2' } });
out.sseLookup = r4.content[0].text;
const r2 = await client.callTool({ name: 'helpdesk_get_ticket', arguments: { id: 'T-5' } });
out.ticket = r2.content[0].text;
try { await client.callTool({ name: 'ts_purge', arguments: {} }); out.purge = 'allowed'; }
catch (e) { out.purge = String(e.message); }
const r3 = await client.callTool({ name: 'helpdesk_close_ticket', arguments: { id: 'X-1' } });
out.constrained = { isError: r3.isError, text: r3.content[0].text };
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
`

func TestTypeScriptSDK(t *testing.T) {
	dir := tsSDK(t)
	work := t.TempDir()
	for name, src := range map[string]string{"server.mjs": tsServer, "client.mjs": tsClient} {
		if err := os.WriteFile(filepath.Join(work, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	// ESM resolves bare imports from the script's directory upwards.
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, "node", filepath.Join(work, "server.mjs"))
	srv.Env = env
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = tWriter{t}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				port <- p
			}
		}
	}()
	var tsURL, tsSSE string
	select {
	case p := <-port:
		tsURL = "http://127.0.0.1:" + p + "/mcp"
		tsSSE = "http://127.0.0.1:" + p + "/sse"
	case <-time.After(30 * time.Second):
		t.Fatal("the TypeScript upstream did not start")
	}

	e := newEnv(t, nil)
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams["ts"] = &state.Upstream{Meta: state.Meta{Name: "ts"}, URL: tsURL}
		s.Upstreams["tsold"] = &state.Upstream{Meta: state.Meta{Name: "tsold"}, URL: tsSSE, Transport: "sse"}
		s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "ts/lookup"}, state.ToolGrant{Tool: "tsold/lookup"})
	}))

	cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer ccancel()
	cl := exec.CommandContext(cctx, "node", filepath.Join(work, "client.mjs"), e.endpoint("support"), e.key)
	cl.Env = env
	cl.Stderr = tWriter{t}
	out, err := cl.Output()
	if err != nil {
		t.Fatalf("TypeScript agent: %v\n%s", err, out)
	}
	var got struct {
		Version     string
		Tools       []string
		Lookup      string
		SSELookup   string
		Progress    int
		Ticket      string
		Purge       string
		Constrained struct {
			IsError bool
			Text    string
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("agent output %q: %v", out, err)
	}
	if got.Version != "2025-11-25" {
		t.Errorf("negotiated %q", got.Version)
	}
	want := map[string]bool{"ts_lookup": true, "tsold_lookup": true, "helpdesk_get_ticket": true}
	for _, name := range got.Tools {
		delete(want, name)
		if name == "ts_purge" {
			t.Errorf("ungranted TypeScript tool listed")
		}
	}
	if len(want) != 0 {
		t.Errorf("tools %v lack %v", got.Tools, want)
	}
	if got.Lookup != "item A-1 in stock" || got.Progress != 1 {
		t.Errorf("lookup %q with %d progress notifications", got.Lookup, got.Progress)
	}
	if got.SSELookup != "item B-2 in stock" {
		t.Errorf("lookup over the TypeScript HTTP+SSE upstream: %q", got.SSELookup)
	}
	if got.Ticket != "helpdesk ticket T-5" {
		t.Errorf("ticket %q", got.Ticket)
	}
	if !strings.Contains(got.Purge, "not available to persona") {
		t.Errorf("denied tool: %q", got.Purge)
	}
	if !got.Constrained.IsError || !strings.Contains(got.Constrained.Text, "argument id") {
		t.Errorf("constrained call: %+v", got.Constrained)
	}
}
