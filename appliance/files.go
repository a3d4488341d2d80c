package appliance

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// adminTokenPrefix marks admin tokens so that secret scanners (and DLP)
// recognise a leaked one.
const adminTokenPrefix = "pcadm_"

// loadOrCreateToken reads the admin token from path, or creates the file
// (mode 0600, never overwriting) with a new random token. An existing file
// that others can read is refused, as ssh refuses such a key.
func loadOrCreateToken(path string) (token string, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s is accessible by other users (mode %04o); chmod 600 it", path, fi.Mode().Perm())
		}
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", false, fmt.Errorf("%s holds no usable token (at least 16 characters)", path)
		}
		return t, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	token = adminTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := writeNew(path, token+"\n"); err != nil {
		return "", false, err
	}
	return token, true, nil
}

// loadOrCreateNodeID returns the node id stored at path, creating one on
// first start. Raft needs the id to stay the same across restarts.
func loadOrCreateNodeID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("%s is empty", path)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := "node-" + hex.EncodeToString(raw[:])
	if err := writeNew(path, id+"\n"); err != nil {
		return "", err
	}
	return id, nil
}

// writeNew creates path with mode 0600 and content; it fails if path exists.
// The content is written to a temporary file first, so a crash never leaves
// a half-written file behind.
func writeNew(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link fails if path exists, unlike Rename.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// loadOrCreateKey returns the 32-byte key stored hex-encoded at path,
// creating it (0600) on first start.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s does not hold a 32-byte hex key", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := writeNew(path, hex.EncodeToString(k)+"\n"); err != nil {
		return nil, err
	}
	return k, nil
}
