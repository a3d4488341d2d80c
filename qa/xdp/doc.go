// Package xdpqa tests the XDP datapath on real traffic between two network
// namespaces joined by a veth pair (Linux, root, iproute2).
//
// TestNetworkControlsEndToEnd is issue 5's proof through the real binary:
// the appliance runs in one namespace with XDP on its veth; clients in the
// other connect to a persona's dedicated listener from allowed and denied
// source addresses (CIDR, country from an imported GeoIP CSV, unpinned IP,
// global deny). Denied SYNs never reach the appliance's socket; the drop
// counters, `portcullis xdp stats` and GET /metrics say why; a revoked
// pinned key's address is dropped from then on.
//
// TestDropRateVsNftables blasts frames with denied source addresses across
// the pair and compares, in the same run, the XDP program's drop rate with
// an nftables set holding the same prefixes (also needs nftables). It
// prints the figures and their ratio; it never asserts timings.
package xdpqa
