package hsm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/pkcs11"
)

// DevTokenLabel is the label of the token dev mode creates.
const DevTokenLabel = "portcullis-dev"

// InitToken initializes a free slot of the module as a token labelled label
// with the given SO and user PINs (C_InitToken, then C_InitPIN as the SO).
// It fails if a token with that label exists. The PINs travel only through
// this call, never through argv.
func InitToken(modulePath, label string, soPIN, userPIN []byte) error {
	if modulePath == "" {
		modulePath = DefaultModulePath()
	}
	if len(label) == 0 || len(label) > 32 {
		return fmt.Errorf("hsm: init token: label %q must be 1 to 32 characters", label)
	}
	if len(soPIN) < 4 || len(userPIN) < 4 {
		return errors.New("hsm: init token: PINs must be at least 4 characters")
	}
	if _, err := os.Stat(modulePath); err != nil {
		return fmt.Errorf("%w: %s", ErrModuleNotFound, modulePath)
	}
	moduleMu.Lock()
	defer moduleMu.Unlock()
	m, err := loadModule(modulePath)
	if err != nil {
		return err
	}
	defer m.close()
	if _, err := m.findSlot(label); err == nil {
		return fmt.Errorf("hsm: init token: a token labelled %q exists", label)
	}
	slots, err := m.p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("hsm: init token: list slots: %w", err)
	}
	free, found := uint(0), false
	for _, s := range slots {
		ti, err := m.p.GetTokenInfo(s)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free, found = s, true
			break
		}
	}
	if !found {
		return errors.New("hsm: init token: the module has no free slot")
	}
	if err := m.p.InitToken(free, string(soPIN), label); err != nil {
		return fmt.Errorf("hsm: init token %q: %w", label, err)
	}
	// SoftHSM moves a freshly initialized token to a new slot id.
	slot, err := m.findSlot(label)
	if err != nil {
		return err
	}
	sh, err := m.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: init token: open session: %w", err)
	}
	defer m.p.CloseSession(sh)
	if err := login(m.p, sh, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("hsm: init token: SO login: %w", err)
	}
	defer m.p.Logout(sh)
	if err := m.p.InitPIN(sh, string(userPIN)); err != nil {
		return fmt.Errorf("hsm: init token: set user PIN: %w", err)
	}
	return nil
}

// DevPaths are the files of the dev-mode token under a data directory.
type DevPaths struct {
	Dir, Conf, Tokens, UserPINFile, SOPINFile string
}

// DevTokenPaths returns where InitDevToken keeps its files.
func DevTokenPaths(dataDir string) DevPaths {
	dir := filepath.Join(dataDir, "hsm")
	return DevPaths{
		Dir:         dir,
		Conf:        filepath.Join(dir, "softhsm2.conf"),
		Tokens:      filepath.Join(dir, "tokens"),
		UserPINFile: filepath.Join(dir, "user.pin"),
		SOPINFile:   filepath.Join(dir, "so.pin"),
	}
}

// SoftHSMConfEnv is the environment variable SoftHSM2 reads its
// configuration file from, once per process (at C_Initialize).
const SoftHSMConfEnv = "SOFTHSM2_CONF"

// ErrSoftHSMConf: SOFTHSM2_CONF does not name the dev token's configuration.
var ErrSoftHSMConf = errors.New("hsm: " + SoftHSMConfEnv + " does not name the dev token's configuration")

// InitDevToken gives dev mode a real HSM: a SoftHSM2 token under
// DATA/hsm with its own softhsm2.conf and random SO and user PINs in 0600
// files. It is idempotent: an existing dev token is reused. The program must
// have pointed SOFTHSM2_CONF at DevTokenPaths(dataDir).Conf before (once,
// before any use of the SoftHSM module: SoftHSM reads it when first
// initialized); otherwise it fails with ErrSoftHSMConf rather than make a
// token in the machine's own SoftHSM configuration. The returned Config
// opens the token.
func InitDevToken(dataDir string) (Config, error) {
	module := DefaultModulePath()
	if module == "" {
		return Config{}, fmt.Errorf("%w: dev mode needs SoftHSM2 (apt install softhsm2)", ErrModuleNotFound)
	}
	p := DevTokenPaths(dataDir)
	if got := os.Getenv(SoftHSMConfEnv); got != p.Conf {
		return Config{}, fmt.Errorf("%w: it is %q, want %q (set it once, before the module is first loaded)", ErrSoftHSMConf, got, p.Conf)
	}
	cfg := Config{ModulePath: module, TokenLabel: DevTokenLabel, PINFile: p.UserPINFile}
	if err := os.MkdirAll(p.Tokens, 0o700); err != nil {
		return Config{}, fmt.Errorf("hsm: dev token: %w", err)
	}
	conf := fmt.Sprintf("# written by portcullis dev mode\ndirectories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", p.Tokens)
	if err := os.WriteFile(p.Conf, []byte(conf), 0o600); err != nil {
		return Config{}, fmt.Errorf("hsm: dev token: %w", err)
	}
	if _, err := os.Stat(p.UserPINFile); err == nil {
		return cfg, nil // initialized before
	}
	so, user, err := randomPIN(), randomPIN(), error(nil)
	defer clear(so)
	defer clear(user)
	if err := os.WriteFile(p.SOPINFile, so, 0o600); err != nil {
		return Config{}, fmt.Errorf("hsm: dev token: %w", err)
	}
	if err = InitToken(module, DevTokenLabel, so, user); err != nil {
		return Config{}, err
	}
	// The user PIN file is written last: its presence marks a finished init.
	if err := os.WriteFile(p.UserPINFile, user, 0o600); err != nil {
		return Config{}, fmt.Errorf("hsm: dev token: %w", err)
	}
	return cfg, nil
}

func randomPIN() []byte {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails on Linux (Go 1.24+ crypto/rand)
	out := []byte(hex.EncodeToString(b))
	clear(b)
	return out
}
