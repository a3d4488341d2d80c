package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ListenersConfig configures the personas' dedicated listeners.
type ListenersConfig struct {
	// Gateway serves the endpoints (PersonaHandler). Required.
	Gateway *Gateway
	// State is the replicated state; a persona's spec.endpoint.listen says
	// where its listener goes. Required.
	State StateReader
	// TLS, when set, serves every listener over TLS (the node's certificate);
	// nil serves plain HTTP.
	TLS *tls.Config
	// LoopbackOnly refuses addresses that are not loopback (a dev node
	// serves plain HTTP, so only on loopback).
	LoopbackOnly bool
	// Guard, when set, wraps each persona's handler: the node's userspace
	// network check (netpolicy.Guard with netpolicy.Persona). It is called
	// once per listener opened, on the Run goroutine.
	Guard func(persona string, h http.Handler) http.Handler
	// Retry is how often an address that could not be opened is tried again
	// (it may appear later); default 3s.
	Retry time.Duration
	// ShutdownTimeout bounds the graceful close of the listeners when Run
	// ends (default 10s); a moved or removed listener gets 5s.
	ShutdownTimeout time.Duration
	// Logger receives open, close and failure events. Nil discards them.
	Logger *slog.Logger
}

// Listeners opens, moves and closes the personas' dedicated listeners
// (spec.endpoint.listen) as the state changes. Each serves its persona's
// MCP endpoint at /mcp: the same endpoint as /p/<persona>/mcp on the shared
// listener.
type Listeners struct {
	cfg     ListenersConfig
	log     *slog.Logger
	mu      sync.Mutex
	running map[string]*personaServer // by persona
	failed  map[string]string         // persona → last error logged
}

type personaServer struct {
	listen string
	srv    *http.Server
	ln     net.Listener
}

// NewListeners checks cfg. It opens nothing: Run does, from the state.
func NewListeners(cfg ListenersConfig) (*Listeners, error) {
	switch {
	case cfg.Gateway == nil:
		return nil, errors.New("gateway listeners: Gateway is required")
	case cfg.State == nil:
		return nil, errors.New("gateway listeners: State is required")
	case cfg.Retry < 0 || cfg.ShutdownTimeout < 0:
		return nil, errors.New("gateway listeners: negative duration")
	}
	if cfg.Retry == 0 {
		cfg.Retry = 3 * time.Second
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listeners{cfg: cfg, log: cfg.Logger, running: map[string]*personaServer{}, failed: map[string]string{}}, nil
}

// Run reconciles after every state change, and retries listeners that
// could not be opened every Retry, until ctx ends; then it closes every
// listener gracefully. Cancellation is not an error.
func (l *Listeners) Run(ctx context.Context) error {
	ch, cancel := l.cfg.State.Subscribe()
	defer cancel()
	retry := time.NewTicker(l.cfg.Retry)
	defer retry.Stop()
	for {
		l.reconcile()
		select {
		case <-ctx.Done():
			l.closeAll(l.cfg.ShutdownTimeout)
			return nil
		case <-ch:
		case <-retry.C:
		}
	}
}

// Close closes every listener at once. Safe more than once and without Run.
func (l *Listeners) Close() error {
	l.closeAll(0)
	return nil
}

// Addrs returns the open listeners' addresses, by persona.
func (l *Listeners) Addrs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.running))
	for name, s := range l.running {
		out[name] = s.ln.Addr().String()
	}
	return out
}

func (l *Listeners) reconcile() {
	want := map[string]string{}
	if snap := l.cfg.State.Current(); snap != nil {
		for name, per := range snap.Personas {
			if per.Endpoint != nil && per.Endpoint.Listen != "" {
				want[name] = per.Endpoint.Listen
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, s := range l.running {
		if want[name] != s.listen {
			delete(l.running, name)
			l.log.Info("closing persona listener", "persona", name, "listen", s.listen)
			go stopServer(s.srv, 5*time.Second)
		}
	}
	for name, addr := range want {
		if l.running[name] != nil {
			continue
		}
		ln, err := l.listen(addr)
		if err != nil {
			if msg := addr + ": " + err.Error(); l.failed[name] != msg {
				l.failed[name] = msg
				l.log.Error("cannot open persona listener; retrying", "persona", name, "listen", addr, "err", err)
			}
			continue
		}
		delete(l.failed, name)
		var h http.Handler = l.cfg.Gateway.PersonaHandler(name)
		if l.cfg.Guard != nil {
			h = l.cfg.Guard(name, h)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelWarn)}
		l.running[name] = &personaServer{listen: addr, srv: srv, ln: ln}
		l.log.Info("persona listener open", "persona", name, "listen", ln.Addr().String(), "path", "/mcp")
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.log.Error("persona listener failed", "persona", name, "err", err)
			}
		}()
	}
	for name := range l.failed {
		if _, ok := want[name]; !ok {
			delete(l.failed, name)
		}
	}
}

func (l *Listeners) listen(addr string) (net.Listener, error) {
	if l.cfg.LoopbackOnly && !isLoopbackAddr(addr) {
		return nil, errors.New("dev mode serves plain HTTP on loopback only (use 127.0.0.1:PORT)")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if l.cfg.TLS != nil {
		ln = tls.NewListener(ln, l.cfg.TLS.Clone())
	}
	return ln, nil
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (l *Listeners) closeAll(timeout time.Duration) {
	l.mu.Lock()
	servers := l.running
	l.running = map[string]*personaServer{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopServer(s.srv, timeout)
		}()
	}
	wg.Wait()
}

func stopServer(s *http.Server, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.Close()
	}
}
