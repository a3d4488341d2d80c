package hsm

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// macKey returns the MAC key's handle, creating it if create is set.
func (c *conn) macKey(p *pkcs11.Ctx, sh pkcs11.SessionHandle, create bool) (pkcs11.ObjectHandle, error) {
	c.mu.Lock()
	h := c.mac
	c.mu.Unlock()
	if h != 0 {
		return h, nil
	}
	hs, err := findObjects(p, sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, macLabel),
	})
	if err != nil {
		return 0, err
	}
	switch {
	case len(hs) > 0:
		h = hs[0]
	case !create:
		return 0, errors.New("hsm: no MAC key (EnsureKeys on the first node, or the join ceremony)")
	default:
		t := append(secretKeyTemplate(macLabel, pkcs11.CKK_GENERIC_SECRET), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32))
		h, err = p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, t)
		if err != nil {
			return 0, fmt.Errorf("hsm: generate MAC key: %w", classify(err))
		}
	}
	c.mu.Lock()
	c.mac = h
	c.mu.Unlock()
	return h, nil
}

// MAC returns HMAC-SHA256 of data under the token's MAC key: deterministic,
// so equal inputs give equal DLP tokens across the cluster, and unforgeable
// without the HSM.
//
// It stays on raw PKCS#11 (C_SignInit + C_Sign) rather than crypto11's
// NewHMAC: crypto11's HMAC reports token errors by panicking in Sum, and when
// C_SignUpdate fails it panics before handing its session back to its pool;
// crypto11's Context.Close then waits for that session forever, so one token
// failure mid-MAC would hang the reconnect and Close. (It also costs a third
// PKCS#11 call per MAC.)
func (k *Keystore) MAC(ctx context.Context, data []byte) ([]byte, error) {
	var out []byte
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		h, err := c.macKey(p, sh, false)
		if err != nil {
			return err
		}
		if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, h); err != nil {
			return fmt.Errorf("hsm: mac: %w", classify(err))
		}
		out, err = p.Sign(sh, data)
		if err != nil {
			return fmt.Errorf("hsm: mac: %w", classify(err))
		}
		return nil
	})
	return out, err
}

// Random returns n bytes from the HSM's random number generator.
func (k *Keystore) Random(ctx context.Context, n int) ([]byte, error) {
	if n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("hsm: random: %d bytes out of range [0, 65536]", n)
	}
	var out []byte
	err := k.do(ctx, func(_ *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		var err error
		out, err = p.GenerateRandom(sh, n)
		if err != nil {
			return fmt.Errorf("hsm: random: %w", classify(err))
		}
		return nil
	})
	return out, err
}

// RandomReader reads HSM randomness; use it where an io.Reader is wanted.
func (k *Keystore) RandomReader() io.Reader { return randReader{k} }

type randReader struct{ k *Keystore }

func (r randReader) Read(b []byte) (int, error) {
	for off := 0; off < len(b); {
		chunk, err := r.k.Random(context.Background(), min(len(b)-off, 1<<16))
		if err != nil {
			return off, err
		}
		off += copy(b[off:], chunk)
	}
	return len(b), nil
}

// Signer purposes used by the appliance.
const (
	SignerGatewayTokens = "gateway-tokens"
	SignerAudit         = "audit-checkpoints"
	SignerClusterCA     = "cluster-ca"
	SignerFirmware      = "firmware"
)

var signerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,47}$`)

// Signer returns the ECDSA P-256 signer for purpose, generating its key pair
// inside the HSM on first use (private key non-extractable). The returned
// crypto.Signer survives reconnects; Sign fails with ErrUnavailable while
// the token is away.
func (k *Keystore) Signer(ctx context.Context, purpose string) (crypto.Signer, error) {
	if !signerName.MatchString(purpose) {
		return nil, fmt.Errorf("hsm: signer purpose %q: want lowercase letters, digits and '-'", purpose)
	}
	s := &signer{k: k, purpose: purpose}
	cs, err := s.current(true)
	if err != nil {
		return nil, err
	}
	s.pub = cs.Public()
	return s, nil
}

type signer struct {
	k       *Keystore
	purpose string
	pub     crypto.PublicKey
}

var _ crypto.Signer = (*signer)(nil)

func (s *signer) Public() crypto.PublicKey { return s.pub }

func (s *signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, cn, err := s.sign(rand, digest, opts)
	if err == nil || cn == nil {
		return sig, err
	}
	// crypto11 reports the PKCS#11 code as text only: ask the token a
	// harmless question to tell a bad request from a token that went away.
	if _, perr := s.k.Random(context.Background(), 1); perr != nil {
		err = fmt.Errorf("hsm: sign with %q: %w: %v", s.purpose, ErrUnavailable, err)
		s.k.fail(cn, err)
		return nil, err
	}
	return nil, fmt.Errorf("hsm: sign with %q: %w", s.purpose, err)
}

// sign signs on the current conn; cn is nil when there was none.
func (s *signer) sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, *conn, error) {
	cn, err := s.k.acquire()
	if err != nil {
		return nil, nil, err
	}
	defer cn.inflight.Done()
	cs, err := cn.signer(s.purpose, false)
	if err != nil {
		return nil, cn, err
	}
	sig, err := cs.Sign(rand, digest, opts)
	return sig, cn, err
}

func (s *signer) current(create bool) (crypto11.Signer, error) {
	cn, err := s.k.acquire()
	if err != nil {
		return nil, err
	}
	defer cn.inflight.Done()
	return cn.signer(s.purpose, create)
}

// signer finds (or creates) the crypto11 signer of purpose on this conn.
func (c *conn) signer(purpose string, create bool) (crypto11.Signer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.signers[purpose]; ok {
		return s, nil
	}
	label := []byte("portcullis-sign-" + purpose)
	found, err := c.c11.FindKeyPairs(label, label)
	if err != nil {
		return nil, fmt.Errorf("hsm: find signer %q: %w", purpose, err)
	}
	var s crypto11.Signer
	if len(found) > 0 {
		s = found[0]
	} else {
		if !create {
			return nil, fmt.Errorf("hsm: signer %q missing from the token", purpose)
		}
		s, err = c.c11.GenerateECDSAKeyPairWithLabel(label, label, elliptic.P256())
		if err != nil {
			return nil, fmt.Errorf("hsm: generate signer %q: %w", purpose, err)
		}
	}
	c.signers[purpose] = s
	return s, nil
}
