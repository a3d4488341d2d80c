package hsm

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Keystore is an open, logged-in token. All methods are safe for concurrent
// use. When the token stops answering, calls fail with ErrUnavailable and the
// keystore reconnects by itself in the background.
type Keystore struct {
	cfg Config
	log *slog.Logger
	pin []byte // kept to log in again after the token comes back; zeroed by Close

	mu        sync.Mutex
	cur       *conn // nil while unavailable
	broken    *conn // the last conn dropped; retry waits until it is closed
	closed    bool
	retrying  bool
	stop      chan struct{}
	retryDone sync.WaitGroup
}

// conn is one connection to the token: a crypto11 context holding the login,
// whose session pool serves seal, unseal and sign, and a bounded pool of raw
// sessions for what crypto11 has no call for or does not do safely (key
// generation with this package's attributes, wrap and unwrap, key check
// values, random, MAC: see Keystore.MAC) and for telling a refused request
// from a token gone. Each pool holds up to MaxSessions sessions.
type conn struct {
	c11  *crypto11.Context
	mod  *module
	slot uint
	keep pkcs11.SessionHandle // holds the login of mod

	sem  chan struct{}             // one token per session that may exist
	idle chan pkcs11.SessionHandle // sessions ready for use

	inflight sync.WaitGroup

	closed chan struct{} // closed when close has finished

	mu      sync.Mutex
	seal    map[uint32]pkcs11.ObjectHandle
	mac     pkcs11.ObjectHandle
	aeads   map[uint32]cipher.AEAD // crypto11 AES-GCM, by sealing key version
	signers map[string]crypto11.Signer
	broken  bool
}

// Open opens and logs in to the token cfg names. Errors wrap
// ErrModuleNotFound, ErrTokenNotFound, ErrNoPIN, ErrWrongPIN or ErrPINLocked.
// The module reads its own configuration (SoftHSM2: $SOFTHSM2_CONF) from the
// process environment when it is first initialized; this package never
// changes the environment, the program sets it once, before (see
// InitDevToken).
func Open(cfg Config) (*Keystore, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pin, err := c.readPIN()
	if err != nil {
		return nil, err
	}
	k := &Keystore{cfg: c, log: c.Logger, pin: pin, stop: make(chan struct{})}
	cn, err := k.connect()
	if err != nil {
		clear(k.pin)
		return nil, err
	}
	k.cur = cn
	c.Logger.Info("hsm: token open", "token", c.TokenLabel, "module", c.ModulePath, "max_sessions", c.MaxSessions)
	return k, nil
}

// connect opens a new conn: checks the token exists, logs in through crypto11,
// then loads a raw handle on the same, already initialized, module.
func (k *Keystore) connect() (*conn, error) {
	moduleMu.Lock()
	defer moduleMu.Unlock()

	// Probe first so a missing token or a wrong PIN gets a precise error
	// (crypto11 reports them as text).
	probe, err := loadModule(k.cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	slot, err := probe.findSlot(k.cfg.TokenLabel)
	if err == nil {
		err = probeLogin(probe.p, slot, k.pin)
	}
	probe.close()
	if err != nil {
		return nil, err
	}

	c11, err := crypto11.Configure(&crypto11.Config{
		Path:            k.cfg.ModulePath,
		TokenLabel:      k.cfg.TokenLabel,
		Pin:             string(k.pin),
		MaxSessions:     k.cfg.MaxSessions,
		PoolWaitTimeout: k.cfg.SessionWait,
		// Sealed secrets carry 96-bit nonces (the Sealed format); the
		// nonce is ours, crypto11 passes it to CKM_AES_GCM as given.
		GCMIVLength: gcmNonceSize,
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: open token %q: %w", k.cfg.TokenLabel, classify(err))
	}
	// The raw handle shares crypto11's module instance (and so its login) on
	// SoftHSM; modules that hand each C_GetFunctionList caller its own
	// instance (p11-kit's RPC client) need their own login.
	mod, err := loadModule(k.cfg.ModulePath)
	if err != nil {
		_ = c11.Close()
		return nil, err
	}
	// A session held for the life of the conn keeps that login: PKCS#11 logs
	// an application out when its last session closes.
	var keep pkcs11.SessionHandle
	if slot, err = mod.findSlot(k.cfg.TokenLabel); err == nil {
		keep, err = mod.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err == nil {
			err = login(mod.p, keep, pkcs11.CKU_USER, k.pin)
		} else {
			err = fmt.Errorf("hsm: open session: %w", classify(err))
		}
	}
	if err != nil {
		mod.close()
		_ = c11.Close()
		return nil, err
	}
	return &conn{
		c11:     c11,
		mod:     mod,
		slot:    slot,
		keep:    keep,
		sem:     make(chan struct{}, k.cfg.MaxSessions),
		idle:    make(chan pkcs11.SessionHandle, k.cfg.MaxSessions),
		seal:    map[uint32]pkcs11.ObjectHandle{},
		aeads:   map[uint32]cipher.AEAD{},
		signers: map[string]crypto11.Signer{},
		closed:  make(chan struct{}),
	}, nil
}

// probeLogin checks the PIN in a session of its own. If the application is
// already logged in (another keystore on the token), that is success.
func probeLogin(p *pkcs11.Ctx, slot uint, pin []byte) error {
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: open session: %w", classify(err))
	}
	defer p.CloseSession(sh)
	info, err := p.GetSessionInfo(sh)
	if err == nil && (info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS) {
		return nil
	}
	return login(p, sh, pkcs11.CKU_USER, pin)
}

// close tears the connection down after in-flight calls finished.
func (c *conn) close() {
	defer close(c.closed)
	c.inflight.Wait()
	moduleMu.Lock()
	defer moduleMu.Unlock()
	for {
		select {
		case sh := <-c.idle:
			_ = c.mod.p.CloseSession(sh)
			continue
		default:
		}
		break
	}
	_ = c.mod.p.CloseSession(c.keep)
	c.mod.close()
	_ = c.c11.Close()
}

// Close closes the keystore; calls after it fail with ErrClosed.
func (k *Keystore) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	close(k.stop)
	cn, broken := k.cur, k.broken
	k.cur = nil
	k.mu.Unlock()
	k.retryDone.Wait()
	if cn != nil {
		cn.close()
	}
	if broken != nil {
		<-broken.closed
	}
	clear(k.pin)
	return nil
}

// Available reports whether the token currently answers.
func (k *Keystore) Available() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur != nil
}

// acquire returns the current connection with one in-flight call counted.
func (k *Keystore) acquire() (*conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, ErrClosed
	}
	if k.cur == nil {
		k.startRetryLocked()
		return nil, fmt.Errorf("%w: reconnecting to token %q", ErrUnavailable, k.cfg.TokenLabel)
	}
	k.cur.inflight.Add(1)
	return k.cur, nil
}

// fail records that cn stopped answering: it is dropped, torn down once its
// in-flight calls are done, and a reconnect loop starts.
func (k *Keystore) fail(cn *conn, cause error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cn.mu.Lock()
	cn.broken = true
	cn.mu.Unlock()
	if k.cur != cn {
		return
	}
	k.cur = nil
	k.broken = cn
	k.log.Warn("hsm: token unavailable, reconnecting", "token", k.cfg.TokenLabel, "err", cause)
	go cn.close()
	if !k.closed {
		k.startRetryLocked()
	}
}

func (k *Keystore) startRetryLocked() {
	if k.retrying || k.closed {
		return
	}
	k.retrying = true
	k.retryDone.Add(1)
	go k.retry()
}

// retry reconnects with exponential backoff (100ms doubling to 5s) until the
// token answers or the keystore closes.
func (k *Keystore) retry() {
	defer k.retryDone.Done()
	// A module that must be re-initialized after an outage is finalized only
	// when the broken conn lets go of it, so wait for that first.
	k.mu.Lock()
	broken := k.broken
	k.mu.Unlock()
	if broken != nil {
		select {
		case <-broken.closed:
		case <-k.stop:
		}
	}
	wait := 100 * time.Millisecond
	for {
		select {
		case <-k.stop:
			k.mu.Lock()
			k.retrying = false
			k.mu.Unlock()
			return
		case <-time.After(wait):
		}
		cn, err := k.connect()
		if err == nil {
			k.mu.Lock()
			k.retrying = false
			if k.closed {
				k.mu.Unlock()
				cn.close()
				return
			}
			k.cur = cn
			k.mu.Unlock()
			k.log.Info("hsm: token available again", "token", k.cfg.TokenLabel)
			return
		}
		k.log.Debug("hsm: reconnect failed", "token", k.cfg.TokenLabel, "err", err)
		wait = min(wait*2, 5*time.Second)
	}
}

// use runs f on the current connection, counted as one call in flight. An
// error wrapping ErrUnavailable drops the connection (and starts the
// reconnect loop).
func (k *Keystore) use(f func(c *conn) error) error {
	cn, err := k.acquire()
	if err != nil {
		return err
	}
	defer cn.inflight.Done()
	err = f(cn)
	if errors.Is(err, ErrUnavailable) {
		k.fail(cn, err)
	}
	return err
}

// do runs f on a pooled raw session of the current connection. Sessions are
// bounded by MaxSessions; a caller waits at most SessionWait (or ctx) for one.
// A token-level failure drops the connection and returns ErrUnavailable.
func (k *Keystore) do(ctx context.Context, f func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error) error {
	return k.use(func(cn *conn) error {
		return cn.raw(ctx, k.cfg.SessionWait, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error { return f(cn, p, sh) })
	})
}

// raw runs f on a pooled raw session of c. A session that saw a token-level
// failure is closed rather than reused.
func (c *conn) raw(ctx context.Context, wait time.Duration, f func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error) error {
	sh, err := c.session(ctx, wait)
	if err != nil {
		return err
	}
	err = f(c.mod.p, sh)
	if errors.Is(err, ErrUnavailable) {
		_ = c.mod.p.CloseSession(sh)
		<-c.sem
		return err
	}
	c.idle <- sh
	return err
}

// session takes an idle session or opens one, within the MaxSessions bound.
func (c *conn) session(ctx context.Context, wait time.Duration) (pkcs11.SessionHandle, error) {
	select {
	case sh := <-c.idle:
		return sh, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case sh := <-c.idle:
		return sh, nil
	case c.sem <- struct{}{}:
		sh, err := c.mod.p.OpenSession(c.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			<-c.sem
			return 0, fmt.Errorf("hsm: open session: %w", classify(err))
		}
		return sh, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("hsm: wait for a session: %w", ctx.Err())
	case <-t.C:
		return 0, fmt.Errorf("hsm: all %d sessions busy for %s", cap(c.sem), wait)
	}
}
