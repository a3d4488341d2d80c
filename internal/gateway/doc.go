// Package gateway is the MCP data plane: one virtual MCP server per persona
// at /p/{persona}/mcp (Streamable HTTP, revisions 2025-03-26 through
// 2026-07-28) that aggregates the upstream MCP servers the persona's skills
// reference and governs every message between an agent and those upstreams.
//
// Request path: Origin/Host check, authentication, persona lookup, transport
// checks (method, Content-Type, Accept, body limit), JSON-RPC parsing,
// revision handling (initialize and a sealed session handle for the legacy
// revisions; per-request _meta and the Mcp-Method/Mcp-Name headers for
// 2026-07-28), the default-deny policy decision, the upstream call over a
// pooled connection, and one Decision record per governed request.
//
// Sessions are stateless on the node: the Mcp-Session-Id an agent receives
// is an AES-GCM sealed handle holding the persona, agent, key id, revision
// and client capabilities. Any node configured with the same SessionKey
// continues the session; upstream sessions are per node and re-created
// lazily, so a failover is invisible to the agent.
//
// Policy is compiled by the Source (see StateSource) once per control-state
// snapshot and swapped atomically; the hot path takes no global lock.
package gateway
