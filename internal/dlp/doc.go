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
// How the single pass works: a 256-entry class table splits the input into
// words (runs of ASCII letters and digits) and punctuation. At each word
// start a 64K-bit table of the first two bytes decides whether a literal
// prefix (ghp_, AKIA, sk-ant-api03-, eyJ, …) can start there; a second
// bitset on (first two letters, length) decides whether the word can be a
// keyword (cvv, iban, passport, password, …) whose detectors then look a
// bounded distance ahead for their value. Words holding digits grow into
// groups joined by single separators ("4111 1111 1111 1111",
// "123.456.789-09", "GB82 WEST …"), and each candidate span is handed only
// to the group detectors indexed under its alphanumeric length. A few
// punctuation bytes ('@', "://", "-----BEGIN", '~', '%', '=') trigger their
// own parsers after a one-byte precheck. Every parser reads a bounded
// window, long runs are remembered so they are not re-read, and PEM blocks
// stop at the next armor line, so no input drives the scan past linear time.
// Confidence starts from the validator's verdict and moves with context
// words near the value and with the JSON key.
//
// An Engine applies a Policy (per Persona rules: categories or detectors,
// direction, action) to a JSON document and returns a rewritten, still valid
// document and a Verdict. Actions are log, mask, redact, tokenize and block.
// A Taint tracker remembers keyed fingerprints of sensitive values a session
// received and refuses flows that the upstream environment/egress rules forbid.
package dlp
