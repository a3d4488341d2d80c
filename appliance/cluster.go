package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Clustering.
//
// A node with an HSM speaks mutual TLS on its raft port (identity.go) and
// can admit others: `cluster join-token create` stores a single-use,
// expiring token (its hash) in the replicated state; a new node started
// with --join posts the token, its certificate request, its CA certificate
// and an HSM wrapping public key to any member's POST /v1/cluster/join.
// That member checks the token, wraps the cluster's secret keys to the new
// node's HSM (the PKCS#11 ceremony of hsm/replicate.go: automatic in dev
// mode, approved by the Security Officer otherwise), marks the token used
// through raft (so two nodes can never both use it), records the new member
// and answers with its certificate, the trust bundle and the wrapped keys.
// The leader follows the member list: it adds a new member as a non-voter
// and promotes it once it has caught up, and removes deleted members.
//
// Every node serves agents from its local replicated state. One that has
// not heard from a leader for longer than --max-stale refuses agent calls
// (503) instead of honouring keys or personas that may since have been
// revoked or deleted; it catches up by itself when it hears from the
// leader again.

// joinTokenPrefix starts every join token: pcj1.<id>.<secret>.<ca>
const joinTokenPrefix = "pcj1."

// defaultMaxStale is how long a node out of touch with the leader keeps
// serving agents.
const defaultMaxStale = 30 * time.Second

type joinToken struct {
	id, secret, ca string // ca: hex SHA-256 prefix of the issuing node's CA certificate
}

func parseJoinToken(s string) (joinToken, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(strings.TrimPrefix(s, joinTokenPrefix), ".")
	if !strings.HasPrefix(s, joinTokenPrefix) || len(parts) != 3 || parts[0] == "" || len(parts[1]) < 32 || len(parts[2]) != 16 {
		return joinToken{}, errors.New("not a Portcullis join token (want pcj1.<id>.<secret>.<ca>, as `portcullis cluster join-token create` prints)")
	}
	return joinToken{id: parts[0], secret: parts[1], ca: parts[2]}, nil
}

func (t joinToken) String() string { return joinTokenPrefix + t.id + "." + t.secret + "." + t.ca }

func tokenHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// joinRequest is what a joining node posts.
type joinRequest struct {
	Token       string `json:"token"`
	NodeID      string `json:"nodeId"`
	RaftAddr    string `json:"raftAddr"`
	CSR         string `json:"csr"`         // PEM
	CACert      string `json:"caCert"`      // PEM: the joining node's own HSM CA
	WrappingKey []byte `json:"wrappingKey"` // PKIX DER of its HSM wrapping key
}

// joinResponse is what it gets back.
type joinResponse struct {
	NodeCert string           `json:"nodeCert"`
	Bundle   []string         `json:"bundle"`
	Keys     []hsm.WrappedKey `json:"keys"`
	Leader   string           `json:"leader"`
}

// clusterRoutes are the admin API's cluster routes.
func (a *Appliance) clusterRoutes() []api.Route {
	return []api.Route{
		{Method: http.MethodGet, Path: "/cluster", Handler: http.HandlerFunc(a.serveClusterStatus)},
		{Method: http.MethodPost, Path: "/cluster/join-tokens", Handler: http.HandlerFunc(a.createJoinToken)},
		{Method: http.MethodPost, Path: "/cluster/join", Handler: http.HandlerFunc(a.serveJoin), Public: true},
		{Method: http.MethodDelete, Path: "/cluster/members/:id", Handler: http.HandlerFunc(a.removeMember)},
		{Method: http.MethodPost, Path: "/cluster/leader", Handler: http.HandlerFunc(a.transferLeader)},
	}
}

func (a *Appliance) clusterUnavailable(w http.ResponseWriter) bool {
	if a.ident != nil {
		return false
	}
	api.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable,
		"this node has no HSM, so it cannot form a cluster: node certificates come from the cluster CA in the HSM and the sealing keys reach new nodes through it (start with --hsm-token; dev mode needs SoftHSM2: apt install softhsm2)", nil)
	return true
}

// ClusterStatus is GET /v1/cluster and `portcullis cluster status`.
type ClusterStatus struct {
	Leader  string                 `json:"leader"`
	Term    uint64                 `json:"term"`
	Members []cluster.MemberStatus `json:"members"`
	// Self is the answering node; StaleSeconds how old its view may be,
	// MaxStaleSeconds when it stops serving agents.
	Self            string  `json:"self"`
	StaleSeconds    float64 `json:"staleSeconds"`
	MaxStaleSeconds float64 `json:"maxStaleSeconds"`
	Serving         bool    `json:"serving"`
}

func (a *Appliance) clusterStatus(ctx context.Context) ClusterStatus {
	cs := a.node.ClusterStatus(ctx)
	return ClusterStatus{Leader: cs.Leader, Term: cs.Term, Members: cs.Members, Self: a.nodeID,
		StaleSeconds: a.node.Staleness().Seconds(), MaxStaleSeconds: a.maxStale().Seconds(), Serving: a.serving()}
}

func (a *Appliance) serveClusterStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, a.clusterStatus(r.Context()))
}

func (a *Appliance) createJoinToken(w http.ResponseWriter, r *http.Request) {
	if a.clusterUnavailable(w) {
		return
	}
	var req struct {
		TTL string `json:"ttl"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "body: "+err.Error(), nil)
		return
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < time.Minute || d > 7*24*time.Hour {
			api.WriteError(w, http.StatusUnprocessableEntity, api.CodeInvalid, fmt.Sprintf("ttl %q: want a duration between 1m and 168h", req.TTL), nil)
			return
		}
		ttl = d
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(a.keystore.RandomReader(), raw); err != nil {
		api.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the HSM cannot make random bytes now: "+err.Error(), nil)
		return
	}
	tok := joinToken{id: randomHex(6), secret: base64.RawURLEncoding.EncodeToString(raw), ca: a.ident.caFingerprint()[:16]}
	expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
	cmd := &state.Command{Op: state.OpTokenCreate, Time: time.Now().UTC(), JoinToken: &state.JoinToken{ID: tok.id, Hash: tokenHash(tok.secret), Expires: expires}}
	if _, err := a.propose(r.Context(), cmd); err != nil {
		a.writeProposeError(w, err)
		return
	}
	a.log.Info("join token created", "id", tok.id, "expires", expires)
	api.WriteJSON(w, http.StatusCreated, map[string]any{"token": tok.String(), "id": tok.id, "expires": expires})
}

// propose validates and replicates a cluster command.
func (a *Appliance) propose(ctx context.Context, cmd *state.Command) (*state.Result, error) {
	prepared, _, err := a.store.Prepare(cmd, state.Node{})
	if err != nil {
		return nil, err
	}
	b, err := prepared.Encode()
	if err != nil {
		return nil, err
	}
	api.NoteApply(ctx, b) // an admin request's write gets its admin record (audit)
	resp, err := a.node.Apply(ctx, b)
	if err != nil {
		return nil, err
	}
	res, _ := resp.(*state.Result)
	return res, nil
}

func (a *Appliance) writeProposeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrNotFound):
		api.WriteError(w, http.StatusConflict, api.CodeConflict, err.Error(), nil)
	default:
		a.log.Warn("cluster write failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the cluster cannot accept writes right now: "+err.Error(), nil)
	}
}

// serveJoin admits a node holding a join token. Nothing is written before
// the token, the request and the key ceremony have all passed, so a
// refused join leaves no trace but a log line.
func (a *Appliance) serveJoin(w http.ResponseWriter, r *http.Request) {
	if a.clusterUnavailable(w) {
		return
	}
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "join request: "+err.Error(), nil)
		return
	}
	refuse := func(status int, code, msg string) {
		a.log.Warn("refused a node's join", "node", req.NodeID, "from", r.RemoteAddr, "reason", msg)
		api.WriteError(w, status, code, msg, nil)
	}
	tok, err := parseJoinToken(req.Token)
	if err != nil {
		refuse(http.StatusUnauthorized, api.CodeUnauthorized, "join token: "+err.Error())
		return
	}
	snap := a.store.Current()
	st := snap.JoinTokens[tok.id]
	// The same node asking again with its token (its answer was lost, or
	// the write that spent the token committed while the leader changed)
	// is answered again; anyone else is refused.
	member := snap.Members[req.NodeID]
	retry := st != nil && st.UsedBy == req.NodeID && (member == nil || bytes.Equal(member.CACert, []byte(req.CACert)))
	switch {
	case st == nil || subtle.ConstantTimeCompare(st.Hash, tokenHash(tok.secret)) != 1:
		refuse(http.StatusUnauthorized, api.CodeUnauthorized, "join token not valid for this cluster (is it from another cluster, or mistyped?)")
		return
	case st.UsedBy != "" && !retry:
		refuse(http.StatusUnauthorized, api.CodeUnauthorized, fmt.Sprintf("join token %s was already used (by node %s); create a new one", tok.id, st.UsedBy))
		return
	case !time.Now().Before(st.Expires):
		refuse(http.StatusUnauthorized, api.CodeUnauthorized, fmt.Sprintf("join token %s expired at %s; create a new one", tok.id, st.Expires.Format(time.RFC3339)))
		return
	case !state.ValidNodeID(req.NodeID):
		refuse(http.StatusUnprocessableEntity, api.CodeInvalid, fmt.Sprintf("node id %q: want letters, digits, '.', '_', '-' (at most 63)", req.NodeID))
		return
	case member != nil && !retry:
		refuse(http.StatusConflict, api.CodeConflict, fmt.Sprintf("node id %q is already a member of this cluster; remove it first (portcullis cluster remove %s) or start the new node with another --node-id", req.NodeID, req.NodeID))
		return
	case req.RaftAddr == "" || strings.HasSuffix(req.RaftAddr, ":0"):
		refuse(http.StatusUnprocessableEntity, api.CodeInvalid, fmt.Sprintf("raft address %q: a cluster member needs a fixed --raft-addr HOST:PORT", req.RaftAddr))
		return
	}
	certPEM, err := a.ident.sign([]byte(req.CSR), req.NodeID)
	if err != nil {
		refuse(http.StatusUnprocessableEntity, api.CodeInvalid, err.Error())
		return
	}
	if err := checkCAPEM([]byte(req.CACert)); err != nil {
		refuse(http.StatusUnprocessableEntity, api.CodeInvalid, "the joining node's CA certificate: "+err.Error())
		return
	}
	keys, err := a.wrapKeysFor(r.Context(), req.WrappingKey)
	if errors.Is(err, hsm.ErrUntrustedWrappingKey) {
		fp := hsm.WrappingKeyFingerprint(req.WrappingKey)
		msg := fmt.Sprintf("waiting for the Security Officer: on node %s run `portcullis secret trust-join-key --pub KEY --fingerprint %s` with the joining node's wrapping key (this node logs it as pub), then the join goes on by itself", a.nodeID, fp)
		a.log.Warn("a node waits for the Security Officer to trust its wrapping key", "node", req.NodeID, "fingerprint", fp,
			"pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: req.WrappingKey})))
		api.WriteError(w, http.StatusConflict, "pending_approval", msg, map[string]string{"fingerprint": fp})
		return
	}
	if err != nil {
		refuse(http.StatusUnprocessableEntity, api.CodeInvalid, "key ceremony: "+err.Error())
		return
	}
	// The token is spent through raft: of two concurrent joins with it,
	// exactly one gets here.
	if !retry {
		if _, err := a.propose(r.Context(), &state.Command{Op: state.OpTokenUse, Time: time.Now().UTC(), KeyID: tok.id, Name: req.NodeID}); err != nil {
			if errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrNotFound) {
				refuse(http.StatusUnauthorized, api.CodeUnauthorized, err.Error())
				return
			}
			a.writeProposeError(w, err)
			return
		}
	}
	if member == nil || member.RaftAddr != req.RaftAddr {
		if _, err := a.propose(r.Context(), &state.Command{Op: state.OpMemberPut, Time: time.Now().UTC(), Member: &state.ClusterMember{ID: req.NodeID, RaftAddr: req.RaftAddr, CACert: []byte(req.CACert)}}); err != nil {
			a.writeProposeError(w, err)
			return
		}
	}
	resp := joinResponse{NodeCert: string(certPEM), Keys: keys, Leader: a.node.Self().Leader}
	for _, b := range a.ident.trustBundle() {
		resp.Bundle = append(resp.Bundle, string(b))
	}
	resp.Bundle = append(resp.Bundle, req.CACert)
	a.log.Info("admitted a node to the cluster", "node", req.NodeID, "raft", req.RaftAddr, "token", tok.id)
	api.WriteJSON(w, http.StatusOK, resp)
}

func checkCAPEM(p []byte) error {
	c, err := parseCertPEM(p)
	if err != nil {
		return err
	}
	if !c.IsCA {
		return errors.New("not a CA certificate")
	}
	return nil
}

// wrapKeysFor wraps the cluster's secret keys to a joining node's HSM key.
// In dev mode this node's Security Officer role is automatic: the node's
// own binary, as a separate process (PKCS#11 allows one login type per
// process), trusts the key with the dev token's SO PIN.
func (a *Appliance) wrapKeysFor(ctx context.Context, pub []byte) ([]hsm.WrappedKey, error) {
	keys, err := a.keystore.WrapSecretKeys(ctx, pub)
	if !errors.Is(err, hsm.ErrUntrustedWrappingKey) || !a.cfg.Dev {
		return keys, err
	}
	if err := a.trustAsSO(ctx, pub); err != nil {
		return nil, fmt.Errorf("dev mode: trust the joining node's wrapping key: %w", err)
	}
	return a.keystore.WrapSecretKeys(ctx, pub)
}

func (a *Appliance) trustAsSO(ctx context.Context, pub []byte) error {
	if a.cfg.TrustJoinKey != nil {
		return a.cfg.TrustJoinKey(ctx, pub)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "secret", "trust-join-key", "--data-dir", a.cfg.DataDir, "--pub", "-", "--fingerprint", hsm.WrappingKeyFingerprint(pub))
	cmd.Stdin = bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func (a *Appliance) removeMember(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/cluster/members/")
	snap := a.store.Current()
	if snap.Members[id] == nil {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("node %q is not a member of this cluster", id), nil)
		return
	}
	if len(snap.Members) == 1 {
		api.WriteError(w, http.StatusConflict, api.CodeConflict, "the last member cannot be removed", nil)
		return
	}
	if _, err := a.propose(r.Context(), &state.Command{Op: state.OpMemberDelete, Time: time.Now().UTC(), Name: id}); err != nil {
		a.writeProposeError(w, err)
		return
	}
	a.log.Info("cluster member removed", "node", id)
	w.WriteHeader(http.StatusNoContent)
}

func (a *Appliance) transferLeader(w http.ResponseWriter, r *http.Request) {
	var req struct {
		To string `json:"to"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "body: "+err.Error(), nil)
		return
	}
	if err := a.node.TransferLeadership(r.Context(), req.To); err != nil {
		api.WriteError(w, http.StatusConflict, api.CodeConflict, err.Error(), nil)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"leader": a.node.Self().Leader})
}

// join runs on a new node's first start with --join: it asks a member to
// admit it, retrying until it is admitted, the token is refused, or ctx
// ends. It installs the certificate and unwraps the keys it gets.
func (a *Appliance) join(ctx context.Context) error {
	b, err := os.ReadFile(a.cfg.JoinTokenFile)
	if err != nil {
		return fmt.Errorf("join: read --join-token-file: %w", err)
	}
	tok, err := parseJoinToken(string(b))
	if err != nil {
		return fmt.Errorf("join: %s: %w", a.cfg.JoinTokenFile, err)
	}
	// A token that already holds sealing keys (a standalone start, another
	// cluster) would refuse the cluster's keys after this node was admitted:
	// refuse now, before anything is written anywhere.
	if vs, err := a.keystore.KeyVersions(ctx); err != nil {
		return fmt.Errorf("join: read this node's HSM: %w", err)
	} else if len(vs) > 0 {
		return fmt.Errorf("join: this node's HSM token already holds %d sealing key(s), from an earlier standalone start or another cluster; a joining node needs a token without them (dev mode: remove %s and start again)", len(vs), hsm.DevTokenPaths(a.cfg.DataDir).Dir)
	}
	csr, err := a.ident.csr()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	pub, err := a.keystore.NewWrappingKeyPair(ctx)
	if err != nil {
		return fmt.Errorf("join: HSM wrapping key: %w", err)
	}
	body, _ := json.Marshal(joinRequest{Token: tok.String(), NodeID: a.nodeID, RaftAddr: a.node.Addr(), CSR: string(csr), CACert: string(a.ident.caPEM), WrappingKey: pub})
	url := strings.TrimSuffix(a.cfg.Join, "/") + "/v1/cluster/join"
	client := &http.Client{Timeout: 30 * time.Second}
	if a.cfg.JoinCAFile != "" {
		pem, err := os.ReadFile(a.cfg.JoinCAFile)
		if err != nil {
			return fmt.Errorf("join: --join-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("join: --join-ca-file %s holds no PEM certificate", a.cfg.JoinCAFile)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	a.log.Info("joining a cluster", "via", a.cfg.Join, "node", a.nodeID, "wrapping_key", hsm.WrappingKeyFingerprint(pub))
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("join: %w", ctx.Err())
			case <-time.After(min(time.Duration(attempt)*time.Second, 5*time.Second)):
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			a.log.Warn("join: cluster not reachable yet; retrying", "via", a.cfg.Join, "err", err)
			continue
		}
		rb, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			var jr joinResponse
			if err := json.Unmarshal(rb, &jr); err != nil {
				return fmt.Errorf("join: answer of %s: %w", a.cfg.Join, err)
			}
			return a.installJoin(ctx, tok, jr)
		}
		var e struct {
			Error api.Error `json:"error"`
		}
		_ = json.Unmarshal(rb, &e)
		switch {
		case e.Error.Code == "pending_approval":
			a.log.Warn("join: " + e.Error.Message)
		case res.StatusCode >= 500:
			a.log.Warn("join: the cluster cannot admit nodes now; retrying", "status", res.Status, "msg", e.Error.Message)
		default:
			return fmt.Errorf("join refused by %s: %s (%s)", a.cfg.Join, e.Error.Message, res.Status)
		}
	}
}

func (a *Appliance) installJoin(ctx context.Context, tok joinToken, jr joinResponse) error {
	var bundle [][]byte
	pinned := false
	for _, p := range jr.Bundle {
		c, err := parseCertPEM([]byte(p))
		if err != nil || !c.IsCA {
			return fmt.Errorf("join: the trust bundle holds something that is not a CA certificate")
		}
		sum := sha256.Sum256(c.Raw)
		pinned = pinned || fmt.Sprintf("%x", sum[:])[:16] == tok.ca
		bundle = append(bundle, []byte(p))
	}
	if !pinned {
		return errors.New("join: the answering cluster does not hold the CA this join token names: the token belongs to another cluster")
	}
	// Keys first: the certificate marks the node as joined, and a joined
	// node without the cluster's keys would make keys of its own.
	if err := a.keystore.UnwrapSecretKeys(ctx, jr.Keys); err != nil {
		return fmt.Errorf("join: unwrap the cluster's keys into this HSM: %w", err)
	}
	if err := a.ident.install([]byte(jr.NodeCert), bundle); err != nil {
		return fmt.Errorf("join: install the node certificate: %w", err)
	}
	a.log.Info("admitted to the cluster; waiting for the leader to add this node", "leader", jr.Leader, "keys", len(jr.Keys))
	return nil
}

// leaderDuties runs on every node and acts while it leads: it records this
// node as a member (so its CA is in every node's trust bundle), makes its
// admin token valid cluster-wide on a cluster's first node, and keeps the
// raft configuration following the member list.
func (a *Appliance) leaderDuties(ctx context.Context) error {
	if a.ident == nil {
		return nil
	}
	changed, cancel := a.store.Subscribe()
	defer cancel()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if a.node.IsLeader() {
			a.lead(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

func (a *Appliance) lead(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	snap := a.store.Current()
	if m := snap.Members[a.nodeID]; m == nil || m.RaftAddr != a.node.Addr() || !bytes.Equal(m.CACert, a.ident.caPEM) {
		if _, err := a.propose(ctx, &state.Command{Op: state.OpMemberPut, Time: time.Now().UTC(), Member: &state.ClusterMember{ID: a.nodeID, RaftAddr: a.node.Addr(), CACert: a.ident.caPEM}}); err != nil {
			a.log.Warn("record this node as a cluster member", "err", err)
			return
		}
		snap = a.store.Current()
	}
	if len(snap.Admins) == 0 {
		h := sha256.Sum256([]byte(a.adminToken))
		if _, err := a.propose(ctx, &state.Command{Op: state.OpAdminPut, Time: time.Now().UTC(), Admin: &state.AdminCredential{ID: "admin@" + a.nodeID, Hash: h[:]}}); err != nil {
			a.log.Warn("replicate the admin credential", "err", err)
		}
	}
	want := map[string]string{}
	for id, m := range snap.Members {
		want[id] = m.RaftAddr
	}
	if err := a.node.Reconcile(ctx, want); err != nil && ctx.Err() == nil {
		a.log.Warn("follow the member list in raft", "err", err)
	}
}

func (a *Appliance) maxStale() time.Duration {
	if a.cfg.MaxStale > 0 {
		return a.cfg.MaxStale
	}
	return defaultMaxStale
}

// serving reports whether agents are served: the state is complete, and
// not older than --max-stale.
func (a *Appliance) serving() bool {
	return a.ready.Load() && a.node.Staleness() <= a.maxStale()
}

// staleGuard refuses agent calls while this node's state may be stale.
func (a *Appliance) staleGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.ready.Load() {
			if s := a.node.Staleness(); s > a.maxStale() {
				w.Header().Set("Retry-After", "5")
				api.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable,
					fmt.Sprintf("this node has not heard from the cluster's leader for %s (more than --max-stale %s): it refuses calls rather than serve state that may be out of date; use another node", s.Round(time.Second), a.maxStale()), nil)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// registerClusterMetrics exports the node's raft view.
func (a *Appliance) registerClusterMetrics() {
	gauge := func(name, help string, f func() float64) {
		a.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("portcullis_cluster_leader", "1 while this node is the raft leader", func() float64 {
		if a.node.IsLeader() {
			return 1
		}
		return 0
	})
	gauge("portcullis_cluster_staleness_seconds", "how old this node's replicated state may be (time since the leader was last heard; 0 on the leader)", func() float64 { return a.node.Staleness().Seconds() })
	gauge("portcullis_cluster_max_stale_seconds", "staleness beyond which this node refuses agent calls (--max-stale)", func() float64 { return a.maxStale().Seconds() })
	gauge("portcullis_cluster_members", "members in this node's raft configuration", func() float64 { return float64(len(a.node.Status().Members)) })
	gauge("portcullis_cluster_applied_index", "last raft index applied to this node's state", func() float64 { return float64(a.node.Self().AppliedIndex) })
	gauge("portcullis_cluster_term", "current raft term", func() float64 { return float64(a.node.Self().Term) })
	gauge("portcullis_session_taints", "DLP taint fingerprints replicated to every node (live sessions)", func() float64 { _, n, _ := a.store.SessionStats(); return float64(n) })
	gauge("portcullis_session_revocations", "ended sessions every node refuses (until they would have expired)", func() float64 { n, _, _ := a.store.SessionStats(); return float64(n) })
	a.share.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_session_events_dropped_total", Help: "session events (taint fingerprints) dropped because no leader could commit them for too long"})
	a.metrics.MustRegister(a.share.dropped)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
