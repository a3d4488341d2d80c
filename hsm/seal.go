package hsm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/pkcs11"
)

const (
	sealLabelPrefix = "portcullis-seal-v"
	macLabel        = "portcullis-mac-v1"
)

func sealLabel(v uint32) string { return sealLabelPrefix + strconv.FormatUint(uint64(v), 10) }

// secretKeyTemplate is the attribute set of a sealing or MAC key: a private,
// sensitive token object that can be wrapped only with a key the SO marked
// CKA_TRUSTED (see the package documentation).
func secretKeyTemplate(label string, keyType uint) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
	}
	if keyType == pkcs11.CKK_AES {
		t = append(t,
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false))
	} else {
		t = append(t,
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
	}
	return t
}

// findObjects returns the handles matching template.
func findObjects(p *pkcs11.Ctx, sh pkcs11.SessionHandle, template []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(sh, template); err != nil {
		return nil, fmt.Errorf("hsm: find objects: %w", classify(err))
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := p.FindObjects(sh, 64)
		if err != nil {
			_ = p.FindObjectsFinal(sh)
			return nil, fmt.Errorf("hsm: find objects: %w", classify(err))
		}
		all = append(all, hs...)
		if len(hs) < 64 {
			break
		}
	}
	if err := p.FindObjectsFinal(sh); err != nil {
		return nil, fmt.Errorf("hsm: find objects: %w", classify(err))
	}
	return all, nil
}

// loadSealKeys (re)reads the sealing keys of the token into c.seal.
func (c *conn) loadSealKeys(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
	hs, err := findObjects(p, sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
	})
	if err != nil {
		return err
	}
	keys := map[uint32]pkcs11.ObjectHandle{}
	for _, h := range hs {
		attrs, err := p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if err != nil {
			return fmt.Errorf("hsm: read key label: %w", classify(err))
		}
		label := string(attrs[0].Value)
		v, ok := strings.CutPrefix(label, sealLabelPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			continue
		}
		keys[uint32(n)] = h
	}
	c.mu.Lock()
	c.seal = keys
	c.mu.Unlock()
	return nil
}

// sealKey returns the handle of version v (0: the current one) and its version.
func (c *conn) sealKey(p *pkcs11.Ctx, sh pkcs11.SessionHandle, v uint32) (pkcs11.ObjectHandle, uint32, error) {
	lookup := func() (pkcs11.ObjectHandle, uint32, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if v == 0 {
			for n := range c.seal {
				v = max(v, n)
			}
		}
		h, ok := c.seal[v]
		return h, v, ok && v != 0
	}
	if h, ver, ok := lookup(); ok {
		return h, ver, nil
	}
	// Another process (the CLI) or the join ceremony may have added keys.
	if err := c.loadSealKeys(p, sh); err != nil {
		return 0, 0, err
	}
	if h, ver, ok := lookup(); ok {
		return h, ver, nil
	}
	if v == 0 {
		return 0, 0, ErrNoSealingKey
	}
	return 0, 0, fmt.Errorf("%w: v%d", ErrUnknownKeyVersion, v)
}

// KeyVersions lists the sealing key versions the token holds, ascending.
func (k *Keystore) KeyVersions(ctx context.Context) ([]uint32, error) {
	var out []uint32
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		if err := c.loadSealKeys(p, sh); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for v := range c.seal {
			out = append(out, v)
		}
		return nil
	})
	sortU32(out)
	return out, err
}

func sortU32(s []uint32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// EnsureKeys creates sealing key v1 and the MAC key if the token has none.
// Call it on a cluster's first node (and in dev mode); a joining node gets its
// keys through the ceremony instead, so it must not call this first.
func (k *Keystore) EnsureKeys(ctx context.Context) error {
	if _, err := k.CurrentKeyVersion(ctx); errors.Is(err, ErrNoSealingKey) {
		if _, err := k.Rotate(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		_, err := c.macKey(p, sh, true)
		return err
	})
}

// CurrentKeyVersion returns the version new seals use.
func (k *Keystore) CurrentKeyVersion(ctx context.Context) (uint32, error) {
	var v uint32
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		var err error
		_, v, err = c.sealKey(p, sh, 0)
		return err
	})
	return v, err
}

// Rotate generates the next sealing key inside the HSM and makes it current.
// Old versions stay so old ciphertexts still open; Reseal moves them.
func (k *Keystore) Rotate(ctx context.Context) (uint32, error) {
	var next uint32
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		if err := c.loadSealKeys(p, sh); err != nil {
			return err
		}
		c.mu.Lock()
		for v := range c.seal {
			next = max(next, v)
		}
		c.mu.Unlock()
		next++
		t := append(secretKeyTemplate(sealLabel(next), pkcs11.CKK_AES), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32))
		h, err := p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, t)
		if err != nil {
			return fmt.Errorf("hsm: generate sealing key v%d: %w", next, classify(err))
		}
		c.mu.Lock()
		c.seal[next] = h
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, err
	}
	k.log.Info("hsm: sealing key generated", "version", next)
	return next, nil
}

// Seal encrypts plaintext for the secret name at secretVersion under the
// current sealing key and returns the Sealed binary form. The plaintext goes
// to the HSM and is not kept.
func (k *Keystore) Seal(ctx context.Context, name string, secretVersion uint64, plaintext []byte) ([]byte, error) {
	if len(plaintext) > maxSealedSize-sealedHeader-gcmNonceSize-gcmTagSize {
		return nil, fmt.Errorf("hsm: seal %q: %d bytes exceeds the 1 MiB limit", name, len(plaintext))
	}
	nonce := make([]byte, gcmNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("hsm: nonce: %w", err)
	}
	var s Sealed
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		h, v, err := c.sealKey(p, sh, 0)
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(nonce, aad(name, secretVersion, v), gcmTagSize*8)
		defer params.Free()
		if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("hsm: seal %q: %w", name, classify(err))
		}
		ct, err := p.Encrypt(sh, plaintext)
		if err != nil {
			return fmt.Errorf("hsm: seal %q: %w", name, classify(err))
		}
		s = Sealed{KeyVersion: v, Nonce: nonce, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.MarshalBinary()
}

// Unseal opens a sealed secret of name at secretVersion. The caller owns the
// plaintext and should clear it when done. Errors: ErrMalformed, ErrOpen
// (tampered, or another name/version), ErrUnknownKeyVersion, ErrUnavailable.
func (k *Keystore) Unseal(ctx context.Context, name string, secretVersion uint64, sealed []byte) ([]byte, error) {
	s, err := ParseSealed(sealed)
	if err != nil {
		return nil, err
	}
	var pt []byte
	err = k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		h, _, err := c.sealKey(p, sh, s.KeyVersion)
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(s.Nonce, aad(name, secretVersion, s.KeyVersion), gcmTagSize*8)
		defer params.Free()
		if err := p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("hsm: unseal %q: %w", name, classify(err))
		}
		pt, err = p.Decrypt(sh, s.Ciphertext)
		if err != nil {
			if isAuthFailure(p, sh, err) {
				return fmt.Errorf("%w: %q version %d", ErrOpen, name, secretVersion)
			}
			return fmt.Errorf("hsm: unseal %q: %w", name, classify(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// isAuthFailure reports whether a failed C_Decrypt was a GCM tag mismatch.
// The standard code is CKR_ENCRYPTED_DATA_INVALID, but SoftHSM 2.6 answers a
// mismatch with CKR_GENERAL_ERROR, which also means "token broken"; the two
// are told apart by asking the same session a harmless question.
func isAuthFailure(p *pkcs11.Ctx, sh pkcs11.SessionHandle, err error) bool {
	var code pkcs11.Error
	if !errors.As(err, &code) {
		return false
	}
	switch code {
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE:
		return true
	case pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED:
		_, perr := p.GenerateRandom(sh, 1)
		return perr == nil
	}
	return false
}

// Reseal re-encrypts a sealed secret under the current sealing key. It
// returns the input unchanged (and false) when it is already current. The
// plaintext exists in this process only between the two HSM calls and is
// cleared.
func (k *Keystore) Reseal(ctx context.Context, name string, secretVersion uint64, sealed []byte) ([]byte, bool, error) {
	kv, err := KeyVersionOf(sealed)
	if err != nil {
		return nil, false, err
	}
	cur, err := k.CurrentKeyVersion(ctx)
	if err != nil {
		return nil, false, err
	}
	if kv == cur {
		return sealed, false, nil
	}
	pt, err := k.Unseal(ctx, name, secretVersion, sealed)
	if err != nil {
		return nil, false, err
	}
	defer clear(pt)
	out, err := k.Seal(ctx, name, secretVersion, pt)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// SealedSecret is one stored secret as the replicated state holds it.
type SealedSecret struct {
	Name    string
	Version uint64
	Sealed  []byte
}

// ResealAll re-encrypts under the current sealing key every secret that is
// sealed under an older one, and returns only those (same name and version,
// new ciphertext) for the caller to store. After every node has stored them,
// old key versions can be retired. It stops at the first failure, returning
// what it resealed so far.
func (k *Keystore) ResealAll(ctx context.Context, secrets []SealedSecret) ([]SealedSecret, error) {
	var out []SealedSecret
	for _, s := range secrets {
		sealed, changed, err := k.Reseal(ctx, s.Name, s.Version, s.Sealed)
		if err != nil {
			return out, fmt.Errorf("hsm: reseal %q version %d: %w", s.Name, s.Version, err)
		}
		if changed {
			out = append(out, SealedSecret{Name: s.Name, Version: s.Version, Sealed: sealed})
		}
	}
	return out, nil
}

// DestroyKeyVersion destroys sealing key version v in this token, after
// ResealAll has moved every secret off it. The current version cannot be
// destroyed. Ciphertexts still under v will never open again.
func (k *Keystore) DestroyKeyVersion(ctx context.Context, v uint32) error {
	err := k.do(ctx, func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		h, _, err := c.sealKey(p, sh, v)
		if err != nil {
			return err
		}
		_, cur, err := c.sealKey(p, sh, 0)
		if err != nil {
			return err
		}
		if v == cur {
			return fmt.Errorf("hsm: sealing key v%d is current; rotate first", v)
		}
		if err := p.DestroyObject(sh, h); err != nil {
			return fmt.Errorf("hsm: destroy sealing key v%d: %w", v, classify(err))
		}
		c.mu.Lock()
		delete(c.seal, v)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	k.log.Info("hsm: sealing key destroyed", "version", v)
	return nil
}
