package appliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// softIdentity is an identity whose CA key is in memory (the HSM's part is
// tested in hsm; this tests the trust rules).
func softIdentity(t *testing.T, node string, st *state.Store) *identity {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca, err := selfSignCA(k, node)
	if err != nil {
		t.Fatal(err)
	}
	return &identity{dir: t.TempDir(), nodeID: node, store: st, caPEM: ca, signer: k}
}

func leafFor(t *testing.T, id *identity, node string) [][]byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: node}}, k)
	crt, err := id.sign(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), node)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(crt)
	return [][]byte{blk.Bytes}
}

func applyTo(t *testing.T, s *state.Store, idx uint64, cmd *state.Command) {
	t.Helper()
	cmd.Time = time.Now()
	p, _, err := s.Prepare(cmd, state.Node{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Encode()
	if err, ok := s.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(error); ok {
		t.Fatal(err)
	}
}

// The node port trusts a peer only with a certificate from a member's CA
// that names a member; removing the member ends the trust.
func TestNodePortTrust(t *testing.T) {
	st := state.NewStore(nil)
	n1 := softIdentity(t, "n1", st)
	other := softIdentity(t, "x1", state.NewStore(nil))

	// Before any member is recorded (a joining node), the bundle decides.
	if err := n1.verifyPeer(leafFor(t, n1, "n2"), nil); err != nil {
		t.Fatalf("fresh node refused a peer certified by its bundle: %v", err)
	}
	applyTo(t, st, 1, &state.Command{Op: state.OpMemberPut, Member: &state.ClusterMember{ID: "n1", RaftAddr: "127.0.0.1:1", CACert: n1.caPEM}})
	if err := n1.verifyPeer(leafFor(t, n1, "n2"), nil); err == nil || !strings.Contains(err.Error(), `"n2" is not a member`) {
		t.Fatalf("non-member certificate: %v", err)
	}
	if err := n1.verifyPeer(leafFor(t, other, "n1"), nil); err == nil || !strings.Contains(err.Error(), "not certified by this cluster") {
		t.Fatalf("another cluster's certificate: %v", err)
	}
	// n2 joins: its own CA enters the bundle; a node n2's CA certifies is trusted.
	n2 := softIdentity(t, "n2", st)
	applyTo(t, st, 2, &state.Command{Op: state.OpMemberPut, Member: &state.ClusterMember{ID: "n2", RaftAddr: "127.0.0.1:2", CACert: n2.caPEM}})
	applyTo(t, st, 3, &state.Command{Op: state.OpMemberPut, Member: &state.ClusterMember{ID: "n3", RaftAddr: "127.0.0.1:3", CACert: n2.caPEM}})
	if err := n1.verifyPeer(leafFor(t, n2, "n3"), nil); err != nil {
		t.Fatalf("a member certified by another member's CA: %v", err)
	}
	applyTo(t, st, 4, &state.Command{Op: state.OpMemberDelete, Name: "n3"})
	if err := n1.verifyPeer(leafFor(t, n2, "n3"), nil); err == nil {
		t.Fatal("a removed member is still trusted")
	}
	if _, err := n1.sign([]byte("garbage"), "n4"); err == nil {
		t.Fatal("signed a malformed request")
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n1"}}, k)
	if _, err := n1.sign(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), "n4"); err == nil || !strings.Contains(err.Error(), "names \"n1\"") {
		t.Fatalf("a request naming another node: %v", err)
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add("pcj1.abcdef.0123456789abcdef0123456789abcdef0123.0123456789abcdef")
	f.Add("pcj1...")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseJoinToken(s)
		if err != nil {
			return
		}
		back, err := parseJoinToken(tok.String())
		if err != nil || back != tok {
			t.Fatalf("%q: round trip %q: %v", s, tok.String(), err)
		}
	})
}
