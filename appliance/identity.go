package appliance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/hsm"
	"github.com/portcullis-gw/portcullis/internal/cluster"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// A node's cluster identity.
//
// Every node's HSM holds a CA key (hsm.SignerClusterCA, generated in the
// token, never exported); its self-signed certificate is public and is
// replicated as part of the node's ClusterMember. The cluster's trust
// bundle is the set of its members' CA certificates, so any member can
// admit a new node, and removing a member removes its CA from every node's
// trust. A node's own TLS certificate is issued by the CA of the node that
// admitted it (the first node issues its own), and names the node id as
// its common name; a peer is trusted only if its certificate chains to the
// bundle and names a current member (before a node has any state, the
// bundle it was given when it joined, and any name).
//
// Files under DATA/cluster: node.key (the node certificate's private key,
// 0600; it only authenticates this node on the node port), node.crt,
// ca.crt (this node's CA certificate) and bundle.pem (the CA certificates
// known when the node joined).
type identity struct {
	dir    string
	nodeID string
	store  *state.Store

	mu     sync.RWMutex
	cert   tls.Certificate
	caPEM  []byte   // this node's CA certificate
	bundle [][]byte // CA certificates learnt at join (PEM)
	signer crypto.Signer
}

const (
	caValidity   = 20 * 365 * 24 * time.Hour
	nodeValidity = 2 * 365 * 24 * time.Hour
)

func (id *identity) path(name string) string { return filepath.Join(id.dir, name) }

// openIdentity loads or creates the node's CA certificate (the key is in
// the HSM) and node key. The node certificate is loaded if present;
// issueOwn makes one from this node's own CA (the first node of a cluster).
func openIdentity(ctx context.Context, dir, nodeID string, ks *hsm.Keystore, st *state.Store) (*identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster identity: %w", err)
	}
	id := &identity{dir: dir, nodeID: nodeID, store: st}
	signer, err := ks.Signer(ctx, hsm.SignerClusterCA)
	if err != nil {
		return nil, fmt.Errorf("cluster identity: the HSM's cluster CA key: %w", err)
	}
	id.signer = signer
	if id.caPEM, err = os.ReadFile(id.path("ca.crt")); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("cluster identity: %w", err)
		}
		if id.caPEM, err = selfSignCA(signer, nodeID); err != nil {
			return nil, fmt.Errorf("cluster identity: make the CA certificate: %w", err)
		}
		if err := writeFileAtomic(id.path("ca.crt"), id.caPEM, 0o644); err != nil {
			return nil, fmt.Errorf("cluster identity: %w", err)
		}
	}
	if ca, err := parseCertPEM(id.caPEM); err != nil || !publicKeysEqual(ca.PublicKey, signer.Public()) {
		return nil, fmt.Errorf("cluster identity: %s does not belong to this HSM's cluster CA key (was the data dir copied from another node?)", id.path("ca.crt"))
	}
	if b, err := os.ReadFile(id.path("bundle.pem")); err == nil {
		for rest := b; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			id.bundle = append(id.bundle, pem.EncodeToMemory(blk))
		}
	}
	if _, err := os.Stat(id.path("node.crt")); err == nil {
		cert, err := tls.LoadX509KeyPair(id.path("node.crt"), id.path("node.key"))
		if err != nil {
			return nil, fmt.Errorf("cluster identity: %w", err)
		}
		id.cert = cert
	}
	return id, nil
}

// nodeKey loads or creates the node certificate's private key.
func (id *identity) nodeKey() (*ecdsa.PrivateKey, error) {
	if b, err := os.ReadFile(id.path("node.key")); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: not PEM", id.path("node.key"))
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id.path("node.key"), err)
		}
		return k, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(id.path("node.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// csr is this node's certificate request (common name: the node id).
func (id *identity) csr() ([]byte, error) {
	k, err := id.nodeKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id.nodeID}}, k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// issueOwn gives the node a certificate from its own CA unless it has a
// valid one (the first node of a cluster; also a renewal near expiry).
func (id *identity) issueOwn() error {
	if len(id.cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(id.cert.Certificate[0]); err == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour {
			return nil
		}
	}
	req, err := id.csr()
	if err != nil {
		return fmt.Errorf("cluster identity: %w", err)
	}
	crt, err := id.sign(req, id.nodeID)
	if err != nil {
		return fmt.Errorf("cluster identity: %w", err)
	}
	return id.install(crt, nil)
}

// install stores the node certificate (and the bundle given at join).
func (id *identity) install(certPEM []byte, bundle [][]byte) error {
	k, err := id.nodeKey()
	if err != nil {
		return err
	}
	if bundle != nil {
		var all []byte
		for _, b := range bundle {
			all = append(all, b...)
		}
		if err := writeFileAtomic(id.path("bundle.pem"), all, 0o644); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(id.path("node.crt"), certPEM, 0o644); err != nil {
		return err
	}
	leaf, err := parseCertPEM(certPEM)
	if err != nil {
		return err
	}
	if !publicKeysEqual(leaf.PublicKey, k.Public()) {
		return errors.New("the issued certificate is not for this node's key")
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	id.cert = tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: k, Leaf: leaf}
	if bundle != nil {
		id.bundle = bundle
	}
	return nil
}

// sign issues a node certificate for csrPEM with this node's CA, after
// checking the request's signature and that it names node.
func (id *identity) sign(csrPEM []byte, node string) ([]byte, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("the certificate request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if req.Subject.CommonName != node {
		return nil, fmt.Errorf("certificate request names %q, not the joining node %q", req.Subject.CommonName, node)
	}
	ca, err := parseCertPEM(id.caPEM)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: node, Organization: []string{"Portcullis cluster node"}},
		NotBefore: time.Now().Add(-5 * time.Minute), NotAfter: time.Now().Add(nodeValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{node},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, req.PublicKey, id.signer)
	if err != nil {
		return nil, fmt.Errorf("sign with the cluster CA: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// trustBundle is every CA certificate this node trusts now: its members'
// (replicated), its own, and those it was given when it joined.
func (id *identity) trustBundle() [][]byte {
	id.mu.RLock()
	out := append([][]byte{id.caPEM}, id.bundle...)
	id.mu.RUnlock()
	for _, m := range id.store.Current().Members {
		out = append(out, m.CACert)
	}
	return out
}

// verifyPeer is the node port's check of a peer's certificate: it must
// chain to the trust bundle, for client and server use, and name a member
// of the cluster (any name while this node has no members yet: it is
// joining and knows only the bundle it was given).
func (id *identity) verifyPeer(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("cluster: the peer sent no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("cluster: peer certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for _, p := range id.trustBundle() {
		pool.AppendCertsFromPEM(p)
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if c, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("cluster: peer %q is not certified by this cluster: %w", leaf.Subject.CommonName, err)
	}
	members := id.store.Current().Members
	if len(members) > 0 && members[leaf.Subject.CommonName] == nil {
		return fmt.Errorf("cluster: peer %q is not a member of this cluster", leaf.Subject.CommonName)
	}
	return nil
}

// tlsConfig is the node port's configuration (accepting and dialling).
func (id *identity) tlsConfig() *tls.Config {
	get := func() (*tls.Certificate, error) {
		id.mu.RLock()
		defer id.mu.RUnlock()
		if len(id.cert.Certificate) == 0 {
			return nil, cluster.ErrNoCertificate
		}
		c := id.cert
		return &c, nil
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		GetCertificate:        func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return get() },
		GetClientCertificate:  func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get() },
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // verifyPeer checks the chain and the name; peers are dialled by address
		VerifyPeerCertificate: id.verifyPeer,
	}
}

// caFingerprint is the hex SHA-256 of this node's CA certificate (DER).
func (id *identity) caFingerprint() string {
	c, err := parseCertPEM(id.caPEM)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func selfSignCA(signer crypto.Signer, nodeID string) ([]byte, error) {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "Portcullis cluster CA of " + nodeID, Organization: []string{"Portcullis"}},
		NotBefore: time.Now().Add(-5 * time.Minute), NotAfter: time.Now().Add(caValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func parseCertPEM(p []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(p)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
