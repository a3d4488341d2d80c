package state

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Node describes the node that validates a proposal: facts a document must
// fit that the replicated state does not hold. The zero value checks
// nothing node-specific. (In a cluster the proposing node's facts apply;
// nodes are expected to share their port layout.)
type Node struct {
	// Listeners are the addresses this node serves itself (gateway, admin
	// API, raft), by name; a persona endpoint cannot take one of them.
	Listeners []Listener
	// LoopbackOnly is set on a development node, which serves persona
	// endpoints on loopback addresses only.
	LoopbackOnly bool
}

// Listener is one address a node serves itself, e.g. {"gateway", ":8443"}.
type Listener struct {
	Name string
	Addr string // HOST:PORT; an empty host or "localhost" allowed
}

// Validate checks cmd on its own, as the node described by node proposes
// it, and returns a copy in the current command format, ready to be
// encoded and proposed. Documents come back normalized (as EncodeDocument
// writes them). It does not look at the state; Store.Prepare does both.
func Validate(cmd *Command, node Node) (*Command, error) {
	out := *cmd
	out.V = V1
	if cmd.Op == OpAuditBatch {
		out.V = V3
		if err := checkAuditBatch(cmd.Audit); err != nil {
			return nil, err
		}
		return &out, nil
	}
	if clusterOp(cmd.Op) {
		out.V = V2
		if err := validateClusterCommand(cmd); err != nil {
			return nil, err
		}
		return &out, nil
	}
	if behaviourOp(cmd.Op) {
		out.V = V3
		if err := validateBehaviourCommand(cmd); err != nil {
			return nil, err
		}
		return &out, nil
	}
	switch cmd.Op {
	case OpApply:
		objs, err := decodeV0Documents(cmd.Documents)
		if err != nil {
			return nil, err
		}
		var errs []*FieldError
		out.Documents = make([]Document, len(objs))
		for i, o := range objs {
			for _, fe := range node.check(o) {
				fe.Doc, fe.Kind, fe.Name = i+1, o.Kind(), o.Metadata().Name
				errs = append(errs, fe)
			}
			out.Documents[i] = EncodeDocument(o)
			if o.Kind() == KindSequenceRule {
				out.V = V3
			}
		}
		if len(errs) > 0 {
			return nil, &ValidationError{Errors: errs}
		}
	case OpDelete, OpKeyRevoke, OpSecretDelete:
	case OpKeyCreate:
		k := cmd.Key
		if k == nil || k.ID == "" || len(k.Hash) != 32 {
			return nil, malformed("key.create: malformed key")
		}
		if fe := checkPinIP(k.PinIP); fe != nil {
			return nil, &ValidationError{Errors: []*FieldError{fe}}
		}
	case OpSecretPut:
		if err := checkSecret(cmd.Op, cmd.Secret, true); err != nil {
			return nil, err
		}
	case OpSecretReseal:
		if err := checkSecret(cmd.Op, cmd.Secret, false); err != nil {
			return nil, err
		}
	case OpGeoIPImport:
		if err := checkGeoIP(cmd.GeoIP); err != nil {
			return nil, err
		}
	default:
		return nil, malformed("unknown command %q", cmd.Op)
	}
	return &out, nil
}

// Prepare validates cmd (Validate) and checks it against the current state,
// without changing anything. It returns the command to propose and what
// applying it now would do; an error is the refusal Apply would give. The
// admin API calls it for every write, so that nothing invalid reaches the
// raft log; Apply then only re-checks what another write may have changed
// meanwhile. Safe from any goroutine.
func (s *Store) Prepare(cmd *Command, node Node) (*Command, *Result, error) {
	out, err := Validate(cmd, node)
	if err != nil {
		return nil, nil, err
	}
	// Apply sees the command only after its trip through the log; check the
	// same bytes it will decode.
	b, err := out.Encode()
	if err != nil {
		return nil, nil, fmt.Errorf("encode command: %w", err)
	}
	committed, err := DecodeCommand(b)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare: %w", err)
	}
	cur := s.cur.Load()
	if committed.Op == OpSessionEvents || committed.Op == OpAuditBatch {
		return out, &Result{Index: cur.Index + 1}, nil // nothing in them depends on the state
	}
	_, res, err := applyV1(cur, committed, cur.Index+1)
	if err != nil {
		return nil, nil, err
	}
	return out, res, nil
}

func checkPinIP(pin string) *FieldError {
	if pin == "" {
		return nil
	}
	if _, err := ParseCIDR(pin); err != nil || strings.Contains(pin, "/") {
		return &FieldError{Field: "pinIP", Msg: fmt.Sprintf("%q is not an IP address", pin)}
	}
	return nil
}

func checkSecret(op Op, sec *Secret, checkName bool) error {
	if sec == nil || len(sec.Sealed) == 0 {
		return malformed("%s: malformed secret", op)
	}
	if checkName {
		if err := ValidateName(sec.Name); err != nil {
			return &ValidationError{Errors: []*FieldError{{Field: "name", Msg: err.Error()}}}
		}
	}
	return nil
}

func checkGeoIP(blob []byte) error {
	switch {
	case len(blob) > MaxGeoIPBytes:
		return malformed("geoip.import: table of %d bytes exceeds %d", len(blob), MaxGeoIPBytes)
	case !bytes.HasPrefix(blob, []byte(geoIPMagic)):
		return malformed("geoip.import: not a serialized GeoIP table")
	}
	return nil
}

// check reports what keeps o from working on this node: a persona
// endpoint on one of the node's own listeners, or off loopback on a
// development node.
func (n Node) check(o Object) []*FieldError {
	p, ok := o.(*Persona)
	if !ok || p.Endpoint == nil {
		return nil
	}
	const field = "spec.endpoint.listen"
	mine, err := netip.ParseAddrPort(p.Endpoint.Listen)
	if err != nil {
		return nil // validateObject reported it
	}
	a := mine.Addr().Unmap()
	if n.LoopbackOnly && !a.IsLoopback() {
		return []*FieldError{{Field: field, Msg: fmt.Sprintf("%s: this is a development node, which serves persona endpoints on loopback only (e.g. 127.0.0.1:%d)", p.Endpoint.Listen, mine.Port())}}
	}
	for _, l := range n.Listeners {
		for _, theirs := range listenerAddrs(l.Addr) {
			if theirs.Port() != mine.Port() {
				continue
			}
			b := theirs.Addr().Unmap()
			if a == b || (a.Is4() == b.Is4() && (a.IsUnspecified() || b.IsUnspecified())) {
				return []*FieldError{{Field: field, Msg: fmt.Sprintf("%s would take this node's %s listener (%s); choose another port", p.Endpoint.Listen, l.Name, l.Addr)}}
			}
		}
	}
	return nil
}

// listenerAddrs resolves a node listener's HOST:PORT without DNS: an empty
// host is both unspecified addresses, localhost both loopback ones.
func listenerAddrs(hostport string) []netip.AddrPort {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	var pn uint16
	if _, err := fmt.Sscan(port, &pn); err != nil {
		return nil
	}
	var addrs []netip.Addr
	switch host {
	case "":
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	case "localhost":
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil
		}
		addrs = []netip.Addr{a}
	}
	out := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		out[i] = netip.AddrPortFrom(a, pn)
	}
	return out
}
