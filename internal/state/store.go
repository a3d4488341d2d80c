package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
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

// MaxGeoIPBytes bounds a replicated GeoIP table (a full country database
// serializes to a few MB).
const MaxGeoIPBytes = 64 << 20

// geoIPMagic starts every table serialized by internal/geoip.
const geoIPMagic = "PCGEO1"

// Command is one replicated change. The proposer stamps Time so that every
// node, and every replay of the log, computes the same state.
type Command struct {
	Op        Op         `json:"op"`
	Time      time.Time  `json:"time"`
	Documents []Document `json:"documents,omitempty"`
	Kind      Kind       `json:"kind,omitempty"`
	Name      string     `json:"name,omitempty"`
	Key       *APIKey    `json:"key,omitempty"`
	KeyID     string     `json:"keyID,omitempty"`
	Secret    *Secret    `json:"secret,omitempty"`
	GeoIP     []byte     `json:"geoip,omitempty"`
}

// Encode serializes the command for raft.
func (c *Command) Encode() ([]byte, error) { return json.Marshal(c) }

// DecodeCommand parses a command written by Encode.
func DecodeCommand(b []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
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

// Errors an applied command may return besides *ValidationError.
var (
	ErrNotFound = errors.New("not found")
	ErrInUse    = errors.New("still referenced")
	ErrConflict = errors.New("conflict")
)

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
	}
}

// Store holds the control state and is the raft FSM that changes it.
//
// Raft calls Apply, Snapshot and Restore from one goroutine at a time; Current
// and Subscribe are safe from any goroutine and never block on Apply.
type Store struct {
	log *slog.Logger
	cur atomic.Pointer[Snapshot]

	mu   sync.Mutex // serializes writers and guards subs
	subs map[chan struct{}]struct{}
}

var _ raft.FSM = (*Store)(nil)

// NewStore returns an empty store.
func NewStore(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log, subs: map[chan struct{}]struct{}{}}
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

func (s *Store) publish(next *Snapshot) {
	s.cur.Store(next)
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Apply applies one raft log entry. It returns *Result, or an error when the
// command is invalid against the current state (the state is then unchanged).
func (s *Store) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		s.log.Error("state: undecodable command skipped", "index", l.Index, "err", err)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next, res, err := plan(s.cur.Load(), cmd, l.Index)
	if err != nil {
		return err
	}
	s.publish(next)
	return res
}

// Check reports what cmd would do against the current state, or why it would
// be refused, without changing anything.
func (s *Store) Check(cmd *Command) (*Result, error) {
	_, res, err := plan(s.cur.Load(), cmd, s.cur.Load().Index+1)
	return res, err
}

// plan computes the state after cmd. It never modifies cur.
func plan(cur *Snapshot, cmd *Command, index uint64) (*Snapshot, *Result, error) {
	next := cur.clone()
	next.Index = index
	res := &Result{Index: index}
	switch cmd.Op {
	case OpApply:
		var errs []*FieldError
		var objs []Object
		for i, d := range cmd.Documents {
			raw, _ := json.Marshal(d)
			o, err := DecodeDocument(raw)
			if err != nil {
				var ve *ValidationError
				if errors.As(err, &ve) {
					for _, fe := range ve.Errors {
						fe.Doc = i + 1
					}
					errs = append(errs, ve.Errors...)
					continue
				}
				return nil, nil, err
			}
			objs = append(objs, o)
		}
		if len(errs) > 0 {
			return nil, nil, &ValidationError{Errors: errs}
		}
		for _, o := range objs {
			m := o.Metadata()
			action := "created"
			if old := cur.Get(o.Kind(), m.Name); old != nil {
				om := old.Metadata()
				if sameObject(old, o) {
					res.Changes = append(res.Changes, Change{Kind: o.Kind(), Name: m.Name, Action: "unchanged"})
					continue
				}
				action = "updated"
				m.Created = om.Created
			} else {
				m.Created = cmd.Time
			}
			m.Updated, m.Revision = cmd.Time, index
			next.put(o)
			res.Changes = append(res.Changes, Change{Kind: o.Kind(), Name: m.Name, Action: action})
		}
		for _, o := range objs {
			errs = append(errs, checkRefs(next, o)...)
		}
		// An update may break objects outside this batch (an agent's persona
		// can't vanish this way, but keep the rule general).
		if len(errs) > 0 {
			for i, o := range objs {
				for _, fe := range errs {
					if fe.Kind == o.Kind() && fe.Name == o.Metadata().Name && fe.Doc == 0 {
						fe.Doc = i + 1
					}
				}
			}
			return nil, nil, &ValidationError{Errors: errs}
		}
	case OpDelete:
		if cur.Get(cmd.Kind, cmd.Name) == nil {
			return nil, nil, fmt.Errorf("%s %q: %w", cmd.Kind, cmd.Name, ErrNotFound)
		}
		if refs := referrers(cur, cmd.Kind, cmd.Name); len(refs) > 0 {
			return nil, nil, fmt.Errorf("%s %q is used by %s: %w", cmd.Kind, cmd.Name, joinAnd(refs), ErrInUse)
		}
		next.remove(cmd.Kind, cmd.Name)
		res.Changes = append(res.Changes, Change{Kind: cmd.Kind, Name: cmd.Name, Action: "deleted"})
	case OpKeyCreate:
		k := cmd.Key
		if k == nil || k.ID == "" || len(k.Hash) != 32 {
			return nil, nil, fmt.Errorf("key.create: malformed key")
		}
		if cur.Agents[k.Agent] == nil {
			return nil, nil, fmt.Errorf("agent %q: %w", k.Agent, ErrNotFound)
		}
		if cur.Keys[k.ID] != nil {
			return nil, nil, fmt.Errorf("key %q: %w", k.ID, ErrConflict)
		}
		if k.PinIP != "" {
			if _, err := ParseCIDR(k.PinIP); err != nil || strings.Contains(k.PinIP, "/") {
				return nil, nil, &ValidationError{Errors: []*FieldError{{Field: "pinIP", Msg: fmt.Sprintf("%q is not an IP address", k.PinIP)}}}
			}
		}
		if p := cur.Personas[cur.Agents[k.Agent].Persona]; p != nil && p.Network != nil && p.Network.PinTokensToIP && k.PinIP == "" {
			return nil, nil, &ValidationError{Errors: []*FieldError{{Field: "pinIP", Msg: fmt.Sprintf("persona %q pins every credential to one client IP: give the agent's address (--pin-ip IP)", p.Name)}}}
		}
		kc := *k
		kc.Created = cmd.Time
		next.Keys[k.ID] = &kc
		res.Changes = append(res.Changes, Change{Kind: "APIKey", Name: k.ID, Action: "created"})
	case OpKeyRevoke:
		if cur.Keys[cmd.KeyID] == nil || (cmd.Name != "" && cur.Keys[cmd.KeyID].Agent != cmd.Name) {
			return nil, nil, fmt.Errorf("key %q: %w", cmd.KeyID, ErrNotFound)
		}
		delete(next.Keys, cmd.KeyID)
		res.Changes = append(res.Changes, Change{Kind: "APIKey", Name: cmd.KeyID, Action: "deleted"})
	case OpSecretPut:
		sec := cmd.Secret
		if sec == nil || len(sec.Sealed) == 0 {
			return nil, nil, fmt.Errorf("secret.put: malformed secret")
		}
		if err := ValidateName(sec.Name); err != nil {
			return nil, nil, &ValidationError{Errors: []*FieldError{{Field: "name", Msg: err.Error()}}}
		}
		old := cur.Secrets[sec.Name]
		want := uint64(1)
		if old != nil {
			want = old.Version + 1
		}
		if sec.Version != want {
			return nil, nil, fmt.Errorf("secret %q changed meanwhile (version %d sealed, %d expected); retry: %w", sec.Name, sec.Version, want, ErrConflict)
		}
		sc := *sec
		sc.Updated = cmd.Time
		sc.Created = cmd.Time
		action := "created"
		if old != nil {
			sc.Created, action = old.Created, "updated"
		}
		next.Secrets[sec.Name] = &sc
		res.Changes = append(res.Changes, Change{Kind: "Secret", Name: sec.Name, Action: action})
	case OpSecretReseal:
		sec := cmd.Secret
		if sec == nil || len(sec.Sealed) == 0 {
			return nil, nil, fmt.Errorf("secret.reseal: malformed secret")
		}
		old := cur.Secrets[sec.Name]
		if old == nil {
			return nil, nil, fmt.Errorf("secret %q: %w", sec.Name, ErrNotFound)
		}
		if sec.Version != old.Version {
			return nil, nil, fmt.Errorf("secret %q changed meanwhile (version %d resealed, %d stored); reseal again: %w", sec.Name, sec.Version, old.Version, ErrConflict)
		}
		sc := *old
		sc.Sealed = sec.Sealed
		next.Secrets[sec.Name] = &sc
		res.Changes = append(res.Changes, Change{Kind: "Secret", Name: sec.Name, Action: "updated"})
	case OpSecretDelete:
		if cur.Secrets[cmd.Name] == nil {
			return nil, nil, fmt.Errorf("secret %q: %w", cmd.Name, ErrNotFound)
		}
		var users []string
		for _, u := range cur.Upstreams {
			if slices.Contains(u.Credential.SecretNames(), cmd.Name) {
				users = append(users, "Upstream "+u.Name)
			}
		}
		if len(users) > 0 {
			slices.Sort(users)
			return nil, nil, fmt.Errorf("secret %q is used by %s: %w", cmd.Name, joinAnd(users), ErrInUse)
		}
		delete(next.Secrets, cmd.Name)
		res.Changes = append(res.Changes, Change{Kind: "Secret", Name: cmd.Name, Action: "deleted"})
	case OpGeoIPImport:
		switch {
		case len(cmd.GeoIP) > MaxGeoIPBytes:
			return nil, nil, fmt.Errorf("geoip.import: table of %d bytes exceeds %d", len(cmd.GeoIP), MaxGeoIPBytes)
		case !bytes.HasPrefix(cmd.GeoIP, []byte(geoIPMagic)):
			return nil, nil, fmt.Errorf("geoip.import: not a serialized GeoIP table")
		}
		action := "created"
		if cur.GeoIP != nil {
			action = "updated"
		}
		next.GeoIP, next.GeoIPImported = cmd.GeoIP, cmd.Time
		res.Changes = append(res.Changes, Change{Kind: "GeoIP", Name: "countries", Action: action})
	default:
		return nil, nil, fmt.Errorf("unknown command %q", cmd.Op)
	}
	return next, res, nil
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := ""
	for i, x := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " and "
		default:
			out += ", "
		}
		out += x
	}
	return out
}

func sameObject(a, b Object) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && maps.Equal(a.Metadata().Labels, b.Metadata().Labels)
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
}

type fsmSnapshot struct{ s *Snapshot }

// Snapshot captures the current state; raft persists it off the apply path.
func (s *Store) Snapshot() (raft.FSMSnapshot, error) { return fsmSnapshot{s.cur.Load()}, nil }

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
	if p.Format != 1 {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publish(next)
	return nil
}
