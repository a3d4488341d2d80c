package xdp

// Reason says why a packet was passed or dropped. The numbers are the index
// of the kernel's per-CPU counters (enum reason in bpf/xdp.c).
type Reason uint32

// Reasons, in counter order.
const (
	ReasonPass Reason = iota
	ReasonGlobalDeny
	ReasonCIDR
	ReasonCountry
	ReasonPin
	ReasonMalformed
	numReasons
)

var reasonNames = [...]string{"pass", "global_deny", "cidr", "country", "pin", "malformed"}

// Reasons lists every reason in counter order.
func Reasons() []Reason {
	r := make([]Reason, numReasons)
	for i := range r {
		r[i] = Reason(i)
	}
	return r
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Verdict is what the datapath does with a packet.
type Verdict uint8

// Verdicts.
const (
	Pass Verdict = iota
	Drop
)

func (v Verdict) String() string {
	if v == Pass {
		return "pass"
	}
	return "drop"
}
