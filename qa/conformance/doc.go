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
// and 2025-06-18 (bridged the other way). Needs node and npm (Debian
// package nodejs) and the npm registry; npm packages are cached under
// os.UserCacheDir. Skipped with -short.
package conformance
