package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// AdminAction is one admin API write as the audit trail records it: who,
// what, which objects it changed (with digests of their documents before
// and after), and how it ended. It holds no token, secret value or request
// body.
type AdminAction struct {
	Time time.Time
	// Identity is the admin credential that authenticated the request: the
	// id of the replicated admin credential it matched ("admin@n1"), or
	// "admin@local" for this node's own token; "" when none did (the
	// request was refused as unauthorized, or was a public route).
	Identity string
	// TokenID names the bearer token presented: the first 8 hex digits of
	// its SHA-256, never the token ("" when there was none).
	TokenID string
	// Role is the RBAC role; every admin credential is "admin" today.
	Role     string
	Method   string // HTTP method
	Route    string // the route template, "/v1/secrets/:name"
	Path     string // the request path (object names; never a secret value)
	ClientIP string
	// Objects are the objects whose stored document changed between the
	// state before and after the request, by kind and name.
	Objects []ObjectChange
	Status  int    // HTTP status of the answer
	Result  string // "ok", or the answer's error code ("conflict", "invalid", …)
	Latency time.Duration
	TraceID string // the request's W3C traceparent trace id, if it sent one
}

// ObjectChange is one object an admin write changed. Before and After are
// hex SHA-256 digests of the object's canonical document (its JSON
// encoding as stored: a declared object as GET shows it without status; a
// key, secret, member, join token or admin credential as replicated, which
// holds hashes and ciphertext only), "" when it did not exist.
type ObjectChange struct {
	Kind   string
	Name   string
	Before string
	After  string
}

// auditWrites records every write request (POST, PUT, PATCH, DELETE under
// /v1, refused ones included) through Config.OnAdminWrite. It runs before
// the admin check, so failed attempts are recorded too (cheaply: no lock,
// no sync, no objects). For an authenticated request auditSerialize, after
// the admin check, takes the state before and after it. The objects changed
// are those the request's own commands named (NoteApply) whose documents
// differ between those states (synced with the leader, so a write forwarded
// there is included); writes through this node are serialized. Only a
// concurrent write to the very same object through another node could be
// folded into a record's digests.
func (a *API) auditWrites(c *gin.Context) {
	if a.cfg.OnAdminWrite == nil || !isWrite(c.Request.Method) {
		c.Next()
		return
	}
	start := time.Now()
	st := &auditState{tr: &writeTracker{names: map[[2]string]bool{}}}
	c.Set(ctxAudit, st)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), trackerKey{}, st.tr))
	cw := &captureWriter{ResponseWriter: c.Writer}
	c.Writer = cw
	c.Next()
	act := AdminAction{
		Time: start.UTC(), Method: c.Request.Method, Route: c.FullPath(), Path: c.Request.URL.Path,
		ClientIP: c.ClientIP(), Status: cw.Status(), Result: "ok", Latency: time.Since(start),
	}
	if st.before != nil {
		act.Objects = st.tr.only(diffState(st.before, st.after))
	}
	if act.Route == "" {
		act.Route = "(no route)"
	}
	if id, ok := c.Get(ctxAdminIdentity); ok {
		act.Identity, act.Role = id.(string), "admin"
	}
	if tid, ok := c.Get(ctxTokenID); ok {
		act.TokenID = tid.(string)
	}
	if tp := c.GetHeader("traceparent"); len(tp) >= 35 && tp[2] == '-' && isLowerHex(tp[3:35]) {
		act.TraceID = tp[3:35]
	}
	if act.Status >= 400 {
		act.Result = cw.errorCode()
	}
	a.cfg.OnAdminWrite(act)
}

// auditState is what auditSerialize hands auditWrites.
type auditState struct {
	tr            *writeTracker
	before, after *state.Snapshot
}

// auditSerialize (after the admin check; with sync false on the public
// routes, which authenticate in their handler) serializes this node's
// audited writes and takes the state before and after the handler.
func (a *API) auditSerialize(sync bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, ok := c.Get(ctxAudit)
		if !ok {
			c.Next()
			return
		}
		st := v.(*auditState)
		a.writeMu.Lock()
		defer a.writeMu.Unlock()
		ctx := c.Request.Context()
		if sync {
			a.syncBriefly(ctx) // best effort: without a leader the write fails anyway
		}
		st.before = a.cfg.Store.Current()
		c.Next()
		if st.tr.proposed() && c.Writer.Status() < 400 {
			a.syncBriefly(ctx) // a write forwarded to the leader may not be applied here yet
		}
		st.after = a.cfg.Store.Current()
	}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// syncBriefly syncs with the leader for at most 2 seconds.
func (a *API) syncBriefly(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = a.sync(ctx)
}

const (
	ctxAdminIdentity = "portcullis.admin.identity"
	ctxTokenID       = "portcullis.admin.token"
	ctxAudit         = "portcullis.admin.audit"
)

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// tokenID is the short public name of a token digest.
func tokenID(digest [sha256.Size]byte) string { return hex.EncodeToString(digest[:4]) }

// captureWriter keeps the start of an error answer's body, to read its
// error code.
type captureWriter struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.keep(b)
	return w.ResponseWriter.Write(b)
}

func (w *captureWriter) WriteString(s string) (int, error) {
	w.keep([]byte(s))
	return w.ResponseWriter.WriteString(s)
}

func (w *captureWriter) keep(b []byte) {
	if w.Status() >= 400 && w.body.Len() < 4<<10 {
		w.body.Write(b[:min(len(b), 4<<10-w.body.Len())])
	}
}

// errorCode is the code of the error envelope written, or "http_<status>".
func (w *captureWriter) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(w.body.Bytes(), &e) == nil && e.Error.Code != "" && len(e.Error.Code) <= 64 {
		return e.Error.Code
	}
	return "http_" + http.StatusText(w.Status())
}

// diffState lists the objects whose stored form differs between two
// snapshots, sorted by kind and name. Snapshots share unchanged objects
// (a clone copies the maps, not the objects), so only the objects whose
// pointer changed are encoded and digested.
func diffState(before, after *state.Snapshot) []ObjectChange {
	if before == after {
		return nil
	}
	var out []ObjectChange
	diffObjects(&out, string(state.KindUpstream), before.Upstreams, after.Upstreams, docOf[*state.Upstream])
	diffObjects(&out, string(state.KindSkill), before.Skills, after.Skills, docOf[*state.Skill])
	diffObjects(&out, string(state.KindPersona), before.Personas, after.Personas, docOf[*state.Persona])
	diffObjects(&out, string(state.KindAgent), before.Agents, after.Agents, docOf[*state.Agent])
	diffObjects(&out, string(state.KindNetworkPolicy), before.NetworkPolicies, after.NetworkPolicies, docOf[*state.NetworkPolicy])
	raw := func(v any) []byte { return encodeCanonical(v) }
	diffObjects(&out, "APIKey", before.Keys, after.Keys, func(k *state.APIKey) []byte { return raw(k) })
	diffObjects(&out, "Secret", before.Secrets, after.Secrets, func(s *state.Secret) []byte { return raw(s) })
	diffObjects(&out, "ClusterMember", before.Members, after.Members, func(m *state.ClusterMember) []byte { return raw(m) })
	diffObjects(&out, "JoinToken", before.JoinTokens, after.JoinTokens, func(t *state.JoinToken) []byte { return raw(t) })
	diffObjects(&out, "AdminCredential", before.Admins, after.Admins, func(c *state.AdminCredential) []byte { return raw(c) })
	if !bytes.Equal(before.GeoIP, after.GeoIP) {
		out = append(out, ObjectChange{Kind: "GeoIP", Name: "countries", Before: digestOrEmpty(before.GeoIP), After: digestOrEmpty(after.GeoIP)})
	}
	return out
}

func docOf[O state.Object](o O) []byte { return encodeCanonical(state.EncodeDocument(o)) }

func diffObjects[T any](out *[]ObjectChange, kind string, before, after map[string]*T, enc func(*T) []byte) {
	var names []string
	for n, o := range after {
		if before[n] != o {
			names = append(names, n)
		}
	}
	for n := range before {
		if _, ok := after[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		ch := ObjectChange{Kind: kind, Name: n}
		if o := before[n]; o != nil {
			ch.Before = digestOrEmpty(enc(o))
		}
		if o := after[n]; o != nil {
			ch.After = digestOrEmpty(enc(o))
		}
		if ch.Before != ch.After {
			*out = append(*out, ch)
		}
	}
}

// encodeCanonical is v's JSON: encoding/json writes struct fields in
// declaration order and map keys sorted, so equal objects give equal bytes.
func encodeCanonical(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("unencodable: " + strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return b
}

func digestOrEmpty(b []byte) string {
	if b == nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ObjectDigest is the digest diffState gives a declared object's document
// (for tests and auditors recomputing one from GET's output without its
// status).
func ObjectDigest(o state.Object) string {
	return digestOrEmpty(encodeCanonical(state.EncodeDocument(o)))
}

// Applier proposes a raft command: what cluster.Node.Apply does, and what
// Routes' handlers are given to write through.
type Applier interface {
	Apply(ctx context.Context, cmd []byte) (any, error)
}

// TrackApplies wraps the Applier a Route's handler writes through, so that
// the admin record of the request names the objects its commands changed
// (NoteApply on each command). Outside an audited admin request it only
// passes the call on.
func TrackApplies(c Applier) Applier { return trackedApplier{c} }

type trackedApplier struct{ Applier }

func (t trackedApplier) Apply(ctx context.Context, cmd []byte) (any, error) {
	NoteApply(ctx, cmd)
	return t.Applier.Apply(ctx, cmd)
}

// NoteApply tells the admin record of the request ctx belongs to that cmd
// (an encoded state.Command) was proposed for it: the record's Objects are
// the objects such commands name whose document changed during the
// request. Changes the node made on its own meanwhile (a member joining,
// a background write) are not attributed to the admin. Safe to call with
// any context.
func NoteApply(ctx context.Context, cmd []byte) {
	w, _ := ctx.Value(trackerKey{}).(*writeTracker)
	if w == nil {
		return
	}
	c, err := state.DecodeCommand(cmd)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	add := func(kind, name string) {
		if name != "" {
			w.names[[2]string{kind, name}] = true
		}
	}
	for _, d := range c.Documents {
		add(string(d.Kind), d.Metadata.Name)
	}
	if c.Kind != "" {
		add(string(c.Kind), c.Name)
	} else {
		add("Secret", c.Name)
		add("ClusterMember", c.Name)
	}
	if c.Key != nil {
		add("APIKey", c.Key.ID)
	}
	add("APIKey", c.KeyID)
	add("JoinToken", c.KeyID)
	if c.Secret != nil {
		add("Secret", c.Secret.Name)
	}
	if c.Member != nil {
		add("ClusterMember", c.Member.ID)
	}
	if c.JoinToken != nil {
		add("JoinToken", c.JoinToken.ID)
	}
	if c.Admin != nil {
		add("AdminCredential", c.Admin.ID)
	}
	if c.Op == state.OpGeoIPImport {
		add("GeoIP", "countries")
	}
}

type trackerKey struct{}

// writeTracker collects the objects named by one request's commands.
type writeTracker struct {
	mu    sync.Mutex
	names map[[2]string]bool
}

func (w *writeTracker) proposed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.names) > 0
}

func (w *writeTracker) only(changes []ObjectChange) []ObjectChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ObjectChange
	for _, c := range changes {
		if w.names[[2]string{c.Kind, c.Name}] {
			out = append(out, c)
		}
	}
	return out
}
