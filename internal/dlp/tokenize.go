package dlp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// MAC computes a keyed message authentication code. Implementations must be
// deterministic for a given key and safe for concurrent use; the hsm package
// provides one whose key never leaves the HSM.
type MAC interface {
	MAC(msg []byte) []byte
}

// HMAC is an HMAC-SHA256 MAC with a key held in memory (tests, or nodes
// without an HSM).
type HMAC struct{ key []byte }

var _ MAC = (*HMAC)(nil)

// NewHMAC returns an HMAC-SHA256 MAC; the key should be at least 32 bytes.
func NewHMAC(key []byte) (*HMAC, error) {
	if len(key) < 16 {
		return nil, errors.New("dlp: hmac key shorter than 16 bytes")
	}
	return &HMAC{key: append([]byte{}, key...)}, nil
}

// MAC implements MAC.
func (h *HMAC) MAC(msg []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(msg)
	return m.Sum(nil)
}

// Tokenizer replaces sensitive values with deterministic tokens: the same
// value (for the same detector) always yields the same token, so joins and
// de-duplication keep working downstream, while the value cannot be
// recovered without the key.
type Tokenizer struct {
	mac     MAC
	ff1     *ff1
	fpeDflt bool
}

// TokenizerConfig configures a Tokenizer.
type TokenizerConfig struct {
	MAC MAC // required
	// FormatPreserving makes Token use FF1 for every numeric value, not
	// only for rules with format "ff1".
	FormatPreserving bool
}

// NewTokenizer builds a Tokenizer. The FF1 AES key is derived from MAC, so
// with an HSM-backed MAC the tokens are keyed by the HSM key.
func NewTokenizer(cfg TokenizerConfig) (*Tokenizer, error) {
	if cfg.MAC == nil {
		return nil, errors.New("dlp: tokenizer needs a MAC")
	}
	t := &Tokenizer{mac: cfg.MAC, fpeDflt: cfg.FormatPreserving}
	k := cfg.MAC.MAC([]byte("portcullis/dlp/ff1-key/v1"))
	if len(k) < 16 {
		return nil, errors.New("dlp: MAC output shorter than 16 bytes")
	}
	f, err := newFF1(k[:16])
	if err != nil {
		return nil, err
	}
	t.ff1 = f
	return t, nil
}

var tokEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Token returns the deterministic token for value found by detector:
// "tok_" and 24 base32 characters of its keyed MAC.
func (t *Tokenizer) Token(detector string, value []byte) string {
	if t.fpeDflt {
		return t.TokenFormatPreserving(detector, value)
	}
	m := t.mac.MAC(fingerprintInput(detector, value))
	return "tok_" + tokEnc.EncodeToString(m[:15])
}

// TokenFormatPreserving encrypts the digits of a numeric value with FF1
// (tweak: the detector id) and keeps its layout; values with letters or
// fewer than six digits get a regular token.
func (t *Tokenizer) TokenFormatPreserving(detector string, value []byte) string {
	if t.ff1 != nil {
		if tok, err := t.formatPreserving(detector, value); err == nil {
			return tok
		}
	}
	m := t.mac.MAC(fingerprintInput(detector, value))
	return "tok_" + tokEnc.EncodeToString(m[:15])
}

// formatPreserving encrypts the digits of value with FF1 and puts them back
// into the original layout (separators stay where they were).
func (t *Tokenizer) formatPreserving(detector string, value []byte) (string, error) {
	var ds strings.Builder
	for _, c := range value {
		if isDigit(c) {
			ds.WriteByte(c)
		} else if isAlpha(c) {
			return "", fmt.Errorf("dlp: %s value is not numeric", detector)
		}
	}
	enc, err := t.ff1.encryptDigits([]byte(detector), ds.String(), false)
	if err != nil {
		return "", err
	}
	out := []byte(string(value))
	k := 0
	for i, c := range out {
		if isDigit(c) {
			out[i] = enc[k]
			k++
		}
	}
	return string(out), nil
}

// fingerprintInput normalizes a value (alphanumerics, upper case) so that
// "4111 1111 …" and "4111-1111-…" fingerprint alike.
func fingerprintInput(detector string, value []byte) []byte {
	out := make([]byte, 0, len(detector)+1+len(value))
	out = append(out, detector...)
	out = append(out, 0)
	for _, c := range value {
		switch {
		case isLower(c):
			out = append(out, c-'a'+'A')
		case isAlnum(c) || c >= 0x80:
			out = append(out, c)
		}
	}
	if len(out) == len(detector)+1 { // no alphanumerics: keep the raw bytes
		out = append(out, value...)
	}
	return out
}
