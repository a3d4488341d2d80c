// Package gateway is the MCP data plane: one virtual MCP server per persona
// at /p/{persona}/mcp (Streamable HTTP, revisions 2025-03-26 through
// 2026-07-28) that aggregates the upstream MCP servers the persona's skills
// reference and governs every message between an agent and those upstreams.
//
// Request path: Origin/Host check, authentication, persona lookup, transport
// checks (method, Content-Type, Accept, body limit; nesting depth and
// number range, limits.go), JSON-RPC parsing (batches capped by MaxBatch),
// revision handling (initialize and a sealed session handle for the legacy
// revisions; per-request _meta and the Mcp-Method/Mcp-Name/Mcp-Param-*
// headers for 2026-07-28), the default-deny policy decision, data-loss
// prevention on the arguments (inspect.go; an ICAP service too, if
// configured), the upstream call over a pooled connection, data-loss
// prevention on the result, its errors and the call's notifications, and one
// Decision record per governed request (and per request refused at the door).
//
// DLP: every persona gets an engine compiled once per view from its rules
// (credentials in arguments are redacted even without rules); taint
// (fingerprints of sensitive values a session received, per upstream
// environment and egress) is kept per legacy session, or per agent key for
// 2026-07-28, on the node, and forgotten when a session is DELETEd.
//
// Catalog: tools and prompts are exposed as "<prefix>_<name>" (prefix: the
// upstream's name or its toolPrefix; empty exposes the upstream's own
// names), sanitized to [A-Za-z0-9_-]{1,64}; the first identity in
// (upstream, name) order keeps a clean name, collisions and over-long names
// get a hash suffix. Lists are cached per upstream, refreshed on
// list_changed, on reconnect and after five minutes, and filtered per
// persona; agents hear list_changed only for upstreams their role uses,
// and after a control-state change only for those of their persona's lists
// (tools, prompts, resources) that changed: each listener keeps a print of
// the lists as its agent last could know them (gateway.go announce).
//
// Bridging: a 2026-07-28 agent facing an older upstream gets MRTR
// input_required results for the upstream's server-to-client requests (the
// call waits, parked, for the agent's retry); a legacy agent facing a
// 2026-07-28 upstream gets the upstream's input requests relayed as
// server-to-client requests on its response stream and the call retried
// with the answers. Results get resultType (and cache fields) for
// 2026-07-28 agents, resource links become text for 2025-03-26 agents.
//
// Sessions are stateless on the node: the Mcp-Session-Id an agent receives
// is an AES-GCM sealed handle holding the persona, agent, key id, revision
// and client capabilities. Any node configured with the same SessionKey
// continues the session; upstream sessions are per node and re-created
// lazily, so a failover is invisible to the agent. What stays node-local:
// server-to-client requests awaiting an agent's answer, parked MRTR calls
// (a retry on another node starts the call over), replay buffers of
// response streams (resumable with Last-Event-ID on the same node), legacy
// resource subscriptions and DELETEd session ids.
//
// Policy is compiled by the Source (see StateSource) once per control-state
// snapshot and swapped atomically; the hot path takes no global lock.
package gateway
