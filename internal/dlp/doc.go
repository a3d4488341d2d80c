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
// words near the value and with the JSON key. A CSV or TSV row's context
// is also its column's header (column.go), and keyword detectors read the
// column below a header that names them. A context word may be a two-word
// phrase ("tax file"), or weak (it names several types and raises less);
// a keyword written as two words (security_code, expiry-date) matches the
// one-word keyword. A JSON number in exponent form is scanned as the
// integer it spells (4.111111111111111e+15).
//
// Evasions (normalize.go, decode.go). A value written to slip past a
// byte-oriented filter is folded into the form the detectors read, with an
// offset map back to the original bytes, so a finding covers exactly what
// was written and redaction rewrites that: decimal digits of any Unicode
// script (full-width, Arabic-Indic, Persian, Devanagari, …) and full-width
// ASCII become ASCII; NBSP and the other Unicode spaces, Unicode hyphens
// and dots become ' ', '-' and '.'; zero-width characters and soft hyphens
// are dropped; a line break or tab between digit groups and a '+' between
// value groups (form encoding) become a space; %XX escapes (%-encoded
// UTF-8 too) and HTML entities (numeric, and the named ones for spaces,
// punctuation and markup) are decoded. Mask and tokenize work on the
// normalised value, so "４１１１ …" and "4111 …" get the same token. Runs of
// base64 (either alphabet, padded or not) or hex of 16 to 65,536
// characters are decoded and scanned, two levels deep at most (base64 of
// base64), when the decoded bytes are printable UTF-8 text; a finding
// inside is reported on the whole run, which redact and mask replace.
// Object keys are scanned like values (a card number used as a key is
// found; paths show such a key as ["[REDACTED:card-visa]"]).
//
// Clean text pays almost nothing for this. Normalisation runs only when the
// single pass met a byte that can start one of these forms (a non-ASCII
// byte, "%XX", "&…;", a '+' between groups, a line break between digit
// groups), found by the same table lookup that finds punctuation triggers.
// A word starts an encoded-run candidate only if it is long or followed by
// '+', '/', '-' or '_' not at a 4-character boundary, and the candidate is
// dropped without decoding when it cannot be the encoding of text (its
// first byte or first quantum decodes to a control or continuation byte, a
// separator starts a quantum, or it mixes the two base64 alphabets): a
// UUID, a date, a URL path or a snake_case name ends there. JSON strings
// learn whether they are lower-case prose while they are parsed, so prose
// values and keys are skipped without a second pass.
//
// An Engine applies a Policy (per Persona rules: categories or detectors,
// direction, action) to a JSON document and returns a rewritten, still valid
// document and a Verdict. Actions are log, mask, redact, tokenize and block.
// A Taint tracker remembers keyed fingerprints of sensitive values a session
// received and refuses flows that the upstream environment/egress rules forbid.
package dlp
