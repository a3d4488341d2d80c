package state

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// MaxGeoIPBytes bounds a replicated GeoIP table (a full country database
// serializes to a few MB).
const MaxGeoIPBytes = 64 << 20

// geoIPMagic starts every table serialized by internal/geoip.
const geoIPMagic = "PCGEO1"

// Snapshot is an immutable view of the whole control state at one raft
// index. Never modify a Snapshot or anything reachable from it.
type Snapshot struct {
	Index     uint64
	Upstreams map[string]*Upstream
	Skills    map[string]*Skill
	Personas  map[string]*Persona
	Agents    map[string]*Agent
	Keys      map[string]*APIKey // by key ID
	Secrets   map[string]*Secret // sealed; never plaintext
	// NetworkPolicies are the global network rules (all of them apply).
	NetworkPolicies map[string]*NetworkPolicy
	// GeoIP is the imported country table as serialized by internal/geoip
	// (nil: none imported); GeoIPImported is when it was committed.
	GeoIP         []byte
	GeoIPImported time.Time
	// The cluster's own objects (see cluster.go).
	Members    map[string]*ClusterMember
	JoinTokens map[string]*JoinToken
	Admins     map[string]*AdminCredential
	// Behaviour (see behaviour.go).
	SequenceRules map[string]*SequenceRule
	Quarantines   map[string]*Quarantine // by agent
	Approvals     map[string]*Approval   // by ID
}

func emptySnapshot() *Snapshot {
	return &Snapshot{
		Upstreams: map[string]*Upstream{},
		Skills:    map[string]*Skill{},
		Personas:  map[string]*Persona{},
		Agents:    map[string]*Agent{},
		Keys:      map[string]*APIKey{},
		Secrets:   map[string]*Secret{},

		NetworkPolicies: map[string]*NetworkPolicy{},
		Members:         map[string]*ClusterMember{},
		JoinTokens:      map[string]*JoinToken{},
		Admins:          map[string]*AdminCredential{},
		SequenceRules:   map[string]*SequenceRule{},
		Quarantines:     map[string]*Quarantine{},
		Approvals:       map[string]*Approval{},
	}
}

// Get returns the named object of a kind, or nil.
func (s *Snapshot) Get(k Kind, name string) Object {
	switch k {
	case KindUpstream:
		return lookup(s.Upstreams, name)
	case KindSkill:
		return lookup(s.Skills, name)
	case KindPersona:
		return lookup(s.Personas, name)
	case KindAgent:
		return lookup(s.Agents, name)
	case KindNetworkPolicy:
		return lookup(s.NetworkPolicies, name)
	case KindSequenceRule:
		return lookup(s.SequenceRules, name)
	}
	return nil
}

// List returns every object of a kind, sorted by name.
func (s *Snapshot) List(k Kind) []Object {
	var out []Object
	switch k {
	case KindUpstream:
		out = values(s.Upstreams)
	case KindSkill:
		out = values(s.Skills)
	case KindPersona:
		out = values(s.Personas)
	case KindAgent:
		out = values(s.Agents)
	case KindNetworkPolicy:
		out = values(s.NetworkPolicies)
	case KindSequenceRule:
		out = values(s.SequenceRules)
	}
	slices.SortFunc(out, func(a, b Object) int { return cmpString(a.Metadata().Name, b.Metadata().Name) })
	return out
}

// lookup returns m[name] as an Object, or a nil interface (never a typed nil).
func lookup[T Object](m map[string]T, name string) Object {
	if o, ok := m[name]; ok {
		return o
	}
	return nil
}

func values[T Object](m map[string]T) []Object {
	out := make([]Object, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	return out
}

// AgentKeys returns an agent's keys sorted by creation time.
func (s *Snapshot) AgentKeys(agent string) []*APIKey {
	var out []*APIKey
	for _, k := range s.Keys {
		if k.Agent == agent {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b *APIKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// clone copies the maps (not the objects, which are never mutated).
func (s *Snapshot) clone() *Snapshot {
	return &Snapshot{
		Index:     s.Index,
		Upstreams: maps.Clone(s.Upstreams),
		Skills:    maps.Clone(s.Skills),
		Personas:  maps.Clone(s.Personas),
		Agents:    maps.Clone(s.Agents),
		Keys:      maps.Clone(s.Keys),
		Secrets:   maps.Clone(s.Secrets),

		NetworkPolicies: maps.Clone(s.NetworkPolicies),
		GeoIP:           s.GeoIP,
		GeoIPImported:   s.GeoIPImported,
		Members:         maps.Clone(s.Members),
		JoinTokens:      maps.Clone(s.JoinTokens),
		Admins:          maps.Clone(s.Admins),
		SequenceRules:   maps.Clone(s.SequenceRules),
		Quarantines:     maps.Clone(s.Quarantines),
		Approvals:       maps.Clone(s.Approvals),
	}
}

func (s *Snapshot) put(o Object) {
	switch o := o.(type) {
	case *Upstream:
		s.Upstreams[o.Name] = o
	case *Skill:
		s.Skills[o.Name] = o
	case *Persona:
		s.Personas[o.Name] = o
	case *Agent:
		s.Agents[o.Name] = o
	case *NetworkPolicy:
		s.NetworkPolicies[o.Name] = o
	case *SequenceRule:
		s.SequenceRules[o.Name] = o
	}
}

func (s *Snapshot) remove(k Kind, name string) {
	switch k {
	case KindUpstream:
		delete(s.Upstreams, name)
	case KindSkill:
		delete(s.Skills, name)
	case KindPersona:
		delete(s.Personas, name)
	case KindAgent:
		delete(s.Agents, name)
		for id, key := range s.Keys {
			if key.Agent == name {
				delete(s.Keys, id)
			}
		}
	case KindNetworkPolicy:
		delete(s.NetworkPolicies, name)
	case KindSequenceRule:
		delete(s.SequenceRules, name)
	}
}

// Store holds the control state and is the raft FSM that changes it.
//
// Raft calls Apply, Snapshot and Restore from one goroutine at a time; Current,
// Subscribe, Prepare, Halted and Err are safe from any goroutine and never
// block on Apply.
type Store struct {
	log *slog.Logger
	cur atomic.Pointer[Snapshot]

	mu   sync.Mutex // serializes writers and guards subs
	subs map[chan struct{}]struct{}

	haltOnce sync.Once
	halted   chan struct{} // closed by halt
	haltErr  atomic.Pointer[error]

	sessions   sessionTable // guarded by mu; see sessions.go
	onSessions func(*SessionEvents)

	anchors map[string]*AuditAnchor // guarded by mu; see audit.go
	onAudit func(*AuditBatch, uint64)
}

var _ raft.FSM = (*Store)(nil)

// NewStore returns an empty store.
func NewStore(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log, subs: map[chan struct{}]struct{}{}, halted: make(chan struct{}), sessions: newSessionTable(), anchors: map[string]*AuditAnchor{}}
	s.cur.Store(emptySnapshot())
	return s
}

// Current returns the latest applied snapshot.
func (s *Store) Current() *Snapshot { return s.cur.Load() }

// Subscribe returns a channel that receives a tick after every change (ticks
// coalesce: a slow reader sees one tick for many changes), and a function
// that ends the subscription.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// Halted is closed when the store met a committed entry it cannot apply:
// a command format or operation newer than this binary (ErrUnsupported).
// Skipping that entry would silently diverge from the nodes that applied
// it, so from then on Apply refuses every entry and changes nothing, and
// Snapshot fails so that raft never compacts the unapplied entry away. The
// node must stop; it replays the log again once it runs a binary that
// knows the format. internal/cluster's Node.Run returns Err when Halted
// closes, which stops the appliance.
func (s *Store) Halted() <-chan struct{} { return s.halted }

// Err is the error that halted the store, or nil.
func (s *Store) Err() error {
	if p := s.haltErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Store) halt(index uint64, err error) {
	s.haltOnce.Do(func() {
		err = fmt.Errorf("state: raft entry %d cannot be applied by this binary; the node stops applying to stay consistent (upgrade it to the cluster's version): %w", index, err)
		s.haltErr.Store(&err)
		s.log.Error("state machine halted", "index", index, "err", err)
		close(s.halted)
	})
}

func (s *Store) publish(next *Snapshot) {
	s.cur.Store(next)
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// persisted is the snapshot format written by Persist.
type persisted struct {
	Format  int        `json:"format"`
	Index   uint64     `json:"index"`
	Objects []Document `json:"objects"`
	Keys    []*APIKey  `json:"keys"`
	Secrets []*Secret  `json:"secrets,omitempty"`
	// GeoIP is the imported country table (already zstd-compressed).
	GeoIP         []byte    `json:"geoip,omitempty"`
	GeoIPImported time.Time `json:"geoipImported,omitzero"`
	// Format 2 adds the cluster's own objects.
	Members    []*ClusterMember   `json:"members,omitempty"`
	JoinTokens []*JoinToken       `json:"joinTokens,omitempty"`
	Admins     []*AdminCredential `json:"admins,omitempty"`
	Sessions   *SessionEvents     `json:"sessions,omitempty"`
	// Format 3 adds the audit anchors (audit.go) and the behaviour tables.
	AuditAnchors []AuditAnchor `json:"auditAnchors,omitempty"`
	Quarantines  []*Quarantine `json:"quarantines,omitempty"`
	Approvals    []*Approval   `json:"approvals,omitempty"`
}

type fsmSnapshot struct {
	s        *Snapshot
	sessions *SessionEvents
	anchors  []AuditAnchor
}

// Snapshot captures the current state; raft persists it off the apply path.
// It fails once the store has halted.
func (s *Store) Snapshot() (raft.FSMSnapshot, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fsmSnapshot{s.cur.Load(), s.sessionDump(), s.anchorDump()}, nil
}

func (f fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	p := persisted{Format: 1, Index: f.s.Index, GeoIP: f.s.GeoIP, GeoIPImported: f.s.GeoIPImported}
	for _, k := range Kinds {
		for _, o := range f.s.List(k) {
			p.Objects = append(p.Objects, EncodeDocument(o))
		}
	}
	for _, k := range f.s.Keys {
		p.Keys = append(p.Keys, k)
	}
	slices.SortFunc(p.Keys, func(a, b *APIKey) int { return cmpString(a.ID, b.ID) })
	for _, sec := range f.s.Secrets {
		p.Secrets = append(p.Secrets, sec)
	}
	slices.SortFunc(p.Secrets, func(a, b *Secret) int { return cmpString(a.Name, b.Name) })
	p.Members = sortedValues(f.s.Members, func(m *ClusterMember) string { return m.ID })
	p.JoinTokens = sortedValues(f.s.JoinTokens, func(t *JoinToken) string { return t.ID })
	p.Admins = sortedValues(f.s.Admins, func(a *AdminCredential) string { return a.ID })
	if ev := f.sessions; ev != nil && len(ev.Revoked)+len(ev.Taints) > 0 {
		p.Sessions = ev
	}
	if len(p.Members)+len(p.JoinTokens)+len(p.Admins) > 0 || p.Sessions != nil {
		p.Format = 2 // a binary without clustering refuses it instead of dropping them
	}
	if len(f.anchors) > 0 {
		p.AuditAnchors, p.Format = f.anchors, 3 // likewise for a binary without audit anchors
	}
	p.Quarantines = sortedValues(f.s.Quarantines, func(q *Quarantine) string { return q.Agent })
	p.Approvals = sortedValues(f.s.Approvals, func(a *Approval) string { return a.ID })
	if len(p.Quarantines)+len(p.Approvals) > 0 {
		p.Format = 3 // likewise for a binary without behaviour state
	}
	if err := json.NewEncoder(sink).Encode(&p); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}

// Restore replaces the state with a snapshot written by Persist.
func (s *Store) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var p persisted
	if err := json.NewDecoder(rc).Decode(&p); err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	if p.Format < 1 || p.Format > 3 {
		return fmt.Errorf("restore state snapshot: unknown format %d", p.Format)
	}
	next := emptySnapshot()
	next.Index = p.Index
	for _, d := range p.Objects {
		o := newObject(d.Kind)
		if o == nil {
			return fmt.Errorf("restore state snapshot: unknown kind %q", d.Kind)
		}
		if err := json.Unmarshal(d.Spec, o); err != nil {
			return fmt.Errorf("restore state snapshot: %s %s: %w", d.Kind, d.Metadata.Name, err)
		}
		*o.Metadata() = d.Metadata
		next.put(o)
	}
	for _, k := range p.Keys {
		next.Keys[k.ID] = k
	}
	for _, sec := range p.Secrets {
		next.Secrets[sec.Name] = sec
	}
	next.GeoIP, next.GeoIPImported = p.GeoIP, p.GeoIPImported
	for _, m := range p.Members {
		next.Members[m.ID] = m
	}
	for _, t := range p.JoinTokens {
		next.JoinTokens[t.ID] = t
	}
	for _, a := range p.Admins {
		next.Admins[a.ID] = a
	}
	for _, q := range p.Quarantines {
		next.Quarantines[q.Agent] = q
	}
	for _, a := range p.Approvals {
		next.Approvals[a.ID] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.restoreSessions(p.Sessions); err != nil {
		return err
	}
	if err := s.restoreAnchors(p.AuditAnchors); err != nil {
		return err
	}
	if s.onSessions != nil && p.Sessions != nil {
		s.onSessions(p.Sessions)
	}
	s.publish(next)
	return nil
}

func sortedValues[T any](m map[string]*T, id func(*T) string) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *T) int { return cmpString(id(a), id(b)) })
	return out
}
