// Package export sends the gateway's decisions to the systems a security
// team already runs: an OpenTelemetry collector (OTLP logs, traces and
// metrics, over gRPC or HTTP, with the official OTel Go SDK), a syslog
// receiver (RFC 5424 over TCP or TLS, CEF or JSON payloads) and an alert
// webhook. It is a gateway.Sink beside the durable audit trail
// (internal/audit), which stays the record of truth: export is best effort
// and never holds up a request.
//
// # What is exported
//
// Per governed request, the fields of the audit record (time, node, agent,
// persona, key id, client IP, session, revision, method, tool, upstream,
// skill, decision, reason, deciding stage, DLP outcomes and finding counts
// by detector id, ICAP outcome, latency, upstream status). Never an
// argument, a result, a DLP match or a credential: gateway.Decision holds
// none.
//
//   - OTLP logs: one record per request (event name portcullis.decision,
//     severity INFO/WARN/ERROR for allow/deny/error, attributes
//     portcullis.agent, portcullis.tool, portcullis.decision, …, and the
//     verdicts as a list), in the context of the request's span.
//   - OTLP traces: one server span per request ("tools/call TOOL"), from
//     the request's arrival to its answer, with one child span per stage
//     verdict ("stage policy", attributes portcullis.stage/outcome/reason,
//     status Error on a refusal), running from the verdict before it (or
//     the request's arrival) to its own (gateway.Verdict.At), so it
//     includes stages that judged nothing in between. The trace id is the
//     exporter's own (the gateway has none yet).
//   - OTLP metrics: portcullis.decisions (counter) and
//     portcullis.request.duration (histogram, seconds), both by persona and
//     decision, exported every OTLPConfig.MetricInterval.
//   - syslog: one RFC 5424 message per request, octet-counted (RFC 6587
//     §3.4.1) on a TCP or TLS (RFC 5425) connection, facility 13 (log
//     audit) by default, severity 6/4/3 for allow/deny/error, APP-NAME
//     portcullis, MSGID decision; the body a CEF:0 event (see appendCEF
//     for the keys) or the record as JSON.
//   - webhook: one POST of the record as JSON per alerting decision (deny
//     and error by default), with a bearer token if configured.
//
// # Back-pressure
//
// Write runs on the gateway's audit goroutine and only puts a pointer on
// each destination's bounded queue (Config.QueueSize, 4096): it never
// waits on a network. One goroutine per destination takes what has queued
// (up to 512 records) and sends it; a full queue drops new records,
// counted in portcullis_export_dropped_total{exporter,reason="queue_full"},
// and the first drop after a quiet spell is logged (then at most a line
// per 10s). A failed send loses its batch (reason send_failed), is
// counted in portcullis_export_errors_total and makes the destination
// pause, doubling from 0.5s to 30s, before the next try; connections are
// made again on the next send. Sends are bounded: syslog writes have a 10s
// deadline (a receiver that accepts and never reads is cut off), OTLP
// exports 5s, webhook tries 5s each (3 tries, pauses of 0.5s and 1s).
//
// The OTel SDK's batch processors would drop silently when a collector is
// slow, so this package gives the SDK providers its own processor, which
// only collects what the destination's goroutine emitted; that goroutine
// then exports logs and spans synchronously. Exporter retries in the SDK
// are off (the destination's pause replaces them). Metrics are aggregated
// in memory and exported by the SDK's periodic reader; a failed metric
// export is counted (exporter="otlp-metrics") and the next one carries the
// cumulative values again.
//
// # Cost
//
// `go test -run '^$' -bench . -count 5 ./internal/export` on the shared
// 2-core machine (load average 7–12, so absolute figures are inflated):
// Write adds 15–23 ns with no destination (the appliance does not even
// install the Sink then), 0.8–1.1 µs with three destinations that are all
// stuck (every record takes the drop path: one 352-byte copy of the
// Decision, three counted drops), 1.5–2.2 µs with one live syslog
// receiver. Off the request path, per record: a CEF frame costs 2–5 µs on
// the syslog goroutine, and the OTel SDK work (three spans, a log record,
// two metric points) 31–64 µs on the OTLP goroutine, so one OTLP
// destination keeps up with some 15–30k records/s here and counts drops
// beyond that.
//
// # Not built
//
// A spool on disk for records lost while a destination is down (the
// audit trail has them; `portcullis audit search` replays nothing to a
// destination yet), syslog over UDP, client certificates for syslog/OTLP,
// and propagation of an agent's own trace context (traceparent) into the
// request's span.
package export
