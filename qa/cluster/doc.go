// Package cluster proves the HA cluster with real clusters: separate
// processes of the real binary on 127.0.0.1, each with its own ports and
// SoftHSM2 token, joined with join tokens as a user would. Its tests kill
// (SIGKILL) and pause (SIGSTOP) nodes under admin-write and agent traffic
// and check what a user would notice: one leader, writes that go on, agent
// sessions that survive a node, bounded staleness, a linearizable history
// of admin writes and reads (porcupine), and refused bad joins. A qa
// benchmark (-cluster.bench) prints failover and write figures.
//
// TestNetworkPartition (Linux, root) cuts real networks instead: a
// production cluster with one node per network namespace
// (qa/internal/nscluster), the leader and a follower cut off by nftables
// and by a pulled cable while every process runs, clients on both sides,
// and one porcupine history across the four partitions.
package cluster
