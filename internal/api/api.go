// Package api is the admin REST API of a Portcullis node (gin), served on
// the management listener, apart from the agents' data plane.
//
// Every route under /v1 needs the admin bearer token. Reads come from the
// node's local state snapshot; writes are validated completely against it
// (state.Store.Prepare, with this node's facts) and then proposed as one
// raft command through the cluster node, so a request either changes
// everything it asked for or nothing.
//
// Routes:
//
//	GET    /healthz                      200 once the node serves (no auth)
//	GET    /v1/status                    raft status of this node
//	POST   /v1/apply                     apply YAML documents (all or nothing)
//	GET    /v1/{kind}                    list upstreams, skills, personas, agents, networkpolicies
//	GET    /v1/{kind}/{name}             one object, as a re-appliable document
//	DELETE /v1/{kind}/{name}             delete (refused while referenced)
//	POST   /v1/agents/{name}/keys        create an API key (returned once)
//	GET    /v1/agents/{name}/keys        key metadata
//	DELETE /v1/agents/{name}/keys/{id}   revoke a key
//	POST   /v1/personas/draft            draft a persona from a job description
//
// POST /v1/apply takes {"files": [{"name", "content"}], "dryRun"} as JSON,
// or one YAML (or JSON) document stream as the body (?file= names it in
// errors, ?dryRun=true validates only). All files of a request are parsed
// and validated together, in any order, and become one raft command; an
// invalid request answers 422 with one problem per field (file, 1-based
// document, line, field, message) and changes nothing. The answer lists
// each object with its action: created, updated or unchanged.
//
// Errors are {"error": {"code", "message", "details"}} with user-safe text.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Cluster is what the API needs of the raft node.
type Cluster interface {
	Apply(ctx context.Context, cmd []byte) (any, error)
	Status() cluster.Status
}

// Syncer is implemented by a Cluster whose nodes can lag the leader: Sync
// returns once the local state holds every write acknowledged before it
// was called. The API syncs before checking a write against the local
// state and before answering reads, so an admin who wrote through one
// node reads (and builds on) that write through any other.
type Syncer interface {
	Sync(ctx context.Context) error
}

// syncRead syncs before a read; on failure it answers 503 and false.
func (a *API) syncRead(c *gin.Context) bool {
	if err := a.sync(c.Request.Context()); err != nil {
		a.writeError(c, errorf(http.StatusServiceUnavailable, CodeUnavailable, "this node cannot confirm its state is current (%s); retry, or ask another node", err))
		return false
	}
	return true
}

// Replicator is implemented by a Cluster that can wait, briefly and best
// effort, until a committed write is applied on every live node: the API
// answers a write once it is in effect everywhere it can be.
type Replicator interface {
	WaitReplicated(ctx context.Context, index uint64)
}

func (a *API) sync(ctx context.Context) error {
	if s, ok := a.cfg.Cluster.(Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

var _ Cluster = (*cluster.Node)(nil)

// Drafter proposes a persona for a job description. The returned value is
// sent to the client as JSON; by convention it has "proposal" (the drafted
// persona and the reasons) and "yaml" (appliable documents, annotated). An
// *Error it returns reaches the client as is.
type Drafter func(ctx context.Context, description string, snap *state.Snapshot) (any, error)

// Config configures the API.
type Config struct {
	// Store is the local replicated state (reads). Required.
	Store *state.Store
	// Cluster proposes writes. Required.
	Cluster Cluster
	// AdminToken is the bearer token of the admin. Required.
	AdminToken string
	// Ready reports whether the node serves; /healthz answers 503 until it
	// does. Nil means always ready.
	Ready func() bool
	// Status, when set, reports this node's runtime view of an object
	// (an Upstream's connection), shown as the document's "status" by
	// GET; nil or a nil answer shows none. Called on the request's
	// goroutine; it must not block on the network.
	Status func(kind state.Kind, name string) any
	// Drafter backs POST /v1/personas/draft; nil answers 501.
	Drafter Drafter
	// Routes adds admin routes served by other components (under /v1,
	// behind the admin token), e.g. a GeoIP import or XDP statistics.
	Routes []Route
	// Logger receives request and error logs. Nil discards them.
	Logger *slog.Logger
	// Now stamps commands; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; default 16 MiB.
	MaxBodyBytes int64
	// Validate, when set, adds component checks to every applied object
	// (e.g. that DLP rules name known detectors). It runs before anything
	// is proposed, never inside the state machine, so a newer binary's
	// stricter checks cannot make an old raft log unreplayable.
	Validate func(state.Object) []*state.FieldError
	// Node holds the facts about this node that documents are checked
	// against when proposed (its own listeners, dev mode): a persona
	// endpoint that could never bind here is refused. Zero checks nothing.
	Node state.Node
	// OnAdminWrite, when set, receives one AdminAction per write request
	// (the audit trail's admin records), on the request's goroutine after
	// the answer was written. It must not block for long.
	OnAdminWrite func(AdminAction)
}

// Route is an extra admin route. Path is relative to /v1 and may use gin
// parameters (":name").
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
	// Public routes skip the admin token: the handler authenticates the
	// request itself (a node joining with a join token).
	Public bool
}

// API is the admin REST API. It is an http.Handler.
type API struct {
	cfg         Config
	log         *slog.Logger
	adminDigest [32]byte
	engine      *gin.Engine
	writeMu     sync.Mutex // serializes audited writes (auditWrites)
}

var _ http.Handler = (*API)(nil)

// New builds the API's routes.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("api: store is required")
	case cfg.Cluster == nil:
		return nil, errors.New("api: cluster is required")
	case len(cfg.AdminToken) < 16:
		return nil, errors.New("api: admin token is required (at least 16 characters)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ready == nil {
		cfg.Ready = func() bool { return true }
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	a := &API{cfg: cfg, log: cfg.Logger, adminDigest: tokenDigest(cfg.AdminToken)}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(a.recover, a.logRequests)
	e.NoRoute(a.notFound)
	e.NoMethod(func(c *gin.Context) {
		a.writeError(c, errorf(http.StatusMethodNotAllowed, CodeBadRequest, "method %s not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	e.GET("/healthz", a.healthz)

	public := e.Group("/v1", a.auditWrites, a.auditSerialize(false), a.limitBody)
	v1 := e.Group("/v1", a.auditWrites, a.requireAdmin, a.auditSerialize(true), a.limitBody)
	v1.GET("/status", a.status)
	v1.POST("/apply", a.apply)
	v1.POST("/personas/draft", a.draft)
	v1.POST("/agents/:name/keys", a.createKey)
	v1.GET("/agents/:name/keys", a.listKeys)
	v1.DELETE("/agents/:name/keys/:id", a.revokeKey)
	for _, r := range cfg.Routes {
		g := v1
		if r.Public {
			g = public
		}
		if err := addRoute(g, r); err != nil {
			return nil, err
		}
	}
	// One route set per kind (plural and singular path), rather than a
	// /:kind wildcard: gin does not backtrack from /agents/:name/keys.
	for _, k := range state.Kinds {
		for _, p := range kindPaths(k) {
			v1.GET("/"+p, a.list)
			v1.GET("/"+p+"/:name", a.get)
			v1.DELETE("/"+p+"/:name", a.remove)
		}
	}
	a.engine = e
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.engine.ServeHTTP(w, r) }

// addRoute registers an extra route; gin panics on a conflicting one, which
// becomes an error here.
func addRoute(g *gin.RouterGroup, r Route) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("api: route %s /v1%s: %v", r.Method, r.Path, v)
		}
	}()
	if r.Handler == nil || !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("api: route %s %q: want a handler and a path starting with /", r.Method, r.Path)
	}
	g.Handle(r.Method, r.Path, gin.WrapH(r.Handler))
	return nil
}

// kindPaths are the path segments naming a kind: "upstreams", "upstream".
func kindPaths(k state.Kind) []string {
	l := strings.ToLower(string(k))
	if strings.HasSuffix(l, "y") {
		return []string{l[:len(l)-1] + "ies", l} // networkpolicies
	}
	return []string{l + "s", l}
}

func (a *API) notFound(c *gin.Context) {
	p := strings.TrimPrefix(c.Request.URL.Path, "/v1/")
	if seg, _, _ := strings.Cut(p, "/"); p != c.Request.URL.Path && seg != "" {
		if _, err := state.ParseKind(seg); err != nil {
			a.requireAdmin(c)
			if !c.IsAborted() {
				a.writeError(c, errorf(http.StatusNotFound, CodeNotFound, "%s", err))
			}
			return
		}
	}
	a.writeError(c, errorf(http.StatusNotFound, CodeNotFound, "no such route: %s %s", c.Request.Method, c.Request.URL.Path))
}

func (a *API) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.writeError(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

func (a *API) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	// Paths carry object names, never secrets; bodies are not logged.
	a.log.Debug("admin api", "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "dur", time.Since(start), "client", c.ClientIP())
}

func (a *API) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.cfg.MaxBodyBytes)
	}
	c.Next()
}

func (a *API) healthz(c *gin.Context) {
	if !a.cfg.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "starting"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (a *API) status(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"raft": a.cfg.Cluster.Status(), "stateIndex": a.cfg.Store.Current().Index})
}

// propose validates and replicates cmd and returns the state's result,
// with errors mapped to API errors.
func (a *API) propose(ctx context.Context, cmd *state.Command) (*state.Result, error) {
	res, err := a.proposeRaw(ctx, cmd)
	if err != nil {
		return nil, mapWriteError(err)
	}
	return res, nil
}

// proposeRaw validates cmd against the local state (state.Store.Prepare),
// so that nothing invalid reaches the raft log, replicates the prepared
// command and returns the state's result or its error. The state machine
// re-checks only what a concurrent write may have changed meanwhile.
func (a *API) proposeRaw(ctx context.Context, cmd *state.Command) (*state.Result, error) {
	prepared, _, err := a.prepare(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return a.replicate(ctx, prepared)
}

// prepare checks cmd against the local state (state.Store.Prepare). A
// follower's state may lack writes acknowledged through another node: when
// refused, it syncs with the leader and checks again (not before: during an
// election a write waits for the next leader instead of failing).
func (a *API) prepare(ctx context.Context, cmd *state.Command) (*state.Command, *state.Result, error) {
	prepared, res, err := a.cfg.Store.Prepare(cmd, a.cfg.Node)
	if err != nil && a.sync(ctx) == nil {
		prepared, res, err = a.cfg.Store.Prepare(cmd, a.cfg.Node)
	}
	return prepared, res, err
}

// replicate proposes a command Prepare returned. The response of a write
// forwarded to the leader arrives as state.DecodeOutcome gives it, so it
// is handled exactly like a local one.
func (a *API) replicate(ctx context.Context, cmd *state.Command) (*state.Result, error) {
	b, err := cmd.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	NoteApply(ctx, b) // adminaudit.go
	resp, err := a.cfg.Cluster.Apply(ctx, b)
	if err != nil {
		return nil, err
	}
	res, ok := resp.(*state.Result)
	if !ok {
		return nil, fmt.Errorf("unexpected apply response %T", resp)
	}
	// A write forwarded to the leader is acknowledged before this node
	// applied it: wait, so that what this node answers next includes it.
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for a.cfg.Store.Current().Index < res.Index {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the write committed (index %d) but this node has not applied it yet: %w", res.Index, ctx.Err())
		case <-t.C:
		}
	}
	if r, ok := a.cfg.Cluster.(Replicator); ok {
		r.WaitReplicated(ctx, res.Index)
	}
	return res, nil
}

// mapWriteError turns cluster and state errors into user-safe API errors.
// State errors name only objects the admin declared, so their text is safe.
func mapWriteError(err error) error {
	var ve *state.ValidationError
	var nle *cluster.NotLeaderError
	switch {
	case errors.As(err, &ve):
		return validationError(ve, nil)
	case errors.Is(err, state.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "%s", err)
	case errors.Is(err, state.ErrInUse), errors.Is(err, state.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "%s", err)
	case errors.As(err, &nle):
		e := errorf(http.StatusServiceUnavailable, CodeNotLeader, "this node is not the raft leader; send writes to the leader")
		if nle.LeaderID != "" {
			e.Details = gin.H{"leaderID": nle.LeaderID}
		}
		return e
	case errors.Is(err, cluster.ErrUnknownOutcome):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the cluster's leader changed while this write was being committed: it may or may not have been applied; read it back, and send it again if it is missing")
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrClosed):
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the cluster cannot accept writes right now (no leader); retry shortly")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Canceled: the client went away; not a server failure to log.
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "the write did not commit in time; it may still be applied")
	}
	return err
}
