package hsm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// moduleMu serializes loading, initializing and finalizing PKCS#11 modules in
// this process: a module is initialized once per process, shared by every
// user of it (crypto11 counts references the same way), and finalized by the
// last one.
var moduleMu sync.Mutex

// module is a raw handle on a PKCS#11 module. owned reports whether this
// handle initialized the library and so must finalize it.
type module struct {
	p     *pkcs11.Ctx
	owned bool
}

// loadModule loads path; the caller holds moduleMu.
func loadModule(path string) (*module, error) {
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("%w: %s does not load as a PKCS#11 module", ErrModuleNotFound, path)
	}
	err := p.Initialize()
	if errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		return &module{p: p}, nil
	}
	if err != nil {
		p.Destroy()
		return nil, fmt.Errorf("hsm: initialize module %s: %w", path, err)
	}
	return &module{p: p, owned: true}, nil
}

// close releases the module; the caller holds moduleMu.
func (m *module) close() {
	if m.owned {
		_ = m.p.Finalize()
	}
	m.p.Destroy()
}

// findSlot returns the slot holding the token labelled label.
func (m *module) findSlot(label string) (uint, error) {
	slots, err := m.p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("hsm: list slots: %w", classify(err))
	}
	var labels []string
	for _, s := range slots {
		ti, err := m.p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if ti.Label == label {
			return s, nil
		}
		labels = append(labels, fmt.Sprintf("%q", ti.Label))
	}
	return 0, fmt.Errorf("%w: no token labelled %q (tokens present: %v)", ErrTokenNotFound, label, labels)
}

// login logs the application into the token as userType, mapping the PIN
// failures to this package's errors. Being logged in already is success.
func login(p *pkcs11.Ctx, sh pkcs11.SessionHandle, userType uint, pin []byte) error {
	return loginError(p.Login(sh, userType, string(pin)))
}

// loginError maps a C_Login result to this package's errors.
func loginError(err error) error {
	switch {
	case err == nil, errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)):
		return nil
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)):
		return ErrWrongPIN
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)):
		return ErrPINLocked
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)):
		return errors.New("hsm: another user type is logged in to this token in this process (PKCS#11 allows one per application); run this step in a separate process")
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_PIN_NOT_INITIALIZED)):
		return errors.New("hsm: the token's user PIN is not initialized")
	}
	return fmt.Errorf("hsm: login: %w", classify(err))
}

// unavailableCodes are the return codes that mean the token, its session or
// the module stopped answering, as opposed to a bad request.
var unavailableCodes = map[pkcs11.Error]bool{
	pkcs11.CKR_DEVICE_ERROR:                 true,
	pkcs11.CKR_DEVICE_REMOVED:               true,
	pkcs11.CKR_DEVICE_MEMORY:                true,
	pkcs11.CKR_TOKEN_NOT_PRESENT:            true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:         true,
	pkcs11.CKR_SESSION_HANDLE_INVALID:       true,
	pkcs11.CKR_SESSION_CLOSED:               true,
	pkcs11.CKR_SLOT_ID_INVALID:              true,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:     true,
	pkcs11.CKR_GENERAL_ERROR:                true,
	pkcs11.CKR_USER_NOT_LOGGED_IN:           true,
	pkcs11.CKR_FUNCTION_FAILED:              true,
	pkcs11.CKR_OBJECT_HANDLE_INVALID:        false, // a stale handle: refresh, not reconnect
	pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED: false,
}

// classify marks token-level failures with ErrUnavailable, keeping the
// PKCS#11 code in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var code pkcs11.Error
	if errors.As(err, &code) && unavailableCodes[code] {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
