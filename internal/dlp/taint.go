package dlp

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
)

// Environment of an upstream.
type Environment string

// Environments, least to most sensitive.
const (
	Dev     Environment = "dev"
	Staging Environment = "staging"
	Prod    Environment = "prod"
)

var envRank = map[Environment]int{Dev: 1, Staging: 2, Prod: 3}

// Egress says whether an upstream is inside the organisation.
type Egress string

// Egress values.
const (
	Internal Egress = "internal"
	External Egress = "external"
)

// Upstream is the data-flow view of an upstream: its name, environment and
// egress (state.Upstream carries the same fields).
type Upstream struct {
	Name        string
	Environment Environment
	Egress      Egress
}

// FlowError explains a refused data flow without revealing the value.
type FlowError struct {
	Detector    string
	From, To    string
	Environment [2]Environment // from, to
	External    bool
}

func (e *FlowError) Error() string {
	if e.External {
		return fmt.Sprintf("dlp: %s value received from upstream %q may not be sent to external upstream %q", e.Detector, e.From, e.To)
	}
	return fmt.Sprintf("dlp: %s value from %s upstream %q may not flow to %s upstream %q", e.Detector, e.Environment[0], e.From, e.Environment[1], e.To)
}

// ErrFlow matches every *FlowError with errors.Is.
var ErrFlow = errors.New("dlp: forbidden data flow")

// Is reports ErrFlow.
func (e *FlowError) Is(target error) bool { return target == ErrFlow }

// TaintConfig configures a Taint tracker.
type TaintConfig struct {
	MAC MAC // keys the fingerprints; required
	// MaxValuesPerSession bounds memory per session (default 4096; the
	// oldest fingerprints are forgotten first).
	MaxValuesPerSession int
	// MaxSessions bounds the number of sessions tracked (default 65536;
	// least recently used sessions are forgotten first).
	MaxSessions int
	// OnRecord, if set, is told each fingerprint Record learns (or whose
	// origin becomes more sensitive), so that other nodes can Import it. It
	// runs on the recording request's goroutine, without locks held: it
	// must not block.
	OnRecord func(session string, fp [16]byte, from Upstream, detector string)
}

// Taint remembers keyed fingerprints (never the values) of the sensitive
// values each session received from each upstream, and refuses requests
// that would carry them where the rules forbid: data never flows to an
// environment less sensitive than the one it came from (prod → staging/dev,
// staging → dev), and sensitive data never goes to an external upstream
// other than the one it came from (an unset egress counts as internal). It
// is safe for concurrent use.
type Taint struct {
	mac         MAC
	maxValues   int
	maxSessions int
	onRecord    func(string, [16]byte, Upstream, string)

	mu       sync.Mutex
	sessions map[string]*list.Element // of *taintSession
	lru      *list.List
}

type taintSession struct {
	id     string
	values map[[16]byte]taintOrigin
	order  [][16]byte
}

type taintOrigin struct {
	upstream string
	env      Environment
	detector string
}

// NewTaint builds a tracker.
func NewTaint(cfg TaintConfig) (*Taint, error) {
	if cfg.MAC == nil {
		return nil, errors.New("dlp: taint needs a MAC")
	}
	t := &Taint{mac: cfg.MAC, maxValues: cfg.MaxValuesPerSession, maxSessions: cfg.MaxSessions, onRecord: cfg.OnRecord, sessions: map[string]*list.Element{}, lru: list.New()}
	if t.maxValues <= 0 {
		t.maxValues = 4096
	}
	if t.maxSessions <= 0 {
		t.maxSessions = 65536
	}
	return t, nil
}

func (t *Taint) fingerprint(value []byte) [16]byte {
	var fp [16]byte
	copy(fp[:], t.mac.MAC(fingerprintInput("taint", value)))
	return fp
}

// Record notes that session received value (found by detector) from up.
func (t *Taint) Record(session string, from Upstream, detector string, value []byte) {
	fp := t.fingerprint(value)
	if t.add(session, fp, from, detector) && t.onRecord != nil {
		t.onRecord(session, fp, from, detector)
	}
}

// Import adds a fingerprint another node recorded (see
// TaintConfig.OnRecord); the same bounds apply.
func (t *Taint) Import(session string, fp [16]byte, from Upstream, detector string) {
	t.add(session, fp, from, detector)
}

// add stores fp for session; it reports whether that was news.
func (t *Taint) add(session string, fp [16]byte, from Upstream, detector string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.sessions[session]
	if !ok {
		if t.lru.Len() >= t.maxSessions {
			old := t.lru.Back()
			t.lru.Remove(old)
			delete(t.sessions, old.Value.(*taintSession).id)
		}
		el = t.lru.PushFront(&taintSession{id: session, values: map[[16]byte]taintOrigin{}})
		t.sessions[session] = el
	}
	t.lru.MoveToFront(el)
	s := el.Value.(*taintSession)
	o, seen := s.values[fp]
	if !seen {
		if len(s.order) >= t.maxValues {
			delete(s.values, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, fp)
	}
	// keep the most sensitive origin
	if seen && envRank[from.Environment] < envRank[o.env] || seen && o == (taintOrigin{upstream: from.Name, env: from.Environment, detector: detector}) {
		return false
	}
	s.values[fp] = taintOrigin{upstream: from.Name, env: from.Environment, detector: detector}
	return true
}

// Check returns a *FlowError when sending value to upstream to is forbidden
// for session.
func (t *Taint) Check(session string, to Upstream, detector string, value []byte) error {
	fp := t.fingerprint(value)
	t.mu.Lock()
	el, ok := t.sessions[session]
	var o taintOrigin
	var found bool
	if ok {
		o, found = el.Value.(*taintSession).values[fp]
	}
	t.mu.Unlock()
	if !found {
		return nil
	}
	if to.Egress == External && o.upstream != to.Name {
		return &FlowError{Detector: o.detector, From: o.upstream, To: to.Name, External: true, Environment: [2]Environment{o.env, to.Environment}}
	}
	if src := envRank[o.env]; src > 0 && envRank[to.Environment] < src {
		return &FlowError{Detector: o.detector, From: o.upstream, To: to.Name, Environment: [2]Environment{o.env, to.Environment}}
	}
	return nil
}

// Forget drops what is known about a session (on session end).
func (t *Taint) Forget(session string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.sessions[session]; ok {
		t.lru.Remove(el)
		delete(t.sessions, session)
	}
}
