package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// TLSStreamLayer is a raft stream layer that speaks mutual TLS: a node
// accepts a raft connection only from a peer whose certificate chains to
// the cluster CA, and dials peers verifying theirs the same way. Pass it as
// Config.StreamLayer.
type TLSStreamLayer struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

var _ raft.StreamLayer = (*TLSStreamLayer)(nil)

// NewTLSStreamLayer listens on bind. cfg must hold this node's certificate
// (Certificates), the cluster CA for verifying peers that connect
// (ClientCAs) and for verifying peers this node dials (RootCAs). Node
// certificates need the node's advertised IP or name as a SAN, since peers
// are dialled by address. advertise defaults to the listener's address.
func NewTLSStreamLayer(bind, advertise string, cfg *tls.Config) (*TLSStreamLayer, error) {
	switch {
	case cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil:
		return nil, errors.New("cluster tls: a node certificate is required")
	case cfg.ClientCAs == nil:
		return nil, errors.New("cluster tls: ClientCAs (the cluster CA) is required to verify peers")
	case cfg.RootCAs == nil:
		return nil, errors.New("cluster tls: RootCAs (the cluster CA) is required to verify the peers this node dials")
	}
	server := cfg.Clone()
	server.ClientAuth = tls.RequireAndVerifyClientCert
	if server.MinVersion < tls.VersionTLS13 {
		server.MinVersion = tls.VersionTLS13
	}
	client := cfg.Clone()
	client.ClientAuth = tls.NoClientCert
	if client.MinVersion < tls.VersionTLS13 {
		client.MinVersion = tls.VersionTLS13
	}
	if client.GetClientCertificate == nil && len(client.Certificates) == 0 {
		return nil, errors.New("cluster tls: a client certificate is required to dial peers")
	}

	plain, err := newTCPStreamLayer(bind, advertise)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: %w", err)
	}
	return &TLSStreamLayer{
		Listener:  tls.NewListener(plain.Listener, server),
		advertise: plain.advertise,
		client:    client,
	}, nil
}

// Dial opens a mutual-TLS connection to a peer. The handshake completes
// before Dial returns, so a peer outside the cluster fails here.
func (s *TLSStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", string(addr), s.client)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: dial %s: %w", addr, err)
	}
	return conn, nil
}

// Addr is the advertised address.
func (s *TLSStreamLayer) Addr() net.Addr { return s.advertise }
