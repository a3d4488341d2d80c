// Package conformance checks the gateway against the official MCP
// conformance suite (@modelcontextprotocol/conformance on npm), an
// implementation nobody on the team wrote.
//
// The test runs the suite's server scenarios twice per setup: directly
// against a conformance-capable upstream (the Go SDK's everything-server,
// built from the module cache), and through the real portcullis binary at
// /p/<persona>/mcp, where a persona grants that upstream's tools,
// resources and prompts. Every scenario that passes directly must pass
// through the gateway, unless it is listed in governed with the reason the
// gateway deliberately differs. The suite cannot send an Authorization
// header, so a loopback reverse proxy made by the test adds the agent's key
// and changes nothing else (Host and Origin pass unchanged, so the DNS
// rebinding scenario still reaches the gateway's own checks).
//
// Setups: a stateful upstream, a stateless one (the gateway speaks
// 2026-07-28 to it and bridges), and the stateful one pinned to 2025-03-26
// and 2025-06-18 (bridged the other way). Two releases of the suite run:
// npm's latest and the newest pre-release, whose 2026-07-28 scenarios make
// the suite's client a 2026-07-28 agent.
//
// The client scenarios make the gateway the client: the test binary, run
// by the suite as its client command, declares the scenario's server as an
// Upstream of the running node and drives a call through it as an agent;
// the Go SDK's everything-client is the reference. Scenarios the gateway
// deliberately fails are listed with the refusal they must show.
//
// TestMatrix is the interop matrix (go test ./qa/conformance -run Matrix
// -v): the suite's server scenarios (npm's latest at the revisions it
// knows, 2025-06-18 and 2025-11-25, and the pre-release at every one),
// directly and through the gateway, against upstreams built on each
// popular server SDK:
//
//   - the Go SDK (go.mod's version): its everything-server, stateful for
//     the initialize revisions, stateless for 2026-07-28;
//   - the TypeScript SDK (@modelcontextprotocol/sdk from npm, up to
//     2025-11-25): testdata/ts-everything, the SDK's McpServer and
//     StreamableHTTPServerTransport (the SDK ships no conformance server);
//   - mark3labs/mcp-go: its own examples/conformance server, built with go
//     install at the version named in matrix_test.go;
//   - Python FastMCP (pip mcp): printed as blocked, since PyPI is
//     unreachable where this runs.
//
// A row is an SDK, a suite release, an upstream revision (the Upstream is
// pinned to it) and an agent revision (the suite runs with --suite all
// --spec-version set to it): the upstream's, and for 2025-03-26 upstreams
// a 2025-11-25 agent too, since the suite has one 2025-03-26 scenario
// only. An SDK without 2026-07-28 gets one more row, a 2026-07-28 agent
// bridged to its newest revision. The table prints scenarios passed directly and through
// the gateway and the gateway-only failures; each row's failures are
// listed below it. A scenario that passes directly must pass through the
// gateway unless matrixGoverned lists it with the reason; one that fails
// only through the gateway is run again alone (three times through the
// gateway, then five times directly) and blamed on the gateway only when
// it never passes through it and always passes directly (mcp-go sometimes
// drops a call's last notification, directly too). The runs go in
// parallel (-parallel, GOMAXPROCS by default); the table is also written
// to $PORTCULLIS_QA_OUT/interop-matrix.txt when that is set.
//
// Needs node and npm (Debian package nodejs), the npm registry and the Go
// module proxy; npm packages are cached under os.UserCacheDir. Skipped
// with -short.
package conformance
