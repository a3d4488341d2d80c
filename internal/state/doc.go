// Package state is Portcullis's replicated control state: upstream MCP servers,
// the Skill Registry, Personas, Agents and their API keys, sealed secrets,
// the global NetworkPolicy objects, SequenceRules with the quarantines and
// approvals they cause (behaviour.go), and the imported GeoIP country table
// (geoip.import, kept as the zstd blob internal/geoip serializes, and
// persisted in FSM snapshots).
//
// Admins describe objects as Kubernetes-like YAML documents
// (apiVersion portcullis/v1; kind; metadata; spec). ParseDocuments turns a
// file into validated objects with errors that name the file, the document,
// the line and the field. A change is a Command; the raft FSM implemented by
// Store applies commands deterministically and all-or-nothing.
//
// The data plane never takes a lock here: Store.Current returns an immutable
// Snapshot that is swapped atomically after every applied command, and
// Subscribe tells readers when to recompile what they derive from it.
package state
