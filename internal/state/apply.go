package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// What Apply decides, and what it leaves to Prepare.
//
// Validation — is this document well formed, does this name follow the
// rules, can this node bind that listener — depends only on the command and
// on the binary, so it runs once, when the command is proposed (Prepare),
// and never again: a newer binary's stricter rules cannot refuse an entry
// the cluster already committed.
//
// What Apply still checks is what depends on the state at the moment the
// entry applies, which a proposer cannot know for sure because another
// write may commit first: that referenced objects and secrets exist, that a
// deleted object is not referenced, that a secret's version follows the
// stored one, that a key ID is new, that a pinning persona gets a pinned
// key, that two personas do not claim one listener. These are
// compare-and-set rules: cheap, deterministic, and part of the command
// format — changing one needs a new CommandVersion.

// Apply applies one raft log entry. It returns *Result, or an error when the
// command is refused against the current state (the state is then
// unchanged). An entry this binary cannot understand halts the store (see
// Halted) instead of being skipped.
func (s *Store) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if err := s.Err(); err != nil {
		return err
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			s.halt(l.Index, err)
			return err
		}
		s.log.Error("state: undecodable command skipped", "index", l.Index, "err", err)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cmd.Op == OpSessionEvents {
		if cmd.Sessions == nil {
			return malformed("sessions.events: no events")
		}
		return s.applySessions(cmd, l.Index)
	}
	if cmd.Op == OpAuditBatch {
		if err := checkAuditBatch(cmd.Audit); err != nil {
			return err // Prepare refuses it; a hand-made entry changes nothing
		}
		return s.applyAudit(cmd, l.Index)
	}
	apply := applyV1
	if cmd.V == V0 {
		apply = applyV0
	}
	next, res, err := apply(s.cur.Load(), cmd, l.Index)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			s.halt(l.Index, err)
		}
		return err
	}
	s.publish(next)
	return res
}

// applyV1 applies a command that Prepare validated. It never modifies cur.
func applyV1(cur *Snapshot, cmd *Command, index uint64) (*Snapshot, *Result, error) {
	if clusterOp(cmd.Op) {
		return applyCluster(cur, cmd, index) // DecodeCommand admits these only at V2
	}
	if behaviourOp(cmd.Op) {
		return applyBehaviour(cur, cmd, index) // and these only at V3
	}
	switch cmd.Op {
	case OpApply:
		objs, err := decodeCommitted(cmd.Documents)
		if err != nil {
			return nil, nil, err
		}
		return applyObjects(cur, objs, cmd.Time, index)
	case OpDelete:
		return deleteObject(cur, cmd.Kind, cmd.Name, index)
	case OpKeyCreate:
		if cmd.Key == nil {
			return nil, nil, malformed("key.create: malformed key")
		}
		return createKey(cur, cmd.Key, cmd.Time, index)
	case OpKeyRevoke:
		return revokeKey(cur, cmd.Name, cmd.KeyID, index)
	case OpSecretPut:
		if cmd.Secret == nil {
			return nil, nil, malformed("secret.put: malformed secret")
		}
		return putSecret(cur, cmd.Secret, cmd.Time, index)
	case OpSecretReseal:
		if cmd.Secret == nil {
			return nil, nil, malformed("secret.reseal: malformed secret")
		}
		return resealSecret(cur, cmd.Secret, index)
	case OpSecretDelete:
		return deleteSecret(cur, cmd.Name, index)
	case OpGeoIPImport:
		return importGeoIP(cur, cmd.GeoIP, cmd.Time, index)
	}
	return nil, nil, fmt.Errorf("command format %d: operation %q: %w", cmd.V, cmd.Op, ErrUnsupported)
}

// applyV0 applies an entry written before command versions, exactly as the
// binaries that wrote it did: they validated inside Apply, so it checks
// what they checked (in their order, with their messages) and then applies
// through the same functions as applyV1. The golden replay test
// (testdata/replay/v0.*) pins this behaviour; it must never change.
func applyV0(cur *Snapshot, cmd *Command, index uint64) (*Snapshot, *Result, error) {
	switch cmd.Op {
	case OpApply:
		objs, err := decodeV0Documents(cmd.Documents)
		if err != nil {
			return nil, nil, err
		}
		return applyObjects(cur, objs, cmd.Time, index)
	case OpDelete, OpKeyRevoke, OpSecretDelete:
		return applyV1(cur, cmd, index) // checked nothing but the state
	case OpKeyCreate:
		k := cmd.Key
		if k == nil || k.ID == "" || len(k.Hash) != 32 {
			return nil, nil, malformed("key.create: malformed key")
		}
		if cur.Agents[k.Agent] == nil {
			return nil, nil, fmt.Errorf("agent %q: %w", k.Agent, ErrNotFound)
		}
		if cur.Keys[k.ID] != nil {
			return nil, nil, fmt.Errorf("key %q: %w", k.ID, ErrConflict)
		}
		if fe := checkPinIP(k.PinIP); fe != nil {
			return nil, nil, &ValidationError{Errors: []*FieldError{fe}}
		}
		return createKey(cur, k, cmd.Time, index)
	case OpSecretPut:
		if err := checkSecret(cmd.Op, cmd.Secret, true); err != nil {
			return nil, nil, err
		}
		return putSecret(cur, cmd.Secret, cmd.Time, index)
	case OpSecretReseal:
		if err := checkSecret(cmd.Op, cmd.Secret, false); err != nil {
			return nil, nil, err
		}
		return resealSecret(cur, cmd.Secret, index)
	case OpGeoIPImport:
		if err := checkGeoIP(cmd.GeoIP); err != nil {
			return nil, nil, err
		}
		return importGeoIP(cur, cmd.GeoIP, cmd.Time, index)
	}
	return nil, nil, fmt.Errorf("unknown command %q", cmd.Op)
}

// decodeV0Documents validates documents as format-0 Apply did.
func decodeV0Documents(docs []Document) ([]Object, error) {
	var errs []*FieldError
	var objs []Object
	for i, d := range docs {
		raw, _ := json.Marshal(d)
		o, err := DecodeDocument(raw)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				return nil, err
			}
			for _, fe := range ve.Errors {
				fe.Doc = i + 1
			}
			errs = append(errs, ve.Errors...)
			continue
		}
		objs = append(objs, o)
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return objs, nil
}

// decodeCommitted decodes the documents of a V1 command without validating
// them (Prepare did). A document this binary cannot represent exactly — an
// unknown apiVersion, kind or field — means a newer binary wrote it.
func decodeCommitted(docs []Document) ([]Object, error) {
	objs := make([]Object, 0, len(docs))
	for i, d := range docs {
		o := newObject(d.Kind)
		if d.APIVersion != APIVersion || o == nil {
			return nil, fmt.Errorf("document %d: %s %s: %w", i+1, d.APIVersion, d.Kind, ErrUnsupported)
		}
		dec := json.NewDecoder(bytes.NewReader(d.Spec))
		dec.DisallowUnknownFields()
		if err := dec.Decode(o); err != nil {
			return nil, fmt.Errorf("document %d (%s %s): %v: %w", i+1, d.Kind, d.Metadata.Name, err, ErrUnsupported)
		}
		m := o.Metadata()
		m.Name, m.Labels = d.Metadata.Name, d.Metadata.Labels
		objs = append(objs, o)
	}
	return objs, nil
}

// applyObjects creates or updates objs, all or nothing: it refuses the
// batch if any object would then refer to something missing.
func applyObjects(cur *Snapshot, objs []Object, now time.Time, index uint64) (*Snapshot, *Result, error) {
	next := cur.clone()
	next.Index = index
	res := &Result{Index: index}
	for _, o := range objs {
		m := o.Metadata()
		action := "created"
		if old := cur.Get(o.Kind(), m.Name); old != nil {
			if sameObject(old, o) {
				res.Changes = append(res.Changes, Change{Kind: o.Kind(), Name: m.Name, Action: "unchanged"})
				continue
			}
			action = "updated"
			m.Created = old.Metadata().Created
		} else {
			m.Created = now
		}
		m.Updated, m.Revision = now, index
		next.put(o)
		res.Changes = append(res.Changes, Change{Kind: o.Kind(), Name: m.Name, Action: action})
	}
	var errs []*FieldError
	for _, o := range objs {
		errs = append(errs, checkRefs(next, o)...)
	}
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
	return next, res, nil
}

func deleteObject(cur *Snapshot, kind Kind, name string, index uint64) (*Snapshot, *Result, error) {
	if cur.Get(kind, name) == nil {
		return nil, nil, fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	if refs := referrers(cur, kind, name); len(refs) > 0 {
		return nil, nil, fmt.Errorf("%s %q is used by %s: %w", kind, name, joinAnd(refs), ErrInUse)
	}
	next := cur.clone()
	next.Index = index
	next.remove(kind, name)
	return next, changed(index, kind, name, "deleted"), nil
}

func createKey(cur *Snapshot, k *APIKey, now time.Time, index uint64) (*Snapshot, *Result, error) {
	agent := cur.Agents[k.Agent]
	if agent == nil {
		return nil, nil, fmt.Errorf("agent %q: %w", k.Agent, ErrNotFound)
	}
	if cur.Keys[k.ID] != nil {
		return nil, nil, fmt.Errorf("key %q: %w", k.ID, ErrConflict)
	}
	if p := cur.Personas[agent.Persona]; p != nil && p.Network != nil && p.Network.PinTokensToIP && k.PinIP == "" {
		return nil, nil, &ValidationError{Errors: []*FieldError{{Field: "pinIP", Msg: fmt.Sprintf("persona %q pins every credential to one client IP: give the agent's address (--pin-ip IP)", p.Name)}}}
	}
	next := cur.clone()
	next.Index = index
	kc := *k
	kc.Created = now
	next.Keys[k.ID] = &kc
	return next, changed(index, "APIKey", k.ID, "created"), nil
}

func revokeKey(cur *Snapshot, agent, id string, index uint64) (*Snapshot, *Result, error) {
	if cur.Keys[id] == nil || (agent != "" && cur.Keys[id].Agent != agent) {
		return nil, nil, fmt.Errorf("key %q: %w", id, ErrNotFound)
	}
	next := cur.clone()
	next.Index = index
	delete(next.Keys, id)
	return next, changed(index, "APIKey", id, "deleted"), nil
}

func putSecret(cur *Snapshot, sec *Secret, now time.Time, index uint64) (*Snapshot, *Result, error) {
	old := cur.Secrets[sec.Name]
	want := uint64(1)
	if old != nil {
		want = old.Version + 1
	}
	if sec.Version != want {
		return nil, nil, fmt.Errorf("secret %q changed meanwhile (version %d sealed, %d expected); retry: %w", sec.Name, sec.Version, want, ErrConflict)
	}
	sc := *sec
	sc.Created, sc.Updated = now, now
	action := "created"
	if old != nil {
		sc.Created, action = old.Created, "updated"
	}
	next := cur.clone()
	next.Index = index
	next.Secrets[sec.Name] = &sc
	return next, changed(index, "Secret", sec.Name, action), nil
}

func resealSecret(cur *Snapshot, sec *Secret, index uint64) (*Snapshot, *Result, error) {
	old := cur.Secrets[sec.Name]
	if old == nil {
		return nil, nil, fmt.Errorf("secret %q: %w", sec.Name, ErrNotFound)
	}
	if sec.Version != old.Version {
		return nil, nil, fmt.Errorf("secret %q changed meanwhile (version %d resealed, %d stored); reseal again: %w", sec.Name, sec.Version, old.Version, ErrConflict)
	}
	sc := *old
	sc.Sealed = sec.Sealed
	next := cur.clone()
	next.Index = index
	next.Secrets[sec.Name] = &sc
	return next, changed(index, "Secret", sec.Name, "updated"), nil
}

func deleteSecret(cur *Snapshot, name string, index uint64) (*Snapshot, *Result, error) {
	if cur.Secrets[name] == nil {
		return nil, nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	var users []string
	for _, u := range cur.Upstreams {
		if slices.Contains(u.Credential.SecretNames(), name) {
			users = append(users, "Upstream "+u.Name)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return nil, nil, fmt.Errorf("secret %q is used by %s: %w", name, joinAnd(users), ErrInUse)
	}
	next := cur.clone()
	next.Index = index
	delete(next.Secrets, name)
	return next, changed(index, "Secret", name, "deleted"), nil
}

func importGeoIP(cur *Snapshot, blob []byte, now time.Time, index uint64) (*Snapshot, *Result, error) {
	action := "created"
	if cur.GeoIP != nil {
		action = "updated"
	}
	next := cur.clone()
	next.Index = index
	next.GeoIP, next.GeoIPImported = blob, now
	return next, changed(index, "GeoIP", "countries", action), nil
}

func changed(index uint64, kind Kind, name, action string) *Result {
	return &Result{Index: index, Changes: []Change{{Kind: kind, Name: name, Action: action}}}
}

// malformedError is a refusal of a command that can never apply; its text
// is kept exactly as format-0 binaries wrote it.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }
func (e *malformedError) Unwrap() error { return ErrMalformed }

func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func sameObject(a, b Object) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && maps.Equal(a.Metadata().Labels, b.Metadata().Labels)
}
