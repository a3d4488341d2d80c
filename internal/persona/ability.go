package persona

import (
	"fmt"
	"strings"
)

// Ability is a set of kinds of effect a tool can have or a job description
// can ask for. The zero value is the empty set.
type Ability uint8

// The abilities, from harmless to dangerous. Read is always implied by a
// skill's relevance; every other ability must be asked for.
const (
	Read    Ability = 1 << iota // look at data without changing it
	Write                       // create or change data
	Delete                      // remove or destroy data
	Send                        // communicate outside: email, chat, invitations, payments
	Execute                     // run, deploy, start or stop things
	Admin                       // change who may do what: roles, permissions, secrets

	// Mutating is every ability but Read.
	Mutating = Write | Delete | Send | Execute | Admin
)

var abilityNames = []struct {
	a    Ability
	name string
}{{Read, "read"}, {Write, "write"}, {Delete, "delete"}, {Send, "send"}, {Execute, "execute"}, {Admin, "admin"}}

// Has reports whether every ability of b is in a.
func (a Ability) Has(b Ability) bool { return a&b == b }

// Names lists the abilities of the set, in the order read, write, delete,
// send, execute, admin.
func (a Ability) Names() []string {
	var out []string
	for _, n := range abilityNames {
		if a&n.a != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// String renders the set as "read+write"; the empty set is "none".
func (a Ability) String() string {
	if a == 0 {
		return "none"
	}
	return strings.Join(a.Names(), "+")
}

// MarshalText renders the set like String, so JSON shows "read+write".
func (a Ability) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses what MarshalText writes.
func (a *Ability) UnmarshalText(b []byte) error {
	v, err := ParseAbility(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseAbility reads a set written as names joined by '+' or ','
// ("read+write", "send"); "none" or "" is the empty set.
func ParseAbility(s string) (Ability, error) {
	var out Ability
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return 0, nil
	}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' || r == ' ' }) {
		found := false
		for _, n := range abilityNames {
			if strings.EqualFold(part, n.name) {
				out |= n.a
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown ability %q (want read, write, delete, send, execute or admin)", part)
		}
	}
	return out, nil
}
