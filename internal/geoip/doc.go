// Package geoip turns GeoIP databases into a country table for the XDP
// datapath and the userspace network check.
//
// It imports MaxMind-format MMDB files (GeoLite2/GeoIP2 Country, DB-IP's
// MMDB) and the CSV range formats of DB-IP (start,end,cc with dotted or
// colon addresses) and IP2Location (decimal IP numbers, IPv4 or IPv6
// editions). Every format becomes one Table: sorted, disjoint, merged
// address ranges with their country, which yields CIDR prefixes for the
// kernel's longest-prefix-match map. A Table serializes compactly
// (delta-encoded, zstd-compressed) so `portcullis geoip import` can ship it
// through raft to every node.
//
// Addresses the database does not list have country Unknown; the network
// policy decides what happens to them.
package geoip
