// Package mcp implements the Model Context Protocol wire format the gateway
// needs: JSON-RPC 2.0 messages with byte-exact ids, the per-revision rules of
// 2025-03-26, 2025-06-18, 2025-11-25 and 2026-07-28, the request metadata
// headers (Mcp-Method, Mcp-Name with its Base64 sentinel), Server-Sent
// Events, and two upstream clients: Streamable HTTP (every revision) and the
// deprecated HTTP+SSE transport of 2024-11-05.
//
// Parsing reads only what routing and policy need (method, id, params.name,
// params.uri, _meta); payloads stay json.RawMessage and pass through
// unchanged.
package mcp
