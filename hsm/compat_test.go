package hsm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/pkcs11"
)

// compatFixture is testdata/sealed-compat.json: values sealed and MACed by
// the raw PKCS#11 code (main at 3adb354, before Seal, Unseal and MAC went
// through crypto11) under known, test-only keys imported into SoftHSM. The
// keys and plaintexts are made up for the fixture and protect nothing.
type compatFixture struct {
	Comment string `json:"comment"`
	// Keys, hex: sealing keys by version, and the MAC key.
	SealKeys map[uint32]string `json:"seal_keys"`
	MACKey   string            `json:"mac_key"`
	Sealed   []compatSealed    `json:"sealed"`
	MACs     []compatMAC       `json:"macs"`
}

type compatSealed struct {
	Name          string `json:"name"`
	SecretVersion uint64 `json:"secret_version"`
	Plaintext     string `json:"plaintext"`
	Sealed        string `json:"sealed"` // hex of the Sealed binary form
}

type compatMAC struct {
	Data string `json:"data"`
	MAC  string `json:"mac"` // hex
}

const compatFixturePath = "testdata/sealed-compat.json"

// compatWriteEnv, set to a file name, makes TestWriteCompatFixture write the
// fixture with the Seal and MAC of the code under test. It was run once on
// main's code (a worktree of main with this file copied in); do not rerun it
// on newer code, or the fixture stops proving anything.
const compatWriteEnv = "PORTCULLIS_HSM_WRITE_COMPAT_FIXTURE"

// importKey creates a token secret key of the given label and value with the
// attributes the keystore gives the keys it generates, then makes the
// keystore re-read its keys.
func importKey(t testing.TB, k *Keystore, label string, keyType uint, value []byte) {
	t.Helper()
	err := k.do(ctxT(t), func(c *conn, p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		tmpl := append(secretKeyTemplate(label, keyType), pkcs11.NewAttribute(pkcs11.CKA_VALUE, value))
		if _, err := p.CreateObject(sh, tmpl); err != nil {
			return err
		}
		c.mu.Lock()
		c.mac = 0
		c.mu.Unlock()
		return c.loadSealKeys(p, sh)
	})
	if err != nil {
		t.Fatalf("import %s: %v", label, err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func TestWriteCompatFixture(t *testing.T) {
	out := os.Getenv(compatWriteEnv)
	if out == "" {
		t.Skip(compatWriteEnv + " not set: the fixture is written once, by main's code")
	}
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "compat")
	k := open(t, cfg)
	ctx := ctxT(t)
	fx := compatFixture{
		Comment:  "Sealed and MACed by main's raw PKCS#11 code under made-up test keys; no real secret. See compat_test.go.",
		SealKeys: map[uint32]string{},
	}
	newKey := func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	}
	macKey := newKey()
	fx.MACKey = hex.EncodeToString(macKey)
	importKey(t, k, macLabel, pkcs11.CKK_GENERIC_SECRET, macKey)
	for _, v := range []uint32{1, 2} {
		key := newKey()
		fx.SealKeys[v] = hex.EncodeToString(key)
		importKey(t, k, sealLabel(v), pkcs11.CKK_AES, key)
		for i, size := range []int{0, 1, 63, 1500} {
			pt := bytes.Repeat([]byte(fmt.Sprintf("fixture-%d-%d;", v, i)), size/12+1)[:size]
			name := fmt.Sprintf("upstream/%d/credential-%d", v, i)
			sv := uint64(i + 1)
			sealed, err := k.Seal(ctx, name, sv, pt)
			if err != nil {
				t.Fatal(err)
			}
			fx.Sealed = append(fx.Sealed, compatSealed{Name: name, SecretVersion: sv, Plaintext: string(pt), Sealed: hex.EncodeToString(sealed)})
		}
	}
	for _, in := range []string{"", "portcullis/session-key/v1", "4111 1111 1111 1111", string(bytes.Repeat([]byte{'x'}, 5000))} {
		m, err := k.MAC(ctx, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		fx.MACs = append(fx.MACs, compatMAC{Data: in, MAC: hex.EncodeToString(m)})
	}
	b, err := json.MarshalIndent(fx, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// openFixtureKeystore loads the fixture and a keystore holding its keys.
func openFixtureKeystore(t *testing.T) (*Keystore, compatFixture) {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(compatFixturePath))
	if err != nil {
		t.Fatal(err)
	}
	var fx compatFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if len(fx.SealKeys) != 2 || len(fx.Sealed) == 0 || len(fx.MACs) == 0 {
		t.Fatalf("fixture is incomplete: %d sealing keys, %d sealed values, %d MACs", len(fx.SealKeys), len(fx.Sealed), len(fx.MACs))
	}
	s := newSoftHSM(t)
	cfg, _ := s.token(t, "compat")
	k := open(t, cfg)
	importKey(t, k, macLabel, pkcs11.CKK_GENERIC_SECRET, mustHex(t, fx.MACKey))
	for v, key := range fx.SealKeys {
		importKey(t, k, sealLabel(v), pkcs11.CKK_AES, mustHex(t, key))
	}
	return k, fx
}

// TestSealedByMainStillOpens: sealed credentials already in raft state were
// sealed by main's raw PKCS#11 code. After the move to crypto11 they must
// still open, under the same names and versions only, and the MAC (the
// gateway's session key, DLP tokens) must give the same bytes, or every
// stored credential, agent session and DLP token would break on upgrade.
func TestSealedByMainStillOpens(t *testing.T) {
	k, fx := openFixtureKeystore(t)
	ctx := ctxT(t)
	for _, c := range fx.Sealed {
		sealed := mustHex(t, c.Sealed)
		got, err := k.Unseal(ctx, c.Name, c.SecretVersion, sealed)
		if err != nil {
			t.Fatalf("%s v%d, sealed by main, does not open: %v", c.Name, c.SecretVersion, err)
		}
		if string(got) != c.Plaintext {
			t.Fatalf("%s v%d, sealed by main, opens to %d other bytes", c.Name, c.SecretVersion, len(got))
		}
		if _, err := k.Unseal(ctx, c.Name, c.SecretVersion+1, sealed); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s sealed by main opened under another secret version: %v", c.Name, err)
		}
		if _, err := k.Unseal(ctx, c.Name+"x", c.SecretVersion, sealed); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s sealed by main opened under another name: %v", c.Name, err)
		}
	}
	for _, c := range fx.MACs {
		got, err := k.MAC(ctx, []byte(c.Data))
		if err != nil {
			t.Fatal(err)
		}
		if want := mustHex(t, c.MAC); !bytes.Equal(got, want) {
			t.Fatalf("MAC of %d bytes = %x; main gives %x", len(c.Data), got, want)
		}
	}
}

// TestSealOpensOnMain: during a rolling upgrade a node still on main's code
// must open what an upgraded node seals. Main's code is plain AES-256-GCM
// with the layout of sealed.go; this checks the new Seal's output against an
// independent reading of that layout with the standard library, and the MAC
// against crypto/hmac.
func TestSealOpensOnMain(t *testing.T) {
	k, fx := openFixtureKeystore(t)
	ctx := ctxT(t)
	for _, size := range []int{0, 1, 64, 4096, 100 << 10} {
		pt := make([]byte, size)
		_, _ = rand.Read(pt)
		name := fmt.Sprintf("upstream/new/%d", size)
		sealed, err := k.Seal(ctx, name, 9, pt)
		if err != nil {
			t.Fatalf("seal %d bytes: %v", size, err)
		}
		if got := openLikeMain(t, fx, name, 9, sealed); !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes sealed now open on main's format to %d other bytes", size, len(got))
		}
	}
	macKey := mustHex(t, fx.MACKey)
	for _, in := range [][]byte{nil, []byte("portcullis/session-key/v1"), bytes.Repeat([]byte{0xa5}, 5000)} {
		got, err := k.MAC(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		h := hmac.New(sha256.New, macKey)
		h.Write(in)
		if want := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("MAC of %d bytes = %x; HMAC-SHA256 gives %x", len(in), got, want)
		}
	}
}

// openLikeMain decodes and opens sealed as main's format defines it, without
// this package's parser or AAD builder.
func openLikeMain(t *testing.T, fx compatFixture, name string, secretVersion uint64, sealed []byte) []byte {
	t.Helper()
	if len(sealed) < 6+12+16 || sealed[0] != 1 || sealed[5] != 12 {
		t.Fatalf("sealed header %x is not format 1 with a 12-byte nonce", sealed[:min(len(sealed), 6)])
	}
	kv := binary.BigEndian.Uint32(sealed[1:5])
	if kv != 2 {
		t.Fatalf("sealed under key version %d, want the current one, 2", kv)
	}
	block, err := aes.NewCipher(mustHex(t, fx.SealKeys[kv]))
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("portcullis/secret\x00\x01")
	ad = binary.BigEndian.AppendUint32(ad, kv)
	ad = binary.BigEndian.AppendUint64(ad, secretVersion)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(name)))
	ad = append(ad, name...)
	pt, err := gcm.Open(nil, sealed[6:18], sealed[18:], ad)
	if err != nil {
		t.Fatalf("%s does not open as main's format: %v", name, err)
	}
	return pt
}
