package hsm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Errors callers can test with errors.Is. Their text never contains a PIN,
// a key or a secret.
var (
	// ErrModuleNotFound: the PKCS#11 module file does not exist or does not load.
	ErrModuleNotFound = errors.New("hsm: PKCS#11 module not found")
	// ErrTokenNotFound: no token with the configured label.
	ErrTokenNotFound = errors.New("hsm: token not found")
	// ErrNoPIN: neither a PIN file nor a PIN environment variable gave a PIN.
	ErrNoPIN = errors.New("hsm: no PIN configured")
	// ErrPINFileMode: the PIN file is readable or writable by users other
	// than its owner.
	ErrPINFileMode = errors.New("hsm: PIN file permissions too open")
	// ErrWrongPIN: the token rejected the PIN.
	ErrWrongPIN = errors.New("hsm: wrong PIN")
	// ErrPINLocked: the token has locked the PIN after too many failures.
	ErrPINLocked = errors.New("hsm: PIN locked")
	// ErrUnavailable: the token does not answer; calls fail closed until the
	// keystore has reconnected by itself.
	ErrUnavailable = errors.New("hsm: unavailable")
	// ErrClosed: the keystore was closed.
	ErrClosed = errors.New("hsm: keystore closed")
	// ErrNoSealingKey: the token holds no sealing key yet (see EnsureKeys, or
	// the join ceremony).
	ErrNoSealingKey = errors.New("hsm: no sealing key")
	// ErrUnknownKeyVersion: a ciphertext names a sealing key version the token
	// does not hold.
	ErrUnknownKeyVersion = errors.New("hsm: unknown sealing key version")
	// ErrMalformed: a sealed secret is not in the Sealed format.
	ErrMalformed = errors.New("hsm: malformed sealed secret")
	// ErrOpen: the ciphertext does not open: tampered, or sealed for another
	// name or version.
	ErrOpen = errors.New("hsm: sealed secret does not open")
	// ErrUntrustedWrappingKey: the public key has not been made a trusted
	// wrapping key by the SO of this token (see TrustWrappingKey).
	ErrUntrustedWrappingKey = errors.New("hsm: wrapping key not trusted by the security officer")
	// ErrNoUnwrapKey: the joining node holds no pending unwrap key.
	ErrNoUnwrapKey = errors.New("hsm: no pending unwrap key (call NewWrappingKeyPair first)")
)

// DefaultMaxSessions bounds the PKCS#11 sessions the keystore opens.
const DefaultMaxSessions = 16

// Config selects and opens a token.
type Config struct {
	// ModulePath is the PKCS#11 module; "" finds SoftHSM2 (DefaultModulePath).
	ModulePath string
	// TokenLabel selects the token.
	TokenLabel string
	// PINFile is a file holding the user PIN (trailing newline ignored).
	// Preferred: it never shows in ps or in the environment of child processes
	// that do not inherit it.
	PINFile string
	// PINEnv names an environment variable holding the user PIN; used when
	// PINFile is empty.
	PINEnv string
	// MaxSessions bounds the PKCS#11 sessions of the hot path; callers beyond
	// it wait (see SessionWait). It bounds each of the keystore's two pools
	// (crypto11's, for seal, unseal and sign, and the raw one, for MAC and
	// the rest), so the token may see up to 2×MaxSessions+2 sessions.
	// Default DefaultMaxSessions; minimum 2.
	MaxSessions int
	// SessionWait is how long a call waits for a free session before failing;
	// default 5s. Seal, unseal and sign wait in crypto11's pool, which does
	// not see the caller's context: a cancelled caller may wait this long.
	SessionWait time.Duration
	// Logger receives connection events; never keys, PINs or plaintext.
	Logger *slog.Logger
}

// modulePaths are where Debian and others install SoftHSM2.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// DefaultModulePath returns the first SoftHSM2 module found on this machine,
// or "" if there is none.
func DefaultModulePath() string {
	for _, p := range modulePaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.ModulePath == "" {
		cfg.ModulePath = DefaultModulePath()
		if cfg.ModulePath == "" {
			return cfg, fmt.Errorf("%w: no module path given and SoftHSM2 is not installed (apt install softhsm2)", ErrModuleNotFound)
		}
	}
	if _, err := os.Stat(cfg.ModulePath); err != nil {
		return cfg, fmt.Errorf("%w: %s", ErrModuleNotFound, cfg.ModulePath)
	}
	if cfg.TokenLabel == "" {
		return cfg, errors.New("hsm: config: token label is empty")
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxSessions < 2 {
		return cfg, fmt.Errorf("hsm: config: MaxSessions %d is below 2", cfg.MaxSessions)
	}
	if cfg.SessionWait <= 0 {
		cfg.SessionWait = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// readPIN returns the user PIN from the file or the environment variable.
func (c *Config) readPIN() ([]byte, error) {
	return readSecretSource(c.PINFile, c.PINEnv)
}

// ReadPINFile reads a PIN (user or SO) from a file, as Open does: the file
// must not be accessible by users other than its owner (ErrPINFileMode),
// and a trailing newline is dropped. The caller clears the result.
func ReadPINFile(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no PIN file given", ErrNoPIN)
	}
	return readSecretSource(path, "")
}

func readSecretSource(file, env string) ([]byte, error) {
	switch {
	case file != "":
		// Like the admin token: a PIN file others can read is refused, so
		// a mistaken chmod is noticed before the PIN is used.
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("hsm: read PIN file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%w: PIN file %s is accessible by other users (mode %04o); chmod 600 it", ErrPINFileMode, file, fi.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("hsm: read PIN file: %w", err)
		}
		b = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: PIN file %s is empty", ErrNoPIN, file)
		}
		return b, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: environment variable %s is unset or empty", ErrNoPIN, env)
		}
		return []byte(v), nil
	}
	return nil, fmt.Errorf("%w: set a PIN file or a PIN environment variable", ErrNoPIN)
}
