// Package dlp inspects the data that flows through the gateway: tool-call
// arguments on the way to an upstream and results on the way back.
//
// A Scanner finds sensitive values (payment cards, bank accounts, national
// identifiers, health identifiers, credentials, personal data and crypto
// wallet addresses) in plain text, in JSON documents (reporting the JSON path
// and using key names as context) and in streamed bodies. Its cost does not
// grow with the number of detectors: one pass over the input classifies bytes,
// groups digit runs and words, and a shared prefilter (a hashed keyword table,
// a literal-prefix index keyed by the first byte, and length-indexed tables of
// group detectors) selects the few detectors that need a closer look. Every
// detector reads a bounded window, so the scan is linear in the input.
//
// An Engine applies a Policy (per Persona rules: categories or detectors,
// direction, action) to a JSON document and returns a rewritten, still valid
// document and a Verdict. Actions are log, mask, redact, tokenize and block.
// A Taint tracker remembers keyed fingerprints of sensitive values a session
// received and refuses flows that the upstream environment/egress rules forbid.
package dlp
