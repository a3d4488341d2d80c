package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ALPN protocols on the node-to-node port: raft's own RPCs, and the
// cluster's (forwarded writes, status, leadership transfer) over HTTP.
const (
	alpnRaft = "portcullis-raft/1"
	alpnRPC  = "portcullis-rpc/1"
)

// ErrNoCertificate is what a node's TLS configuration returns while the
// node has no certificate yet (it is joining); such refusals are expected.
var ErrNoCertificate = errors.New("cluster: this node has no certificate yet")

// handshakeTimeout bounds a peer's TLS handshake on the node port.
const handshakeTimeout = 10 * time.Second

// peerLayer serves raft and the cluster RPCs on one TCP port, mutual TLS
// 1.3 only: each accepted connection is handshaken, then handed to raft or
// to the RPC server by its ALPN protocol. A connection that fails the
// handshake (no certificate, one the cluster does not trust, an older TLS)
// is logged and closed; nothing of it reaches raft.
type peerLayer struct {
	tcp       net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	log       *slog.Logger

	raft *connQueue
	rpc  *connQueue

	once sync.Once
	done chan struct{}
}

var _ raft.StreamLayer = (*peerLayer)(nil)

// newPeerLayer listens on bind. cfg must carry this node's certificate and
// the verification of peers (VerifyPeerCertificate or ClientCAs/RootCAs);
// it is used both to accept (peers must present a certificate) and to dial.
func newPeerLayer(bind, advertise string, cfg *tls.Config, log *slog.Logger) (*peerLayer, error) {
	if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, errors.New("cluster tls: a node certificate is required")
	}
	plain, err := newTCPStreamLayer(bind, advertise)
	if err != nil {
		return nil, err
	}
	server := cfg.Clone()
	server.MinVersion = tls.VersionTLS13
	server.NextProtos = []string{alpnRaft, alpnRPC}
	if server.ClientAuth < tls.RequireAnyClientCert {
		server.ClientAuth = tls.RequireAndVerifyClientCert
		if server.ClientCAs == nil {
			server.ClientAuth = tls.RequireAnyClientCert // VerifyPeerCertificate decides
		}
	}
	client := cfg.Clone()
	client.MinVersion = tls.VersionTLS13
	client.ClientAuth = tls.NoClientCert
	p := &peerLayer{
		tcp: plain.Listener, advertise: plain.advertise, server: server, client: client, log: log,
		raft: newConnQueue(plain.Listener.Addr()), rpc: newConnQueue(plain.Listener.Addr()),
		done: make(chan struct{}),
	}
	go p.acceptLoop()
	return p, nil
}

func (p *peerLayer) acceptLoop() {
	for {
		c, err := p.tcp.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.Close()
			return
		}
		go p.route(c)
	}
}

func (p *peerLayer) route(c net.Conn) {
	tc := tls.Server(c, p.server)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrNoCertificate) {
			level = slog.LevelDebug // a joining node, until it is admitted
		}
		p.log.Log(ctx, level, "refused a node-port connection: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	q, conn := p.raft, net.Conn(tc)
	if tc.ConnectionState().NegotiatedProtocol == alpnRPC {
		// net/http hands a *tls.Conn with an ALPN protocol it does not
		// know to TLSNextProto (or drops it): hide the TLS layer, which
		// is done with, so it serves HTTP/1.1 on it.
		q, conn = p.rpc, struct{ net.Conn }{tc}
	}
	if !q.put(conn) {
		tc.Close()
	}
}

// Accept returns the next raft connection.
func (p *peerLayer) Accept() (net.Conn, error) { return p.raft.Accept() }

// Dial opens a raft connection to a peer (the handshake completes first).
func (p *peerLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return p.dial(context.Background(), string(addr), alpnRaft, timeout)
}

func (p *peerLayer) dial(ctx context.Context, addr, proto string, timeout time.Duration) (net.Conn, error) {
	cfg := p.client.Clone()
	cfg.NextProtos = []string{proto}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: dial %s: %w", addr, err)
	}
	if got := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != proto {
		c.Close()
		return nil, fmt.Errorf("cluster tls: %s does not speak %s", addr, proto)
	}
	return c, nil
}

// Addr is the advertised address.
func (p *peerLayer) Addr() net.Addr { return p.advertise }

// Close stops accepting; raft's and the RPC server's Accept then fail.
func (p *peerLayer) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.tcp.Close()
		p.raft.Close()
		p.rpc.Close()
	})
	return err
}

// connQueue is a net.Listener fed with connections accepted elsewhere.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.closed:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
