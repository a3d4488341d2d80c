// A conformance "everything" server built on the official TypeScript SDK
// (@modelcontextprotocol/sdk): McpServer for the tools, resources and
// prompts, StreamableHTTPServerTransport for the wire. It implements what
// the @modelcontextprotocol/conformance suite's server scenarios call, and
// nothing of the protocol by hand. Written for Portcullis's qa/conformance
// interop matrix; run as `node server.mjs <host:port>`, serving /mcp.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  ElicitResultSchema,
  CreateMessageResultSchema,
  ListToolsRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const [host, port] = (process.argv[2] || '127.0.0.1:3000').split(/:(?=\d+$)/);

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ content: [{ type: 'text', text: t }] });

// events keeps every SSE event per stream so a client that lost a stream
// can resume it with Last-Event-ID (the SDK's EventStore interface).
function eventStore() {
  const streams = new Map(); // streamId -> [{ id, message }]
  let seq = 0;
  return {
    async storeEvent(streamId, message) {
      const id = `${streamId}_${String(++seq).padStart(10, '0')}`;
      if (!streams.has(streamId)) streams.set(streamId, []);
      streams.get(streamId).push({ id, message });
      return id;
    },
    async getStreamIdForEventId(eventId) {
      return eventId.slice(0, eventId.lastIndexOf('_'));
    },
    async replayEventsAfter(lastEventId, { send }) {
      const streamId = lastEventId.slice(0, lastEventId.lastIndexOf('_'));
      for (const ev of streams.get(streamId) || []) {
        if (ev.id > lastEventId) await send(ev.id, ev.message);
      }
      return streamId;
    },
  };
}

// The SEP-1613 tool's input schema, listed as written (JSON Schema 2020-12,
// with the SEP-2106 keywords: $anchor, allOf/anyOf, if/then/else).
const schema202012 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: { address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
};

// A tool with an argument mirrored into an HTTP header (SEP-2243), listed
// as written: the SDK's zod conversion has no x-mcp-header.
const schemaXMcpHeader = {
  type: 'object',
  properties: {
    region: { type: 'string', description: 'mirrored into Mcp-Param-Region', 'x-mcp-header': 'Region' },
    level: { type: 'integer', description: 'not mirrored' },
  },
};

const transports = new Map(); // session id -> transport

function newServer() {
  const mcp = new McpServer(
    { name: 'portcullis-qa-ts-everything', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );

  mcp.registerTool('test_simple_text', { description: 'Returns simple text' }, async () => text('This is a simple text response for testing.'));
  mcp.registerTool('test_image_content', { description: 'Returns an image' }, async () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }));
  mcp.registerTool('test_audio_content', { description: 'Returns audio' }, async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }));
  mcp.registerTool('test_embedded_resource', { description: 'Returns an embedded resource' }, async () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
  }));
  mcp.registerTool('test_multiple_content_types', { description: 'Returns text, an image and a resource' }, async () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
    ],
  }));
  mcp.registerTool('test_tool_with_logging', { description: 'Logs while it runs', inputSchema: {} }, async (_args, extra) => {
    for (const [i, msg] of ['Tool execution started', 'Tool processing data', 'Tool execution completed'].entries()) {
      if (i > 0) await sleep(50);
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'ts-everything', data: msg } });
    }
    return text('Tool with logging executed successfully');
  });
  mcp.registerTool('test_tool_with_progress', { description: 'Reports progress', inputSchema: {} }, async (_args, extra) => {
    const token = extra._meta?.progressToken;
    for (const p of [0, 50, 100]) {
      if (p > 0) await sleep(50);
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: p, total: 100, message: `step ${p} of 100` } });
      }
    }
    return text(String(token ?? 'no progress token'));
  });
  mcp.registerTool('test_error_handling', { description: 'Always fails' }, async () => {
    throw new Error('This tool intentionally returns an error for testing');
  });
  mcp.registerTool('test_reconnection', { description: 'Closes its SSE stream mid-call (SEP-1699)', inputSchema: {} }, async (_args, extra) => {
    transports.get(extra.sessionId)?.closeSSEStream(extra.requestId);
    await sleep(100);
    return text('Reconnection test completed successfully.');
  });
  mcp.registerTool('test_sampling', { description: 'Asks the client for an LLM completion', inputSchema: { prompt: z.string() } }, async ({ prompt }, extra) => {
    const res = await extra.sendRequest(
      { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } },
      CreateMessageResultSchema,
    );
    return text(`LLM response: ${res.content?.text ?? 'No response'}`);
  });
  const elicit = (params) => async (_args, extra) => {
    const res = await extra.sendRequest({ method: 'elicitation/create', params: { mode: 'form', ...params } }, ElicitResultSchema);
    return text(`Elicitation completed: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`);
  };
  mcp.registerTool('test_elicitation', { description: 'Asks the user for input', inputSchema: { message: z.string() } }, async ({ message }, extra) =>
    elicit({
      message,
      requestedSchema: { type: 'object', properties: { response: { type: 'string', description: "User's response" } }, required: ['response'] },
    })({}, extra),
  );
  mcp.registerTool('test_elicitation_sep1034_defaults', { description: 'Elicitation with defaults (SEP-1034)', inputSchema: {} }, elicit({
    message: 'Please review the form fields with defaults',
    requestedSchema: {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'User name', default: 'John Doe' },
        age: { type: 'integer', description: 'User age', default: 30 },
        score: { type: 'number', description: 'User score', default: 95.5 },
        status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
        verified: { type: 'boolean', description: 'Verification status', default: true },
      },
      required: [],
    },
  }));
  const opts = (n) => [1, 2, 3].map((i) => `${n}${i}`);
  mcp.registerTool('test_elicitation_sep1330_enums', { description: 'Elicitation with every enum form (SEP-1330)', inputSchema: {} }, elicit({
    message: 'Please select options',
    requestedSchema: {
      type: 'object',
      properties: {
        untitledSingle: { type: 'string', enum: opts('option') },
        titledSingle: { type: 'string', oneOf: opts('value').map((v, i) => ({ const: v, title: `Option ${i + 1}` })) },
        legacyEnum: { type: 'string', enum: opts('opt'), enumNames: ['Option One', 'Option Two', 'Option Three'] },
        untitledMulti: { type: 'array', minItems: 1, maxItems: 3, items: { type: 'string', enum: opts('option') } },
        titledMulti: { type: 'array', minItems: 1, maxItems: 3, items: { anyOf: opts('value').map((v, i) => ({ const: v, title: `Choice ${i + 1}` })) } },
      },
      required: [],
    },
  }));
  mcp.registerTool('json_schema_2020_12_tool', {
    description: 'Tool whose input schema uses JSON Schema 2020-12 (SEP-1613, SEP-2106)',
    inputSchema: {
      name: z.string().optional(),
      address: z.object({ street: z.string().optional(), city: z.string().optional() }).optional(),
      contactMethod: z.enum(['phone', 'email']).optional(),
      phone: z.string().optional(),
      email: z.string().optional(),
    },
  }, async (args) => text(`called with ${JSON.stringify(args)}`));
  mcp.registerTool('test_x_mcp_header', {
    description: 'An argument mirrored into the Mcp-Param-Region header (SEP-2243)',
    inputSchema: { region: z.string().optional(), level: z.number().int().optional() },
  }, async ({ region }) => text(`region=${region ?? ''}`));

  // tools/list as the SDK builds it, with the SEP-1613 tool's schema as
  // written: the SDK converts zod shapes and would drop $schema and $defs.
  const sdkList = mcp.server._requestHandlers.get('tools/list');
  mcp.server.setRequestHandler(ListToolsRequestSchema, async (req, extra) => {
    const res = await sdkList(req, extra);
    for (const t of res.tools) {
      if (t.name === 'json_schema_2020_12_tool') t.inputSchema = schema202012;
      if (t.name === 'test_x_mcp_header') t.inputSchema = schemaXMcpHeader;
    }
    return res;
  });

  mcp.registerResource('static-text', 'test://static-text', { description: 'static text', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
  }));
  mcp.registerResource('static-binary', 'test://static-binary', { description: 'static binary', mimeType: 'image/png' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }],
  }));
  mcp.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined, complete: { id: (v) => ['1', '2', '3'].filter((x) => x.startsWith(v)) } }),
    { description: 'a template', mimeType: 'application/json' },
    async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] }));
  mcp.registerResource('watched-resource', 'test://watched-resource', { description: 'a resource one can subscribe to', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content' }],
  }));
  const subscribed = new Set();
  mcp.server.setRequestHandler(SubscribeRequestSchema, async (req) => { subscribed.add(req.params.uri); return {}; });
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => { subscribed.delete(req.params.uri); return {}; });

  mcp.registerPrompt('test_simple_prompt', { description: 'a prompt without arguments' }, async () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
  }));
  mcp.registerPrompt('test_prompt_with_arguments', { description: 'a prompt with arguments', argsSchema: { arg1: z.string(), arg2: z.string() } }, async ({ arg1, arg2 }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }],
  }));
  mcp.registerPrompt('test_prompt_with_embedded_resource', { description: 'a prompt with a resource', argsSchema: { resourceUri: z.string() } }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
    ],
  }));
  mcp.registerPrompt('test_prompt_with_image', { description: 'a prompt with an image' }, async () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
    ],
  }));
  return mcp;
}

const allowedHosts = ['127.0.0.1', 'localhost', '[::1]'].flatMap((h) => [h, `${h}:${port}`]);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function jsonError(res, status, message) {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } }));
}

http.createServer(async (req, res) => {
  try {
    if (new URL(req.url, 'http://x').pathname !== '/mcp') return jsonError(res, 404, 'not found');
    const sid = req.headers['mcp-session-id'];
    let body;
    if (req.method === 'POST') {
      const raw = await readBody(req);
      try { body = JSON.parse(raw); } catch { return jsonError(res, 400, 'parse error'); }
    }
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid) return jsonError(res, 404, 'unknown session');
      if (req.method !== 'POST' || !isInitializeRequest(body)) return jsonError(res, 400, 'no session: send initialize first');
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: eventStore(),
        retryInterval: 1000,
        enableDnsRebindingProtection: true,
        allowedHosts,
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => transports.delete(transport.sessionId);
      await newServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
  } catch (err) {
    console.error('request failed:', err);
    if (!res.headersSent) jsonError(res, 500, 'internal error');
  }
}).listen(Number(port), host, () => console.log(`ts-everything listening on ${host}:${port}`));
