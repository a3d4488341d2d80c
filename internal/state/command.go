package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Op names what a Command does.
type Op string

// The operations the FSM understands.
const (
	OpApply     Op = "apply"      // create or update Documents, all or nothing
	OpDelete    Op = "delete"     // delete Kind/Name
	OpKeyCreate Op = "key.create" // add Key (hash only)
	OpKeyRevoke Op = "key.revoke" // remove the key KeyID
	// OpSecretPut stores Secret; its Version must be one more than the
	// stored one (1 for a new secret), so concurrent puts cannot interleave.
	OpSecretPut    Op = "secret.put"
	OpSecretDelete Op = "secret.delete" // remove the secret Name
	// OpGeoIPImport replaces the cluster's GeoIP country table with GeoIP,
	// a table serialized by internal/geoip (zstd-compressed).
	OpGeoIPImport Op = "geoip.import"
	// OpSecretReseal replaces the ciphertext of Secret at the SAME Version
	// (after the HSM's sealing key was rotated; the value is unchanged, so
	// Created and Updated stay). It is refused when the stored version
	// differs: a put that won the race already sealed under the new key.
	OpSecretReseal Op = "secret.reseal"
)

// Command formats (Command.V).
//
// A committed raft entry must apply the same way on every node and on every
// later replay, whatever binary the node runs. So the format of a command
// fixes both its encoding and what Apply does with it:
//
//   - V0 (no "v" field) is what binaries before command versions wrote.
//     Apply validates such an entry and applies it exactly as those binaries
//     did (applyV0), so an old log replays to the same state.
//   - V1 is what Store.Prepare returns: validated when it was proposed.
//     Apply decodes it strictly and applies it; the only checks left are
//     those that depend on the state at apply time (see applyV1).
//
// Anything that changes what Apply does with a command, or adds a field,
// an op or a kind, needs a new version. A node that meets a version it does
// not know (or a V1 entry with fields it does not know) stops applying
// instead of diverging: see Store.Halted.
const (
	V0 = 0
	V1 = 1
	// V2 adds the cluster's own objects (members, join tokens, admin
	// credentials; cluster.go). Prepare proposes V2 only for those
	// operations, so a node not yet upgraded keeps applying everything else
	// during a rolling upgrade.
	V2 = 2
	// V3 adds audit batches (audit.go) and behaviour: the SequenceRule
	// kind, quarantines and approvals (behaviour.go); Prepare proposes V3
	// only for those.
	CommandVersion = V3 // the newest format this binary proposes
)

// Command is one replicated change. The proposer stamps Time so that every
// node, and every replay of the log, computes the same state.
type Command struct {
	// V is the command format; Prepare sets it. See CommandVersion.
	V         int        `json:"v,omitempty"`
	Op        Op         `json:"op"`
	Time      time.Time  `json:"time"`
	Documents []Document `json:"documents,omitempty"`
	Kind      Kind       `json:"kind,omitempty"`
	Name      string     `json:"name,omitempty"`
	Key       *APIKey    `json:"key,omitempty"`
	KeyID     string     `json:"keyID,omitempty"`
	Secret    *Secret    `json:"secret,omitempty"`
	GeoIP     []byte     `json:"geoip,omitempty"`
	// V2:
	Member    *ClusterMember   `json:"member,omitempty"`
	JoinToken *JoinToken       `json:"joinToken,omitempty"`
	Admin     *AdminCredential `json:"admin,omitempty"`
	Sessions  *SessionEvents   `json:"sessions,omitempty"`
	// V3:
	Audit      *AuditBatch `json:"audit,omitempty"`
	Quarantine *Quarantine `json:"quarantine,omitempty"`
	Approval   *Approval   `json:"approval,omitempty"`
}

// Encode serializes the command for raft.
func (c *Command) Encode() ([]byte, error) { return json.Marshal(c) }

// DecodeCommand parses a command written by Encode. An entry of a version
// this binary does not know, or a V1 entry with unknown fields, fails with
// an error matching ErrUnsupported: applying it anyway could diverge.
func DecodeCommand(b []byte) (*Command, error) {
	var probe struct {
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	var c Command
	if probe.V == nil {
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("decode command: %w", err)
		}
		return &c, nil
	}
	var v int
	if err := json.Unmarshal(probe.V, &v); err != nil || v <= V0 || v > CommandVersion {
		return nil, fmt.Errorf("command format %s: this binary knows formats up to %d: %w", probe.V, CommandVersion, ErrUnsupported)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode command format %d: %v: %w", v, err, ErrUnsupported)
	}
	if v < V2 && (clusterOp(c.Op) || c.Member != nil || c.JoinToken != nil || c.Admin != nil || c.Sessions != nil) {
		return nil, fmt.Errorf("command format %d: operation %q or its fields need format %d: %w", v, c.Op, V2, ErrUnsupported)
	}
	if v < V3 && (c.Op == OpAuditBatch || c.Audit != nil || behaviourOp(c.Op) || c.Quarantine != nil || c.Approval != nil || hasKind(c.Documents, KindSequenceRule)) {
		return nil, fmt.Errorf("command format %d: operation %q or its fields or documents need format %d: %w", v, c.Op, V3, ErrUnsupported)
	}
	return &c, nil
}

// Change reports what a command did to one object.
type Change struct {
	Kind   Kind   `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"` // created, updated, unchanged, deleted
}

// Result is what applying a command returns.
type Result struct {
	Index   uint64   `json:"index"`
	Changes []Change `json:"changes"`
}

// Errors a command may be refused with besides *ValidationError. Match them
// with errors.Is; their text names only objects the admin declared, so it
// is safe to show. Each has a wire code (EncodeOutcome) that never changes.
var (
	// ErrNotFound: the object, key or secret the command names is absent.
	ErrNotFound = errors.New("not found")
	// ErrInUse: a delete of an object something else still refers to.
	ErrInUse = errors.New("still referenced")
	// ErrConflict: the state changed since the command was made (a secret
	// version, an existing key ID); retrying with fresh state may succeed.
	ErrConflict = errors.New("conflict")
	// ErrMalformed: the command itself is wrong (a key without a hash, a
	// GeoIP blob that is no table) and can never apply.
	ErrMalformed = errors.New("malformed command")
	// ErrUnsupported: the entry is of a format or operation this binary
	// does not know (written by a newer binary). The Store halts on it.
	ErrUnsupported = errors.New("unsupported command")
)

func hasKind(docs []Document, k Kind) bool {
	for _, d := range docs {
		if d.Kind == k {
			return true
		}
	}
	return false
}
