// Package perf measures what the gateway costs: tools/call through a
// persona endpoint against the same upstream called directly, in one run,
// with the same client and concurrency. It prints latency percentiles,
// throughput and the appliance's memory; it never asserts timings.
package perf
