package dlp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"

	"golang.org/x/crypto/sha3"
)

func sha256d(b []byte) []byte {
	h := sha256.Sum256(b)
	h2 := sha256.Sum256(h[:])
	return h2[:]
}

// base58Check decodes s and verifies the 4-byte double-SHA256 checksum; it
// returns the version-prefixed payload.
func base58Check(s []byte, alphabet *[256]int8) ([]byte, bool) {
	var raw []byte
	var ok bool
	if alphabet == nil {
		raw, ok = base58Decode(s)
	} else {
		raw, ok = base58DecodeWith(s, alphabet)
	}
	if !ok || len(raw) < 5 {
		return nil, false
	}
	p := raw[:len(raw)-4]
	if !bytes.Equal(sha256d(p)[:4], raw[len(raw)-4:]) {
		return nil, false
	}
	return p, true
}

const rippleAlphabet = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"

var rippleIndex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(rippleAlphabet); i++ {
		t[rippleAlphabet[i]] = int8(i)
	}
	return
}()

// base58DecodeWith decodes with another alphabet by translating to the
// bitcoin one.
func base58DecodeWith(s []byte, idx *[256]int8) ([]byte, bool) {
	t := make([]byte, len(s))
	for i, c := range s {
		v := idx[c]
		if v < 0 {
			return nil, false
		}
		t[i] = b58Alphabet[v]
	}
	return base58Decode(t)
}

func genBase58Check(r *rand.Rand, version []byte, n int, alphabet string) string {
	p := append(append([]byte{}, version...), []byte(fromSet(r, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\xff\xfe\x80\x7f", n))...)
	for i := len(version); i < len(p); i++ {
		p[i] = byte(r.IntN(256))
	}
	s := base58Encode(append(p, sha256d(p)[:4]...))
	if alphabet != "" {
		t := []byte(s)
		for i, c := range t {
			t[i] = alphabet[strings.IndexByte(b58Alphabet, c)]
		}
		s = string(t)
	}
	return s
}

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(v []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, x := range v {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(x)
		for i := 0; i < 5; i++ {
			if (b>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func bech32Expand(hrp string) []byte {
	out := make([]byte, 0, len(hrp)*2+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// bech32Valid verifies a bech32 or bech32m string with the given hrp.
func bech32Valid(s []byte, hrp string) bool {
	if len(s) < len(hrp)+7 || string(s[:len(hrp)+1]) != hrp+"1" {
		return false
	}
	data := make([]byte, 0, len(s))
	for _, c := range s[len(hrp)+1:] {
		k := strings.IndexByte(bech32Charset, c)
		if k < 0 {
			return false
		}
		data = append(data, byte(k))
	}
	pm := bech32Polymod(append(bech32Expand(hrp), data...))
	return pm == 1 || pm == 0x2bc830a3
}

func genBech32(r *rand.Rand, hrp string, n int) string {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.IntN(32))
	}
	data[0] = 0
	pm := bech32Polymod(append(append(bech32Expand(hrp), data...), 0, 0, 0, 0, 0, 0)) ^ 1
	var sb strings.Builder
	sb.WriteString(hrp + "1")
	for _, d := range data {
		sb.WriteByte(bech32Charset[d])
	}
	for i := 0; i < 6; i++ {
		sb.WriteByte(bech32Charset[(pm>>(5*(5-i)))&31])
	}
	return sb.String()
}

// eip55 returns the checksummed form of a lowercase 40-hex address.
func eip55(addr []byte) []byte {
	lower := bytes.ToLower(addr)
	h := sha3.NewLegacyKeccak256()
	h.Write(lower)
	sum := h.Sum(nil)
	out := make([]byte, 40)
	for i, c := range lower {
		nib := sum[i/2]
		if i%2 == 0 {
			nib >>= 4
		}
		if c >= 'a' && nib&0xf >= 8 {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func b58Detector(id, desc string, min, max int, first string, versions []byte, alphabet *[256]int8, payload []int, genFn func(r *rand.Rand) string) *Detector {
	return &Detector{
		ID: id, Category: Crypto, Tags: tags(TagSOC2), Description: desc, Confidence: 0.9,
		Context: []string{"wallet", "address", "btc", "bitcoin", "send", "crypto"},
		minLen:  min, maxLen: max,
		group: func(c *cand) float64 {
			if len(c.raw) != len(c.norm) || !bytesIn(c.norm[0], first) {
				return 0
			}
			p, ok := base58Check(c.norm, alphabet)
			if !ok || !bytes.Contains(versions, p[:1]) {
				return 0
			}
			okLen := false
			for _, l := range payload {
				if len(p)-1 == l {
					okLen = true
				}
			}
			if !okLen {
				return 0
			}
			return 0.9
		},
		gen: func(r *rand.Rand) (string, string) { return "send to ", genFn(r) },
		near: func(r *rand.Rand) string {
			v := []byte(genFn(r))
			k := len(v) - 3
			if v[k] == 'x' {
				v[k] = 'y'
			} else {
				v[k] = 'x'
			}
			return "send to " + string(v)
		},
	}
}

func init() {
	register(b58Detector("btc-address", "Bitcoin legacy/P2SH address (Base58Check)", 26, 35, "13", []byte{0x00, 0x05}, nil, []int{20},
		func(r *rand.Rand) string { return genBase58Check(r, []byte{0x00}, 20, "") }))
	register(b58Detector("ltc-address", "Litecoin address (Base58Check)", 26, 35, "LM", []byte{0x30, 0x32}, nil, []int{20},
		func(r *rand.Rand) string { return genBase58Check(r, []byte{0x30}, 20, "") }))
	// Dogecoin P2PKH (0x1e, D…) and P2SH (0x16, 9… or A…)
	register(b58Detector("doge-address", "Dogecoin address (Base58Check)", 26, 35, "D9A", []byte{0x1e, 0x16}, nil, []int{20},
		func(r *rand.Rand) string { return genBase58Check(r, []byte{0x1e}, 20, "") }))
	register(b58Detector("tron-address", "Tron address (Base58Check, 0x41)", 34, 34, "T", []byte{0x41}, nil, []int{20},
		func(r *rand.Rand) string { return genBase58Check(r, []byte{0x41}, 20, "") }))
	register(b58Detector("xrp-address", "XRP Ledger classic address (Ripple Base58Check)", 25, 35, "r", []byte{0x00}, &rippleIndex, []int{20},
		func(r *rand.Rand) string { return genBase58Check(r, []byte{0x00}, 20, rippleAlphabet) }))
	wif := b58Detector("btc-wif-private-key", "Bitcoin private key in WIF (Base58Check, 0x80)", 51, 52, "5KL", []byte{0x80}, nil, []int{32, 33},
		func(r *rand.Rand) string { return genBase58Check(r, []byte{0x80}, 32, "") })
	wif.Tags = tags(TagSOC2, TagPCI)
	wif.Confidence = 0.95
	register(wif)
	for _, h := range []struct{ id, hrp, desc string }{
		{"btc-bech32-address", "bc", "Bitcoin SegWit/Taproot address (bech32/bech32m checksum)"},
		{"ltc-bech32-address", "ltc", "Litecoin SegWit address (bech32 checksum)"},
	} {
		hrp := h.hrp
		register(&Detector{
			ID: h.id, Category: Crypto, Tags: tags(TagSOC2), Description: h.desc, Confidence: 0.95,
			prefixes: []string{hrp + "1"},
			anchor: func(b []byte, i int) (int, int, float64) {
				p := i + len(hrp) + 1
				for p < len(b) && p-i <= 90 && isAlnum(b[p]) {
					p++
				}
				if p-i < 14 || p-i > 90 || !bech32Valid(b[i:p], hrp) {
					return 0, 0, 0
				}
				return i, p, 0.95
			},
			gen: func(r *rand.Rand) (string, string) { return "send to ", genBech32(r, hrp, 33) },
			near: func(r *rand.Rand) string {
				v := []byte(genBech32(r, hrp, 33))
				v[len(v)-1] = bech32Charset[(strings.IndexByte(bech32Charset, v[len(v)-1])+1)%32]
				return "send to " + string(v)
			},
		})
	}
	register(&Detector{
		ID: "eth-address", Category: Crypto, Tags: tags(TagSOC2), Description: "Ethereum address (0x + 40 hex, EIP-55 checksum when mixed case)",
		Confidence: 0.9, Context: []string{"wallet", "address", "eth", "ethereum", "send", "to"},
		prefixes: []string{"0x"},
		anchor: func(b []byte, i int) (int, int, float64) {
			p := i + 2
			for p < len(b) && isHex(b[p]) && p-i <= 42 {
				p++
			}
			if p-i != 42 || p < len(b) && isAlnum(b[p]) {
				return 0, 0, 0
			}
			a := b[i+2 : p]
			lower, upper := bytes.Equal(a, bytes.ToLower(a)), bytes.Equal(a, bytes.ToUpper(a))
			if lower || upper {
				return i, p, 0.6
			}
			if !bytes.Equal(eip55(a), a) {
				return 0, 0, 0
			}
			return i, p, 0.95
		},
		gen: func(r *rand.Rand) (string, string) {
			return "to: ", "0x" + string(eip55([]byte(fromSet(r, setHexLower, 40))))
		},
		near: func(r *rand.Rand) string {
			a := eip55([]byte(fromSet(r, setHexLower, 40)))
			for k, c := range a {
				if isAlpha(c) {
					a[k] ^= 0x20 // flip the case of one letter: EIP-55 fails
					break
				}
			}
			return "0x" + string(a) + " 0x" + hex.EncodeToString([]byte("short"))
		},
	})
}
