package gateway

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// session is what a sealed Mcp-Session-Id carries. Nothing else about an
// agent's session lives on a node, so any node holding the key continues it.
type session struct {
	Persona string          `json:"p"`
	Agent   string          `json:"a"`
	KeyID   string          `json:"k"`
	Rev     string          `json:"v"`
	Client  json.RawMessage `json:"ci,omitempty"` // clientInfo
	Caps    json.RawMessage `json:"cc,omitempty"` // client capabilities
	Nonce   string          `json:"n"`            // identifies the session (revocation, cancellation)
	Issued  int64           `json:"t"`            // unix seconds
}

const (
	sessionAAD     = "portcullis/session/v1"
	maxSessionID   = 4096
	maxSessionCaps = 2048
)

// Session handle errors.
var (
	errSessionMalformed = errors.New("session id is malformed")
	errSessionForged    = errors.New("session id does not verify")
	errSessionExpired   = errors.New("session expired")
	errSessionRevoked   = errors.New("session was terminated")
)

type sealer struct {
	seal  cipher.AEAD
	opens []cipher.AEAD
}

func newSealer(key []byte, previous [][]byte) (*sealer, error) {
	s := &sealer{}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) != 32 {
			return nil, fmt.Errorf("session key %d: need 32 bytes, got %d", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i, err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i, err)
		}
		if i == 0 {
			s.seal = a
		}
		s.opens = append(s.opens, a)
	}
	return s, nil
}

func (s *sealer) sealBytes(plain []byte, aad string) string {
	nonce := make([]byte, s.seal.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.seal.Seal(nonce, nonce, plain, []byte(aad))
	return base64.RawURLEncoding.EncodeToString(out)
}

func (s *sealer) openBytes(text, aad string) ([]byte, error) {
	if len(text) == 0 || len(text) > maxSessionID*4 {
		return nil, errSessionMalformed
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) < s.seal.NonceSize()+s.seal.Overhead() {
		return nil, errSessionMalformed
	}
	for _, a := range s.opens {
		n := a.NonceSize()
		if plain, err := a.Open(nil, raw[:n], raw[n:], []byte(aad)); err == nil {
			return plain, nil
		}
	}
	return nil, errSessionForged
}

func (s *sealer) sealSession(st *session) string {
	if len(st.Caps) > maxSessionCaps {
		st.Caps = summarizeCaps(st.Caps)
	}
	if len(st.Client) > 512 {
		st.Client = nil
	}
	b, _ := json.Marshal(st)
	return s.sealBytes(b, sessionAAD)
}

func (s *sealer) openSession(id string) (*session, error) {
	if len(id) > maxSessionID {
		return nil, errSessionMalformed
	}
	plain, err := s.openBytes(id, sessionAAD)
	if err != nil {
		return nil, err
	}
	var st session
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, errSessionMalformed
	}
	return &st, nil
}

// summarizeCaps keeps only the capabilities the gateway acts on.
func summarizeCaps(caps json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(caps, &m) != nil {
		return json.RawMessage("{}")
	}
	out := map[string]json.RawMessage{}
	for _, k := range []string{"sampling", "elicitation", "roots"} {
		if _, ok := m[k]; ok {
			out[k] = json.RawMessage("{}")
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// revocations remembers sessions ended with DELETE on this node until they
// would have expired anyway.
type revocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (r *revocations) add(nonce string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]time.Time{}
	}
	now := time.Now()
	for k, t := range r.m {
		if now.After(t) {
			delete(r.m, k)
		}
	}
	r.m[nonce] = until
}

func (r *revocations) has(nonce string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[nonce]
	return ok
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
