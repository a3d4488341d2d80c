// Package vipqa tests the cluster address (a VRRP virtual IP held by
// keepalived, configured by `portcullis cluster vip-config`) on a real
// three-node production cluster, one node per network namespace, joined by
// veth pairs to a bridge in a namespace of its own (Linux, root, iproute2,
// nftables, keepalived, curl, softhsm2).
//
// TestClusterAddressFailover starts the nodes and keepalived with the
// generated configuration in each namespace; an agent in the bridge's
// namespace reaches https://VIP:8443/healthz and connects a real MCP client
// through the address. It kills the address holder's node (kill -9) and
// measures how long the address is unreachable before another node answers
// on it; restarts that node cut off from the raft port, so that its
// /healthz answers 503, and checks that it never takes the address back
// although it has the highest priority; then heals the cut and sees the
// address return; the agent's one client session sees each of its tool
// calls served by the node that holds the address. It runs with multicast
// VRRP and with unicast peers, and prints the figures with -v; it never
// asserts timings.
package vipqa
