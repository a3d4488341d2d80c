// Package policy compiles the control state into default-deny decisions:
// may persona P call tool T of upstream U with these arguments, read this
// resource, get this prompt — and if not, why not.
//
// Compile runs once per state change, off the hot path. The compiled Set is
// immutable; decisions read it without locks and, on the allow path, without
// allocating. A Persona's role is the union of its skills: a call is allowed
// when at least one grant matching the tool accepts the arguments.
package policy
