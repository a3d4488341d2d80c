package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCA issues node certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// nodeTLS returns a node's TLS config: a certificate for 127.0.0.1 usable
// as server and client, and the CA for both directions.
func (ca *testCA) nodeTLS(t testing.TB, node string) *tls.Config {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: node},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		ClientCAs:    ca.pool,
		RootCAs:      ca.pool,
	}
}

func tlsNode(t *testing.T, name string, cfg *tls.Config, fsm *kvFSM, bootstrap bool) *Node {
	t.Helper()
	sl, err := NewTLSStreamLayer("127.0.0.1:0", "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, filepath.Join(t.TempDir(), name), fsm, bootstrap, func(c *Config) {
		c.StreamLayer, c.BindAddr = sl, ""
	})
}

// TestMutualTLSCluster: two nodes with certificates from the cluster CA
// replicate over mutual TLS; a peer with a foreign certificate, or none,
// cannot talk raft to them.
func TestMutualTLSCluster(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	fsm1, fsm2 := newKV(), newKV()
	n1 := tlsNode(t, "1", ca.nodeTLS(t, "n1"), fsm1, true)
	ready(t, n1)
	n2 := tlsNode(t, "2", ca.nodeTLS(t, "n2"), fsm2, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.AddVoter(ctx, n2.cfg.NodeID, n2.Addr()); err != nil {
		t.Fatalf("AddVoter over mutual TLS: %v", err)
	}
	apply(t, n1, "over", "tls")
	for fsm2.get("over") != "tls" {
		if ctx.Err() != nil {
			t.Fatal("no replication over mutual TLS")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A member's certificate is accepted (the control for the checks below).
	if err := handshake(n1.Addr(), ca.nodeTLS(t, "n4")); err != nil {
		t.Fatalf("a cluster certificate was refused: %v", err)
	}
	// A client certificate from another CA is refused by the node.
	rogue := newTestCA(t, "rogue CA").nodeTLS(t, "rogue")
	rogue.RootCAs = ca.pool // it even trusts the cluster's server cert
	if err := handshake(n1.Addr(), rogue); err == nil {
		t.Fatal("a node accepted a peer certificate from a foreign CA")
	}
	// No client certificate at all is refused.
	if err := handshake(n1.Addr(), &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}); err == nil {
		t.Fatal("a node accepted a peer without a client certificate")
	}
	// A node does not dial a peer whose certificate is foreign.
	sl, err := NewTLSStreamLayer("127.0.0.1:0", "", ca.nodeTLS(t, "n3"))
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	foreign := newTestCA(t, "other cluster").nodeTLS(t, "x")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", foreign)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if c, err := sl.Dial(raft.ServerAddress(ln.Addr().String()), time.Second); err == nil {
		c.Close()
		t.Fatal("dialled a peer with a foreign certificate")
	}
}

// handshake connects as a raft peer would and reports whether the node
// refused the client certificate. In TLS 1.3 the refusal arrives as an
// alert on the client's first read; an accepted peer instead sees raft
// close the connection after the invalid RPC byte sent here (EOF).
func handshake(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte{0xff}); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

func TestTLSStreamLayerConfig(t *testing.T) {
	ca := newTestCA(t, "ca")
	full := ca.nodeTLS(t, "n")
	for name, cfg := range map[string]*tls.Config{
		"nil":          nil,
		"no cert":      {ClientCAs: ca.pool, RootCAs: ca.pool},
		"no clientCAs": {Certificates: full.Certificates, RootCAs: ca.pool},
		"no rootCAs":   {Certificates: full.Certificates, ClientCAs: ca.pool},
	} {
		if sl, err := NewTLSStreamLayer("127.0.0.1:0", "", cfg); err == nil {
			sl.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
