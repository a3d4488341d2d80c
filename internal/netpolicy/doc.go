// Package netpolicy keeps a node's network enforcement in step with the
// replicated state: it turns every state snapshot into the XDP datapath's
// rules (internal/xdp) and its GeoIP table (internal/geoip), and publishes
// them within a second of a commit. It also makes the same decision again in
// userspace for every HTTP request the node serves (defence in depth, and
// the only enforcement when XDP could not be attached).
//
// # From state to rules
//
//   - Global rules: every NetworkPolicy object applies. The global deny list
//     is the union of their denyCIDRs, the global allow list the union of
//     their allowCIDRs (empty: every source). They hold for every port.
//   - Each Persona with spec.endpoint.listen gets a listener with its
//     spec.network rules: denyCIDRs, allowCIDRs, allowCountries or
//     denyCountries, and with pinTokensToIP the pinned client IPs of its
//     agents' API keys. Keys without a pin, revoked keys and expired keys
//     admit nobody; a key's IP leaves the kernel when it expires.
//   - Sources the GeoIP table does not locate, when a country list is set:
//     the persona's network.unknownCountry ("allow" or "deny"); else the
//     NetworkPolicy objects' unknownCountry ("deny" wins over "allow");
//     else an allowCountries list refuses them and a denyCountries list
//     admits them.
//
// The decision order is internal/xdp's (package documentation there), in
// the kernel and in userspace alike: global deny, global allow, then the
// listener's deny CIDRs, allow CIDRs, countries, pins.
//
// # Userspace check
//
// Guard wraps a listener's HTTP handler. It asks the datapath's compiled
// policy about (client address, local address) for every request and
// answers 403 with the reason when the policy refuses. A request to a
// persona's path on the shared gateway listener (/p/<persona>/...) is judged
// as if it had reached that persona's dedicated listener, so the shared
// port is no way around the persona's rules. A persona with network rules
// but no dedicated listener cannot be told apart at the NIC (its agents
// share the gateway port); its rules are enforced by this userspace check
// alone (CompileShared). On the admin listener loopback sources are
// exempt, as at the NIC, where loopback traffic never passes XDP.
//
// Until the node's state is complete (Config.Ready: after a restart raft
// first replays the log behind its last snapshot), Guard answers 503 with
// Retry-After on the gateway and persona listeners instead of judging
// requests by rules that may predate a revocation or a deny rule. When the
// kernel refuses an update, the userspace check enforces the new rules at
// once and the datapath retries the kernel every second.
package netpolicy
