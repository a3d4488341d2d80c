// Package xdpqa measures the XDP datapath on real traffic: frames with
// denied source addresses are blasted across a veth pair between two
// network namespaces, and the drop rate of the XDP program is compared, in
// the same run, with an nftables set holding the same prefixes. It prints
// the figures and their ratio; it never asserts timings. Needs root,
// iproute2 and nftables.
package xdpqa
