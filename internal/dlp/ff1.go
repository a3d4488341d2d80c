package dlp

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"math/big"
)

// ff1 is the NIST SP 800-38G FF1 format-preserving cipher over decimal
// digits (radix 10) with AES.
type ff1 struct {
	block cipher.Block
	radix int
}

var errFF1Domain = errors.New("dlp: ff1: input too short (needs radix^n ≥ 1000000)")

func newFF1(key []byte) (*ff1, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("dlp: ff1 key: %w", err)
	}
	return &ff1{block: b, radix: 10}, nil
}

func (f *ff1) prf(x []byte) []byte {
	y := make([]byte, 16)
	for i := 0; i < len(x); i += 16 {
		for k := 0; k < 16; k++ {
			y[k] ^= x[i+k]
		}
		f.block.Encrypt(y, y)
	}
	return y
}

func numRadix(x []byte, radix int) *big.Int {
	n := new(big.Int)
	r := big.NewInt(int64(radix))
	for _, d := range x {
		n.Mul(n, r)
		n.Add(n, big.NewInt(int64(d)))
	}
	return n
}

func strRadix(n *big.Int, radix, m int) []byte {
	out := make([]byte, m)
	x := new(big.Int).Set(n)
	r := big.NewInt(int64(radix))
	mod := new(big.Int)
	for i := m - 1; i >= 0; i-- {
		x.DivMod(x, r, mod)
		out[i] = byte(mod.Int64())
	}
	return out
}

// crypt runs the ten Feistel rounds over numerals x (values 0..radix-1).
func (f *ff1) crypt(tweak, x []byte, decrypt bool) ([]byte, error) {
	n := len(x)
	if n < 6 || n > 1<<16 {
		return nil, errFF1Domain
	}
	t := len(tweak)
	u := n / 2
	v := n - u
	a := append([]byte{}, x[:u]...)
	b := append([]byte{}, x[u:]...)
	rv := new(big.Int).Exp(big.NewInt(int64(f.radix)), big.NewInt(int64(v)), nil)
	bytesB := (new(big.Int).Sub(rv, big.NewInt(1)).BitLen() + 7) / 8
	d := 4*((bytesB+3)/4) + 4
	p := []byte{1, 2, 1, 0, 0, byte(f.radix), 10, byte(u), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t)}
	p[3], p[4], p[5] = byte(f.radix>>16), byte(f.radix>>8), byte(f.radix)
	pad := ((-t-bytesB-1)%16 + 16) % 16
	round := func(i int, src []byte) *big.Int {
		q := make([]byte, 0, t+pad+1+bytesB)
		q = append(q, tweak...)
		q = append(q, make([]byte, pad)...)
		q = append(q, byte(i))
		nb := numRadix(src, f.radix).Bytes()
		q = append(q, make([]byte, bytesB-len(nb))...)
		q = append(q, nb...)
		r := f.prf(append(append([]byte{}, p...), q...))
		s := append([]byte{}, r...)
		for j := 1; len(s) < d; j++ {
			blk := make([]byte, 16)
			copy(blk, r)
			blk[12] ^= byte(j >> 24)
			blk[13] ^= byte(j >> 16)
			blk[14] ^= byte(j >> 8)
			blk[15] ^= byte(j)
			f.block.Encrypt(blk, blk)
			s = append(s, blk...)
		}
		return new(big.Int).SetBytes(s[:d])
	}
	ru := new(big.Int).Exp(big.NewInt(int64(f.radix)), big.NewInt(int64(u)), nil)
	if !decrypt {
		for i := 0; i < 10; i++ {
			m, mod := u, ru
			if i%2 == 1 {
				m, mod = v, rv
			}
			c := new(big.Int).Add(numRadix(a, f.radix), round(i, b))
			c.Mod(c, mod)
			a, b = b, strRadix(c, f.radix, m)
		}
		return append(a, b...), nil
	}
	for i := 9; i >= 0; i-- {
		m, mod := u, ru
		if i%2 == 1 {
			m, mod = v, rv
		}
		c := new(big.Int).Sub(numRadix(b, f.radix), round(i, a))
		c.Mod(c, mod)
		a, b = strRadix(c, f.radix, m), a
	}
	return append(a, b...), nil
}

// encryptDigits format-preservingly encrypts an ASCII digit string.
func (f *ff1) encryptDigits(tweak []byte, digits string, decrypt bool) (string, error) {
	x := make([]byte, len(digits))
	for i := range x {
		c := digits[i]
		if !isDigit(c) {
			return "", errors.New("dlp: ff1: not a digit string")
		}
		x[i] = c - '0'
	}
	y, err := f.crypt(tweak, x, decrypt)
	if err != nil {
		return "", err
	}
	for i := range y {
		y[i] += '0'
	}
	return string(y), nil
}
