// Package behavior is stage 6 of the request path ("behaviour"): it judges
// a call by what its agent did before, not only by the call itself.
//
// Sequence rules (state.SequenceRule, applied as YAML like every other
// kind) say "after Count calls to skill S (or tools T) within W, a call to
// tools U (or to any external-egress upstream) gets Action", optionally
// only when a CEL condition over the call and the count holds. CEL
// conditions are compiled when the rule is applied (ValidateRule, the admin
// API's check): a condition that does not compile, is not boolean, or
// whose worst-case cost exceeds MaxConditionCost is refused with the field
// path spec.condition; at run time the same cost limit stops it.
//
// Actions: block refuses the call with a JSON-RPC error naming the rule and
// the sequence; hold parks it for a human approval (state.Approval through
// raft, decidable from any node with `portcullis approvals approve|deny`;
// the holding node watches its approval; the timeout denies); stop refuses
// it and ends the session on every node (a 2026-07-28 agent has no session:
// its API key is refused on this node for 24 hours); quarantine refuses the agent on
// every node (state.Quarantine through raft, effective on the detecting
// node at once) until `portcullis agent release AGENT`.
//
// Default protections apply with no rule: an agent whose last 256 calls,
// within 5 minutes, are an error-retry storm (90 % failed), repeated
// near-identical failing calls, or failing calls with paths, ids or hashes
// never seen in a result of its session, is quarantined with an
// explanation naming the signal and the expected figure (RunawayConfig).
//
// State and its bounds: per agent (and per session when a rule has scope:
// session) a tracker holds, per rule, a window of 16 buckets (72 bytes;
// a count may include calls up to within/16 older than the window), and,
// for the default protections, a ring of the last 256 calls (8 bytes
// each), the failing shapes among them, and a table of 512 fingerprints
// of tokens seen in results (4 KiB, cleared when 3/4 full). Trackers are
// kept in 64 sharded maps, dropped when idle longer than the longest rule
// window (at least an hour), and bounded by Config.MaxTrackers.
//
// Cluster: quarantines and approvals are replicated (rare events). The
// sequence counts and runaway histories are node-local: an agent whose
// calls are spread over several nodes by a load balancer is counted per
// node, so a rule fires later (up to N times the count with N nodes) and
// a node that dies loses its counts. Sticky balancing (the gateway's
// sessions are per node anyway for streams) keeps an agent on one node.
package behavior
