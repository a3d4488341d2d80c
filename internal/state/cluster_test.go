package state

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testCACert(t *testing.T, isCA bool) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// A join token admits exactly one node before it expires; members and
// admin credentials survive a snapshot, which then has format 2.
func TestClusterObjects(t *testing.T) {
	s := NewStore(nil)
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration, c *Command) *Command { c.Time = t0.Add(d); return c }
	tok := &JoinToken{ID: "t1", Hash: bytes.Repeat([]byte{1}, 32), Expires: t0.Add(time.Hour)}
	if _, err := applyCmd(t, s, 1, at(0, &Command{Op: OpTokenCreate, JoinToken: tok})); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 2, at(time.Minute, &Command{Op: OpTokenUse, KeyID: "t1", Name: "n2"})); err != nil {
		t.Fatal(err)
	}
	_, err := applyCmd(t, s, 3, at(2*time.Minute, &Command{Op: OpTokenUse, KeyID: "t1", Name: "n3"}))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already used (by node n2)") {
		t.Fatalf("second use: %v", err)
	}
	tok2 := &JoinToken{ID: "t2", Hash: bytes.Repeat([]byte{2}, 32), Expires: t0.Add(time.Hour)}
	if _, err := applyCmd(t, s, 3, at(0, &Command{Op: OpTokenCreate, JoinToken: tok2})); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 4, at(time.Hour, &Command{Op: OpTokenUse, KeyID: "t2", Name: "n3"})); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("use at expiry: %v", err)
	}
	if _, err := applyCmd(t, s, 4, at(0, &Command{Op: OpTokenUse, KeyID: "nope", Name: "n3"})); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, _, err := s.Prepare(&Command{Op: OpMemberPut, Member: &ClusterMember{ID: "n2", RaftAddr: "127.0.0.1:1", CACert: testCACert(t, false)}}, Node{}); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("member with a leaf certificate: %v", err)
	}
	if _, _, err := s.Prepare(&Command{Op: OpMemberPut, Member: &ClusterMember{ID: "bad id", RaftAddr: "x"}}, Node{}); err == nil {
		t.Fatal("member with a malformed id accepted")
	}
	if _, err := applyCmd(t, s, 4, at(0, &Command{Op: OpMemberPut, Member: &ClusterMember{ID: "n2", RaftAddr: "127.0.0.1:1", CACert: testCACert(t, true)}})); err != nil {
		t.Fatal(err)
	}
	if _, err := applyCmd(t, s, 5, at(0, &Command{Op: OpAdminPut, Admin: &AdminCredential{ID: "a1", Hash: bytes.Repeat([]byte{3}, 32)}})); err != nil {
		t.Fatal(err)
	}
	// Tokens long past expiry are dropped by the next token write.
	tok3 := &JoinToken{ID: "t3", Hash: bytes.Repeat([]byte{4}, 32), Expires: t0.Add(5 * time.Hour)}
	if _, err := applyCmd(t, s, 6, at(3*time.Hour, &Command{Op: OpTokenCreate, JoinToken: tok3})); err != nil {
		t.Fatal(err)
	}
	if cur := s.Current(); len(cur.JoinTokens) != 1 || cur.JoinTokens["t3"] == nil {
		t.Fatalf("join tokens after pruning: %v", cur.JoinTokens)
	}

	snap, _ := s.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sink.Bytes(), []byte(`"format":2`)) {
		t.Fatal("a snapshot with cluster objects is not format 2")
	}
	r := NewStore(nil)
	if err := r.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	got := r.Current()
	if got.Members["n2"] == nil || got.Members["n2"].Joined.IsZero() || got.Admins["a1"] == nil || got.JoinTokens["t3"] == nil {
		t.Fatalf("restored cluster objects: %+v %+v %+v", got.Members, got.Admins, got.JoinTokens)
	}
}

// Session events replicate revocations and taint fingerprints beside the
// snapshot: listeners get each batch, expired entries are pruned, and a
// snapshot carries the live ones to a restored node.
func TestSessionEvents(t *testing.T) {
	s := NewStore(nil)
	var got []*SessionEvents
	s.OnSessionEvents(func(ev *SessionEvents) { got = append(got, ev) })
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	fp := bytes.Repeat([]byte{7}, 16)
	ev := &SessionEvents{
		Revoked: []RevokedSession{{Nonce: "n1", Until: t0.Add(time.Hour)}},
		Taints:  []TaintRecord{{Session: "s1", Fingerprint: fp, Upstream: "crm", Environment: "prod", Detector: "card", Until: t0.Add(time.Hour)}},
	}
	before := s.Current()
	if _, err := applyCmd(t, s, 1, &Command{Op: OpSessionEvents, Time: t0, Sessions: ev}); err != nil {
		t.Fatal(err)
	}
	if s.Current() != before {
		t.Fatal("a session batch replaced the control-state snapshot")
	}
	if len(got) != 1 || got[0].Taints[0].Upstream != "crm" {
		t.Fatalf("listener got %+v", got)
	}
	if _, _, err := s.Prepare(&Command{Op: OpSessionEvents, Sessions: &SessionEvents{Taints: []TaintRecord{{Session: "s", Fingerprint: []byte{1}, Until: t0}}}}, Node{}); err == nil {
		t.Fatal("a malformed fingerprint was accepted")
	}
	snap, _ := s.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	r := NewStore(nil)
	if err := r.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	var replayed []*SessionEvents
	r.OnSessionEvents(func(ev *SessionEvents) { replayed = append(replayed, ev) })
	if len(replayed) != 1 || len(replayed[0].Revoked) != 1 || len(replayed[0].Taints) != 1 {
		t.Fatalf("restored node replays %+v", replayed)
	}
	// An hour later both have expired and are pruned by the next batch.
	later := &SessionEvents{Revoked: []RevokedSession{{Nonce: "n2", Until: t0.Add(3 * time.Hour)}}}
	if _, err := applyCmd(t, r, 2, &Command{Op: OpSessionEvents, Time: t0.Add(2 * time.Hour), Sessions: later}); err != nil {
		t.Fatal(err)
	}
	if rev, taints, _ := r.SessionStats(); rev != 1 || taints != 0 {
		t.Fatalf("after expiry: %d revoked, %d taints", rev, taints)
	}
}
