package audit

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Checkpoint vouches for a prefix of one segment: its first Records records
// end in chain hash Head. Final marks the checkpoint written when the
// segment was closed (nothing may follow it). Sig is an ECDSA P-256
// signature (ASN.1, base64) over signedBytes by the key whose id is Key;
// both are empty when the node has no HSM.
type Checkpoint struct {
	Segment uint64 `json:"segment"`
	Records int    `json:"records"`
	LastSeq uint64 `json:"lastSeq"`
	Head    string `json:"head"`
	// Header is the hex SHA-256 of the segment's header (magic and
	// header frame), which the record chain does not cover.
	Header string `json:"header"`
	Final  bool   `json:"final,omitempty"`
	Time   string `json:"time"`
	Node   string `json:"node,omitempty"`
	Key    string `json:"key,omitempty"`
	Sig    string `json:"sig,omitempty"`
}

// signedBytes is what a checkpoint's signature covers.
func (c *Checkpoint) signedBytes() []byte {
	return []byte("portcullis-audit-checkpoint/v1\n" + strconv.FormatUint(c.Segment, 10) + "\n" +
		strconv.Itoa(c.Records) + "\n" + strconv.FormatUint(c.LastSeq, 10) + "\n" + c.Head + "\n" + c.Header + "\n" +
		strconv.FormatBool(c.Final) + "\n" + c.Time + "\n" + c.Node + "\n" + c.Key + "\n")
}

func (c *Checkpoint) sign(s crypto.Signer, keyID string) (err error) {
	c.Key = keyID
	c.Sig, err = signBytes(s, c.signedBytes())
	if err != nil {
		return fmt.Errorf("sign checkpoint: %w", err)
	}
	return nil
}

// verify checks c's signature against keys (by key id).
func (c *Checkpoint) verify(keys map[string]*ecdsa.PublicKey) error {
	return verifyBytes(keys, c.Key, c.Sig, c.signedBytes())
}

// signBytes signs SHA-256(b) with s and returns the base64 signature:
// checkpoints and retention markers are signed this way.
func signBytes(s crypto.Signer, b []byte) (string, error) {
	d := sha256.Sum256(b)
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verifyBytes checks a base64 signature sig of b by the key keyID of keys.
func verifyBytes(keys map[string]*ecdsa.PublicKey, keyID, sig string, b []byte) error {
	if sig == "" {
		return errors.New("unsigned")
	}
	k, ok := keys[keyID]
	if !ok {
		return fmt.Errorf("signed by key %s, which is not the trail's public key (another key signed it)", keyID)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	d := sha256.Sum256(b)
	if !ecdsa.VerifyASN1(k, d[:], raw) {
		return errors.New("signature does not verify with the public key (altered, or signed by another key)")
	}
	return nil
}

// checkpointLine is one parsed line of checkpoints.log.
type checkpointLine struct {
	Line int
	Checkpoint
}

// parseCheckpoints parses checkpoints.log: one JSON checkpoint per line. A
// line that does not parse is returned in bad (with its number) and
// skipped; torn is set when the file ends without a newline (a crash
// mid-append leaves that).
func parseCheckpoints(data []byte) (cps []checkpointLine, bad []error, torn bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal(line, &c); err != nil {
			bad = append(bad, fmt.Errorf("%s line %d: %w", ckptFile, n, err))
			continue
		}
		if _, err := hex.DecodeString(c.Head); err != nil || len(c.Head) != 2*hashSize || len(c.Header) != 2*hashSize || c.Segment == 0 || c.Records < 0 {
			bad = append(bad, fmt.Errorf("%s line %d: not a checkpoint (segment %d, records %d, head %q)", ckptFile, n, c.Segment, c.Records, c.Head))
			continue
		}
		cps = append(cps, checkpointLine{Line: n, Checkpoint: c})
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, fmt.Errorf("%s line %d: %w", ckptFile, n+1, err))
	}
	torn = len(data) > 0 && data[len(data)-1] != '\n'
	return cps, bad, torn
}

// KeyID names a public key: the first 8 bytes of SHA-256 of its PKIX DER,
// in hex.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:8]), nil
}

// EncodePublicKey returns pub as a PEM "PUBLIC KEY" block.
func EncodePublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKeys reads every ECDSA "PUBLIC KEY" PEM block in data.
func ParsePublicKeys(data []byte) ([]*ecdsa.PublicKey, error) {
	var out []*ecdsa.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: %T, want ECDSA", k)
		}
		out = append(out, ek)
	}
	if len(out) == 0 {
		return nil, errors.New("public key: no PEM PUBLIC KEY block")
	}
	return out, nil
}

// ReadPublicKeys reads a PEM file of audit public keys.
func ReadPublicKeys(file string) ([]*ecdsa.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	ks, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ks, nil
}
