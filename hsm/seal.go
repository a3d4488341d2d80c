package hsm

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThalesGroup/crypto11"
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
	for v := range c.aeads {
		if _, ok := keys[v]; !ok {
			delete(c.aeads, v)
		}
	}
	c.mu.Unlock()
	return nil
}

// sealVersion resolves v (0: the current version) among the sealing keys
// this conn knows, and reports whether it holds that version.
func (c *conn) sealVersion(v uint32) (uint32, bool) {
	_, ver, ok := c.sealHandle(v)
	return ver, ok
}

// sealHandle is sealVersion with the key's handle.
func (c *conn) sealHandle(v uint32) (pkcs11.ObjectHandle, uint32, bool) {
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

// sealKey returns the handle of version v (0: the current one) and its version.
func (c *conn) sealKey(p *pkcs11.Ctx, sh pkcs11.SessionHandle, v uint32) (pkcs11.ObjectHandle, uint32, error) {
	if h, ver, ok := c.sealHandle(v); ok {
		return h, ver, nil
	}
	// Another process (the CLI) or the join ceremony may have added keys.
	if err := c.loadSealKeys(p, sh); err != nil {
		return 0, 0, err
	}
	if h, ver, ok := c.sealHandle(v); ok {
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
// to the HSM (AES-GCM through crypto11) and is not kept.
func (k *Keystore) Seal(ctx context.Context, name string, secretVersion uint64, plaintext []byte) ([]byte, error) {
	if len(plaintext) > maxSealedSize-sealedHeader-gcmNonceSize-gcmTagSize {
		return nil, fmt.Errorf("hsm: seal %q: %d bytes exceeds the 1 MiB limit", name, len(plaintext))
	}
	nonce := make([]byte, gcmNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("hsm: nonce: %w", err)
	}
	var s Sealed
	err := k.use(func(c *conn) error {
		a, v, err := c.sealAEAD(ctx, k.cfg.SessionWait, 0)
		if err != nil {
			return err
		}
		ct, err := gcmSeal(a, nonce, plaintext, aad(name, secretVersion, v))
		if err != nil {
			return c.refused(ctx, k.cfg.SessionWait, v, fmt.Sprintf("seal %q", name), err)
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
	err = k.use(func(c *conn) error {
		a, _, err := c.sealAEAD(ctx, k.cfg.SessionWait, s.KeyVersion)
		if err != nil {
			return err
		}
		out, err := a.Open(nil, s.Nonce, s.Ciphertext, aad(name, secretVersion, s.KeyVersion))
		if err != nil {
			// A failed tag check on a token that still answers: the
			// ciphertext, name or version is wrong, not the token.
			if isTagMismatch(err) && c.probe(ctx, k.cfg.SessionWait) == nil {
				return fmt.Errorf("%w: %q version %d", ErrOpen, name, secretVersion)
			}
			return c.refused(ctx, k.cfg.SessionWait, s.KeyVersion, fmt.Sprintf("unseal %q", name), err)
		}
		pt = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// gcmSeal is AEAD.Seal without the panic crypto11's implementation raises
// on a token error (cipher.AEAD.Seal cannot return one).
func gcmSeal(a cipher.AEAD, nonce, plaintext, ad []byte) (ct []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				ct, err = nil, e
			} else {
				ct, err = nil, fmt.Errorf("%v", r)
			}
		}
	}()
	return a.Seal(nil, nonce, plaintext, ad), nil
}

// sealAEAD returns crypto11's AES-GCM of sealing key version v (0: the
// current one) and that version. The AEAD is kept per connection.
func (c *conn) sealAEAD(ctx context.Context, wait time.Duration, v uint32) (cipher.AEAD, uint32, error) {
	ver, ok := c.sealVersion(v)
	if !ok {
		// Another process (the CLI) or the join ceremony may have added keys.
		err := c.raw(ctx, wait, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
			_, _, err := c.sealKey(p, sh, v)
			return err
		})
		if err != nil {
			return nil, 0, err
		}
		ver, _ = c.sealVersion(v)
	}
	c.mu.Lock()
	a := c.aeads[ver]
	c.mu.Unlock()
	if a != nil {
		return a, ver, nil
	}
	key, err := findTokenKey(c.c11, sealLabel(ver))
	if err != nil {
		return nil, 0, c.refused(ctx, wait, ver, fmt.Sprintf("sealing key v%d", ver), err)
	}
	if a, err = key.NewGCM(); err != nil {
		return nil, 0, fmt.Errorf("hsm: sealing key v%d: %w", ver, err)
	}
	c.mu.Lock()
	c.aeads[ver] = a
	c.mu.Unlock()
	return a, ver, nil
}

// findTokenKey finds the secret key labelled label among the token's objects
// (not the session objects the join ceremony makes while it checks keys).
func findTokenKey(c11 *crypto11.Context, label string) (*crypto11.SecretKey, error) {
	attrs := crypto11.NewAttributeSet()
	if err := attrs.Set(crypto11.CkaLabel, label); err != nil {
		return nil, err
	}
	if err := attrs.Set(crypto11.CkaToken, true); err != nil {
		return nil, err
	}
	keys, err := c11.FindKeysWithAttributes(attrs)
	switch {
	case err != nil:
		return nil, classify(err)
	case len(keys) == 0:
		return nil, fmt.Errorf("no key labelled %s in the token", label)
	}
	return keys[0], nil
}

// refused explains a failed crypto11 operation with sealing key version v.
// crypto11 flattens PKCS#11 return codes into text, so the token is asked a
// harmless question on a raw session: if it does not answer, the error wraps
// ErrUnavailable (and use drops the connection); otherwise the request
// itself was refused, and the cached AEAD of v is dropped in case its key
// handle went stale (another process destroyed the key). crypto11's errors
// carry the PKCS#11 function and return code, never key or data bytes.
func (c *conn) refused(ctx context.Context, wait time.Duration, v uint32, op string, err error) error {
	if perr := c.probe(ctx, wait); perr != nil {
		return fmt.Errorf("hsm: %s: %w: %v (%v)", op, ErrUnavailable, err, perr)
	}
	c.mu.Lock()
	delete(c.aeads, v)
	c.mu.Unlock()
	return fmt.Errorf("hsm: %s: %w", op, err)
}

// probe asks the token a harmless question (one random byte) on a raw
// session; an error wrapping ErrUnavailable means the token is gone.
func (c *conn) probe(ctx context.Context, wait time.Duration) error {
	return c.raw(ctx, wait, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		_, err := p.GenerateRandom(sh, 1)
		return classify(err)
	})
}

// isTagMismatch reports whether err, from crypto11's Open on a token that
// answers, is a failed GCM tag check: C_Decrypt (not C_DecryptInit) returned
// CKR_ENCRYPTED_DATA_INVALID or _LEN_RANGE, or CKR_GENERAL_ERROR /
// CKR_FUNCTION_FAILED, which SoftHSM 2.6 answers a mismatch with. crypto11
// v1.6.2 keeps only the text of the pkcs11.Error ("C_Decrypt: pkcs11: 0x40:
// CKR_ENCRYPTED_DATA_INVALID"), hence the string match.
func isTagMismatch(err error) bool {
	msg := err.Error()
	if !strings.Contains(msg, "C_Decrypt: ") {
		return false
	}
	for _, code := range []string{"CKR_ENCRYPTED_DATA_INVALID", "CKR_ENCRYPTED_DATA_LEN_RANGE", "CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED"} {
		if strings.HasSuffix(msg, ": "+code) {
			return true
		}
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
		delete(c.aeads, v)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	k.log.Info("hsm: sealing key destroyed", "version", v)
	return nil
}
