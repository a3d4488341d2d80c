package hsm

import (
	"encoding/binary"
	"fmt"
)

// Sealed is a secret sealed by a keystore: AES-256-GCM under the sealing key
// of KeyVersion. Its binary form, which raft replicates, is
//
//	byte 0      format version (1)
//	bytes 1-4   sealing key version, big endian
//	byte 5      nonce length n (12)
//	n bytes     nonce
//	rest        ciphertext and 16-byte GCM tag
//
// The associated data (see aad) binds the ciphertext to the secret's name and
// version and to the header, so a ciphertext copied under another name or
// version, or with an edited header, does not open.
type Sealed struct {
	KeyVersion uint32
	Nonce      []byte
	Ciphertext []byte // includes the tag
}

const (
	sealedFormat  = 1
	gcmNonceSize  = 12
	gcmTagSize    = 16
	sealedHeader  = 6
	maxSealedSize = 1 << 20 // 1 MiB: secrets are credentials, not files
)

// MarshalBinary encodes s.
func (s Sealed) MarshalBinary() ([]byte, error) {
	if len(s.Nonce) != gcmNonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(s.Nonce), gcmNonceSize)
	}
	if len(s.Ciphertext) < gcmTagSize {
		return nil, fmt.Errorf("%w: ciphertext shorter than the GCM tag", ErrMalformed)
	}
	b := make([]byte, 0, sealedHeader+len(s.Nonce)+len(s.Ciphertext))
	b = append(b, sealedFormat)
	b = binary.BigEndian.AppendUint32(b, s.KeyVersion)
	b = append(b, byte(len(s.Nonce)))
	b = append(b, s.Nonce...)
	b = append(b, s.Ciphertext...)
	return b, nil
}

// ParseSealed decodes the binary form. The result shares no memory with b.
func ParseSealed(b []byte) (Sealed, error) {
	switch {
	case len(b) > maxSealedSize:
		return Sealed{}, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrMalformed, len(b), maxSealedSize)
	case len(b) < sealedHeader:
		return Sealed{}, fmt.Errorf("%w: %d bytes is shorter than the header", ErrMalformed, len(b))
	case b[0] != sealedFormat:
		return Sealed{}, fmt.Errorf("%w: format version %d, want %d", ErrMalformed, b[0], sealedFormat)
	}
	kv := binary.BigEndian.Uint32(b[1:5])
	if kv == 0 {
		return Sealed{}, fmt.Errorf("%w: key version 0", ErrMalformed)
	}
	n := int(b[5])
	if n != gcmNonceSize {
		return Sealed{}, fmt.Errorf("%w: nonce length %d, want %d", ErrMalformed, n, gcmNonceSize)
	}
	rest := b[sealedHeader:]
	if len(rest) < n+gcmTagSize {
		return Sealed{}, fmt.Errorf("%w: truncated after the header", ErrMalformed)
	}
	return Sealed{
		KeyVersion: kv,
		Nonce:      append([]byte(nil), rest[:n]...),
		Ciphertext: append([]byte(nil), rest[n:]...),
	}, nil
}

// KeyVersionOf returns the sealing key version of a sealed secret, so a
// re-seal pass can skip what is already current.
func KeyVersionOf(sealed []byte) (uint32, error) {
	s, err := ParseSealed(sealed)
	if err != nil {
		return 0, err
	}
	return s.KeyVersion, nil
}

// aad is the associated data of a sealed secret: a domain string, the
// format, the key version, and the secret's name and version.
func aad(name string, secretVersion uint64, keyVersion uint32) []byte {
	b := make([]byte, 0, 32+len(name))
	b = append(b, "portcullis/secret\x00"...)
	b = append(b, sealedFormat)
	b = binary.BigEndian.AppendUint32(b, keyVersion)
	b = binary.BigEndian.AppendUint64(b, secretVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	return b
}
