// Package xdptest builds throwaway network namespaces joined by a veth pair,
// for end-to-end tests and benchmarks of the XDP datapath (Linux only). It
// needs root and iproute2; everything it creates is removed by Close.
package xdptest
