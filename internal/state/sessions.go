package state

import (
	"fmt"
	"slices"
	"time"
)

// Session events: what one node's gateway learns about agents' sessions
// that every node must honour when the agent's next call lands on it.
//
//   - A session the agent ended (DELETE) stays refused on every node.
//   - DLP taint: keyed fingerprints (never values) of the sensitive values a
//     session received from an upstream, with that upstream's environment,
//     so a prod value cannot leave through another node to a dev or
//     external tool.
//
// Gateways batch them (a command every ~100 ms, at most MaxSessionEvents
// each), never one raft entry per event. They live in the store beside
// the snapshot, not in it: applying a batch does not copy the control
// state, and readers get them through OnSessionEvents, not Current. Both
// expire (Until) and are pruned at the command's time, so the table stays
// bounded by what is live; at most maxTaints fingerprints are kept.

// OpSessionEvents applies Sessions (format V2).
const OpSessionEvents Op = "sessions.events"

// MaxSessionEvents bounds one batch.
const MaxSessionEvents = 10000

// maxTaints bounds the replicated fingerprints; past it new ones are
// dropped (deterministically: every node drops the same) and counted.
const maxTaints = 1 << 20

// RevokedSession is a session that was ended.
type RevokedSession struct {
	Nonce string    `json:"nonce"`
	Until time.Time `json:"until"`
}

// TaintRecord is one fingerprint a session received.
type TaintRecord struct {
	Session     string    `json:"session"`
	Fingerprint []byte    `json:"fp"`
	Upstream    string    `json:"upstream"`
	Environment string    `json:"env,omitempty"`
	Detector    string    `json:"detector"`
	Until       time.Time `json:"until"`
}

// SessionEvents is one batch.
type SessionEvents struct {
	Revoked []RevokedSession `json:"revoked,omitempty"`
	Taints  []TaintRecord    `json:"taints,omitempty"`
}

type taintKey struct {
	session string
	fp      string
}

type sessionTable struct {
	revoked map[string]time.Time
	taints  map[taintKey]TaintRecord
	dropped uint64
}

func newSessionTable() sessionTable {
	return sessionTable{revoked: map[string]time.Time{}, taints: map[taintKey]TaintRecord{}}
}

func checkSessionEvents(ev *SessionEvents) error {
	if ev == nil || len(ev.Revoked)+len(ev.Taints) == 0 {
		return malformed("sessions.events: an empty batch")
	}
	if len(ev.Revoked)+len(ev.Taints) > MaxSessionEvents {
		return malformed("sessions.events: %d events; at most %d per batch", len(ev.Revoked)+len(ev.Taints), MaxSessionEvents)
	}
	for _, r := range ev.Revoked {
		if r.Nonce == "" || r.Until.IsZero() {
			return malformed("sessions.events: a revocation needs a session and an expiry")
		}
	}
	for _, t := range ev.Taints {
		if t.Session == "" || len(t.Fingerprint) != 16 || t.Until.IsZero() {
			return malformed("sessions.events: a taint record needs a session, a 16-byte fingerprint and an expiry")
		}
	}
	return nil
}

// applySessions adds a batch to the table (the caller holds s.mu).
func (s *Store) applySessions(cmd *Command, index uint64) *Result {
	now := cmd.Time
	t := &s.sessions
	for n, until := range t.revoked {
		if !now.Before(until) {
			delete(t.revoked, n)
		}
	}
	for k, r := range t.taints {
		if !now.Before(r.Until) {
			delete(t.taints, k)
		}
	}
	for _, r := range cmd.Sessions.Revoked {
		if now.Before(r.Until) && r.Until.After(t.revoked[r.Nonce]) {
			t.revoked[r.Nonce] = r.Until
		}
	}
	for _, r := range cmd.Sessions.Taints {
		if !now.Before(r.Until) {
			continue
		}
		k := taintKey{r.Session, string(r.Fingerprint)}
		old, seen := t.taints[k]
		switch {
		case !seen && len(t.taints) >= maxTaints:
			t.dropped++
		case !seen || envRanks[r.Environment] >= envRanks[old.Environment]:
			t.taints[k] = r
		}
	}
	if s.onSessions != nil {
		s.onSessions(cmd.Sessions)
	}
	return &Result{Index: index}
}

var envRanks = map[string]int{"dev": 1, "staging": 2, "prod": 3}

// OnSessionEvents registers f to receive every batch as it is applied,
// after the table (what restarted or joined nodes start from; see
// SessionEvents) is replayed into it once. f runs on raft's apply
// goroutine: it must not block. Call it before the node starts.
func (s *Store) OnSessionEvents(f func(*SessionEvents)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSessions = f
	if ev := s.sessionDump(); len(ev.Revoked)+len(ev.Taints) > 0 {
		f(ev)
	}
}

// sessionDump is the whole table as one batch (the caller holds s.mu).
func (s *Store) sessionDump() *SessionEvents {
	ev := &SessionEvents{}
	for n, until := range s.sessions.revoked {
		ev.Revoked = append(ev.Revoked, RevokedSession{Nonce: n, Until: until})
	}
	for _, r := range s.sessions.taints {
		ev.Taints = append(ev.Taints, r)
	}
	slices.SortFunc(ev.Revoked, func(a, b RevokedSession) int { return cmpString(a.Nonce, b.Nonce) })
	slices.SortFunc(ev.Taints, func(a, b TaintRecord) int {
		if c := cmpString(a.Session, b.Session); c != 0 {
			return c
		}
		return cmpString(string(a.Fingerprint), string(b.Fingerprint))
	})
	return ev
}

// SessionStats reports the table's size and how many fingerprints were
// dropped at the bound.
func (s *Store) SessionStats() (revoked, taints int, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions.revoked), len(s.sessions.taints), s.sessions.dropped
}

func (s *Store) restoreSessions(ev *SessionEvents) error {
	t := newSessionTable()
	if ev != nil {
		for _, r := range ev.Revoked {
			t.revoked[r.Nonce] = r.Until
		}
		for _, r := range ev.Taints {
			if len(r.Fingerprint) != 16 {
				return fmt.Errorf("restore state snapshot: a taint record with a %d-byte fingerprint", len(r.Fingerprint))
			}
			t.taints[taintKey{r.Session, string(r.Fingerprint)}] = r
		}
	}
	s.sessions = t
	return nil
}
