// Package policy compiles the control state into default-deny decisions:
// may persona P call tool T of upstream U with these arguments, read this
// resource, get this prompt — and if not, why not.
//
// Compile runs once per state change, off the hot path. The compiled Set is
// immutable; decisions read it without locks and, on the allow path, without
// allocating. A Persona's role is the union of its skills: a call is allowed
// when at least one grant matching the tool accepts the arguments.
//
// Checks are strict where a server could read the arguments differently
// from the policy: a constrained name that also arrives in another letter
// case is refused (case-insensitive binders would take either), and notIn
// refuses lists and objects rather than letting them pass as "not one of"
// the forbidden scalars.
package policy
