// Package guard is the gateway's guard stage (stage 5 of the request
// path): rate limits, concurrency caps and circuit breakers, decided in
// memory on the request's goroutine before a call goes upstream.
//
// # Rate limits
//
// A persona's spec.limits bounds each of its agents (callsPerMinute,
// callsPerHour, callsPerDay, burst, concurrency), spec.limits.tools each
// agent on one tool, spec.limits.persona all of its agents together; an
// Upstream's spec.limits bounds every agent's calls to it together. Each
// figure is a token bucket: N per period refills at N/period, holds at
// most the burst (default: the figure itself), so N calls may come at
// once and then one every period/N. A call needs a token from every
// bucket that applies; the refusal names the limit that was hit and when a
// token will be there ("rate limit: agent a of persona p may make 10 calls
// per minute; retry in 5.2s").
//
// # Across a cluster
//
// Buckets are per node, but a node also spends the tokens the others
// admitted: every ShareInterval each node sends what it admitted since
// (Export) to every other node, which deducts it (Absorb). A limit of N per
// minute is therefore N for the cluster, up to what the other nodes admit
// in one interval before they hear of each other: with k nodes and calls
// spread over them the overshoot is at most (k−1) × (the calls one node
// admits in ShareInterval), and at most (k−1) × burst when all of them
// burst at the same instant. Concurrency caps and circuit breakers are
// per node (each node has its own connections and calls in flight).
//
// # Circuit breakers
//
// Per upstream: after Failures transport failures in a row (timeouts, no
// answer, HTTP 5xx; default 5) it opens and calls are refused at once
// ("circuit open") for Cooldown (default 5s, doubling up to 2m while trial
// calls fail); then one trial call goes through (half-open) and closes it
// on success. Per agent and tool: 20 failed calls in a row open it for 30s
// — an error storm of one agent does not take the upstream from others.
//
// # Tool risk
//
// ScoreTool scores a tool from its MCP definition and its upstream's
// environment and egress (annotations, what its name and description say
// it does, free-form command/code/query/destination/path arguments). The
// gateway scores every tool when it fetches a tools list; a tool whose
// risk is High (score ≥ 60) is reached only by a grant of its exact name,
// never by a skill's "*" pattern (not listed, refused if called).
//
// # Cost
//
// Admit takes one mutex per bucket set (sharded by key) and allocates
// nothing on the allow path beyond the Ticket; see BenchmarkAdmit.
package guard
