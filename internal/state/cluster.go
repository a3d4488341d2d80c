package state

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"time"
)

// The cluster's own replicated objects (command format V2): its members,
// the join tokens that admit new ones, and the admin credentials every node
// accepts. None of them is a document an admin applies; the cluster and
// admin APIs write them.

// ClusterMember is one node of the cluster as the cluster knows it: the raft
// configuration follows this list (the leader adds a voter for a new member
// and removes the server of a deleted one), and CACert, the certificate of
// the CA in that node's HSM, is part of the trust bundle every node checks
// node certificates against.
type ClusterMember struct {
	ID       string    `json:"id"`
	RaftAddr string    `json:"raftAddr"`
	CACert   []byte    `json:"caCert"` // PEM
	Joined   time.Time `json:"joined,omitzero"`
}

// JoinToken admits one node: single use, and refused after Expires.
// Only the SHA-256 of the token's secret is kept.
type JoinToken struct {
	ID      string    `json:"id"`
	Hash    []byte    `json:"hash"`
	Expires time.Time `json:"expires"`
	Created time.Time `json:"created,omitzero"`
	UsedBy  string    `json:"usedBy,omitempty"` // the node it admitted
}

// AdminCredential is an admin bearer token's SHA-256, accepted by every node.
type AdminCredential struct {
	ID      string    `json:"id"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created,omitzero"`
}

// Cluster operations (format V2).
const (
	OpMemberPut    Op = "cluster.member.put"    // add or update Member
	OpMemberDelete Op = "cluster.member.delete" // remove the member Name
	OpTokenCreate  Op = "cluster.token.create"  // add JoinToken
	// OpTokenUse marks the token KeyID used by node Name; refused when it
	// is unknown, used, or expired at the command's Time.
	OpTokenUse Op = "cluster.token.use"
	OpAdminPut Op = "admin.credential.put" // add Admin (hash only)
)

// clusterOp reports whether op needs format V2.
func clusterOp(op Op) bool {
	switch op {
	case OpMemberPut, OpMemberDelete, OpTokenCreate, OpTokenUse, OpAdminPut, OpSessionEvents:
		return true
	}
	return false
}

// tokenGrace keeps used and expired tokens this long past expiry (so a
// retried join is told "used", not "unknown"), then drops them.
const tokenGrace = time.Hour

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidNodeID reports whether id can name a cluster node.
func ValidNodeID(id string) bool { return nodeIDPattern.MatchString(id) }

func validateClusterCommand(cmd *Command) error {
	switch cmd.Op {
	case OpMemberPut:
		m := cmd.Member
		if m == nil || !ValidNodeID(m.ID) || m.RaftAddr == "" {
			return malformed("cluster.member.put: a member needs an id (letters, digits, '.', '_', '-') and a raft address")
		}
		if err := checkCACert(m.CACert); err != nil {
			return malformed("cluster.member.put: member %s: %v", m.ID, err)
		}
	case OpMemberDelete:
		if !ValidNodeID(cmd.Name) {
			return malformed("cluster.member.delete: malformed node id")
		}
	case OpTokenCreate:
		t := cmd.JoinToken
		if t == nil || t.ID == "" || len(t.Hash) != 32 || t.Expires.IsZero() || t.UsedBy != "" {
			return malformed("cluster.token.create: malformed token")
		}
	case OpTokenUse:
		if cmd.KeyID == "" || !ValidNodeID(cmd.Name) {
			return malformed("cluster.token.use: a token id and a node id are required")
		}
	case OpAdminPut:
		a := cmd.Admin
		if a == nil || a.ID == "" || len(a.Hash) != 32 {
			return malformed("admin.credential.put: malformed credential")
		}
	case OpSessionEvents:
		return checkSessionEvents(cmd.Sessions)
	}
	return nil
}

func checkCACert(p []byte) error {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		return fmt.Errorf("caCert is not a PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Errorf("caCert: %w", err)
	}
	if !c.IsCA {
		return fmt.Errorf("caCert is not a CA certificate")
	}
	return nil
}

// applyCluster applies a V2 cluster command.
func applyCluster(cur *Snapshot, cmd *Command, index uint64) (*Snapshot, *Result, error) {
	next := cur.clone()
	next.Index = index
	switch cmd.Op {
	case OpMemberPut:
		m := *cmd.Member
		action := "created"
		if old := cur.Members[m.ID]; old != nil {
			action = "updated"
			if m.Joined.IsZero() {
				m.Joined = old.Joined
			}
		}
		if m.Joined.IsZero() {
			m.Joined = cmd.Time
		}
		next.Members[m.ID] = &m
		return next, changed(index, "ClusterMember", m.ID, action), nil
	case OpMemberDelete:
		if cur.Members[cmd.Name] == nil {
			return nil, nil, fmt.Errorf("cluster member %q: %w", cmd.Name, ErrNotFound)
		}
		delete(next.Members, cmd.Name)
		return next, changed(index, "ClusterMember", cmd.Name, "deleted"), nil
	case OpTokenCreate:
		if cur.JoinTokens[cmd.JoinToken.ID] != nil {
			return nil, nil, fmt.Errorf("join token %q: %w", cmd.JoinToken.ID, ErrConflict)
		}
		pruneTokens(next, cmd.Time)
		t := *cmd.JoinToken
		t.Created = cmd.Time
		next.JoinTokens[t.ID] = &t
		return next, changed(index, "JoinToken", t.ID, "created"), nil
	case OpTokenUse:
		t := cur.JoinTokens[cmd.KeyID]
		switch {
		case t == nil:
			return nil, nil, fmt.Errorf("join token %q is not known to this cluster: %w", cmd.KeyID, ErrNotFound)
		case t.UsedBy != "":
			return nil, nil, fmt.Errorf("join token %q was already used (by node %s): %w", cmd.KeyID, t.UsedBy, ErrConflict)
		case !cmd.Time.Before(t.Expires):
			return nil, nil, fmt.Errorf("join token %q expired at %s: %w", cmd.KeyID, t.Expires.UTC().Format(time.RFC3339), ErrConflict)
		}
		pruneTokens(next, cmd.Time)
		u := *t
		u.UsedBy = cmd.Name
		next.JoinTokens[u.ID] = &u
		return next, changed(index, "JoinToken", u.ID, "updated"), nil
	case OpAdminPut:
		if old := cur.Admins[cmd.Admin.ID]; old != nil {
			return cur, changed(index, "AdminCredential", old.ID, "unchanged"), nil
		}
		a := *cmd.Admin
		a.Created = cmd.Time
		next.Admins[a.ID] = &a
		return next, changed(index, "AdminCredential", a.ID, "created"), nil
	}
	return nil, nil, fmt.Errorf("command format %d: operation %q: %w", cmd.V, cmd.Op, ErrUnsupported)
}

func pruneTokens(s *Snapshot, now time.Time) {
	for id, t := range s.JoinTokens {
		if now.Sub(t.Expires) > tokenGrace {
			delete(s.JoinTokens, id)
		}
	}
}
