// Package behaviourqa replays agent behaviour through a real node (the
// built binary, real go-sdk upstreams): read-then-exfiltrate against a
// SequenceRule, a runaway agent against the default protections (where it
// is stopped, what each refused call then costs, `portcullis agent
// release`), a held call approved with `portcullis approvals`, and a
// normal workload whose false-positive figure it prints.
package behaviourqa
