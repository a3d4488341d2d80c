package dlp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
)

// charset is a byte membership table.
type charset [256]bool

func mkset(s string) *charset {
	var c charset
	for i := 0; i < len(s); i++ {
		c[s[i]] = true
	}
	return &c
}

// tokSpec is a vendor credential recognised by a literal prefix and a body
// of bounded length drawn from a character set.
type tokSpec struct {
	id, desc string
	prefixes []string
	set      string
	min, max int
	conf     float64
	check    func(tok []byte) bool // optional structural/checksum check
	gen      func(r *rand.Rand) string
	nearFn   func(r *rand.Rand) string
}

func regTok(sp tokSpec) {
	cs := mkset(sp.set)
	dot := cs['.']
	if sp.conf == 0 {
		sp.conf = 0.9
	}
	anchor := func(b []byte, i int, m *runMemo) (int, int, float64) {
		for _, p := range sp.prefixes {
			if !bytes.HasPrefix(b[i:], []byte(p)) {
				continue
			}
			j := i + len(p)
			// the end of the run of body characters; remembered so that
			// prefixes repeated inside one long run are not rescanned
			var k int
			if m.start <= j && j < m.end {
				k = m.end
			} else {
				k = j
				for k < len(b) && cs[b[k]] {
					k++
				}
				m.start, m.end = j, k
			}
			// a token whose alphabet has '.' (GitLab's routable tokens,
			// SendGrid's two parts) never ends in one: the full stop of
			// "GITLAB_TOKEN: glpat-…. Next sentence" is not part of it
			for dot && k > j && b[k-1] == '.' {
				k--
			}
			if k-j < sp.min || k-j > sp.max {
				continue
			}
			if sp.check != nil && !sp.check(b[i:k]) {
				continue
			}
			return i, k, sp.conf
		}
		return 0, 0, 0
	}
	gen := sp.gen
	if gen == nil {
		gen = func(r *rand.Rand) string {
			p := pick(r, sp.prefixes...)
			body := fromSet(r, sp.set, sp.min+r.IntN(min(sp.max, sp.min+20)-sp.min+1))
			if dot && body[len(body)-1] == '.' { // real tokens never end in '.'
				body = body[:len(body)-1] + "x"
			}
			return p + body
		}
	}
	near := sp.nearFn
	if near == nil {
		near = func(r *rand.Rand) string {
			// one character short of the minimum body
			return pick(r, sp.prefixes...) + fromSet(r, sp.set, sp.min-1) + " "
		}
	}
	register(&Detector{
		ID: sp.id, Category: Secrets, Tags: tags(TagSOC2, TagPCI), Description: sp.desc,
		Confidence: sp.conf, prefixes: sp.prefixes, anchorMemo: anchor,
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "token=", "export KEY=", "\"credential\": \"", "using "), gen(r)
		},
		near: near,
	})
}

const setBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func base62(v uint32, width int) string {
	b := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		b[i] = setBase62[v%62]
		v /= 62
	}
	return string(b)
}

// crcToken checks the GitHub/npm token format: 30 random base62 characters
// followed by their CRC32 in 6 base62 digits.
func crcToken(prefixLen int) func(tok []byte) bool {
	return func(tok []byte) bool {
		body := tok[prefixLen:]
		if len(body) != 36 {
			return false
		}
		return base62(crc32.ChecksumIEEE(body[:30]), 6) == string(body[30:])
	}
}

func genCRCToken(r *rand.Rand, prefix string) string {
	p := fromSet(r, setBase62, 30)
	return prefix + p + base62(crc32.ChecksumIEEE([]byte(p)), 6)
}

func shannon(v []byte) float64 {
	var cnt [256]int
	for _, c := range v {
		cnt[c]++
	}
	h := 0.0
	n := float64(len(v))
	for _, k := range cnt {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

func alnumClasses(v []byte) int {
	var u, l, d int
	for _, c := range v {
		switch {
		case isUpper(c):
			u = 1
		case isLower(c):
			l = 1
		case isDigit(c):
			d = 1
		}
	}
	return u + l + d
}

func classes(v []byte) int {
	var u, l, d, o int
	for _, c := range v {
		switch {
		case isUpper(c):
			u = 1
		case isLower(c):
			l = 1
		case isDigit(c):
			d = 1
		default:
			o = 1
		}
	}
	return u + l + d + o
}

var placeholders = map[string]bool{
	"null": true, "none": true, "true": true, "false": true, "password": true, "changeme": true, "secret": true,
	"undefined": true, "redacted": true, "example": true, "xxxxxx": true, "your_password": true, "yourpassword": true,
	"<password>": true, "token": true, "string": true, "required": true, "optional": true,
}

func placeholder(v []byte) bool {
	if len(v) == 0 || bytes.ContainsAny(v[:1], "$<{%*[(") || bytes.HasPrefix(v, []byte("[REDACTED")) {
		return true
	}
	if sameBytes(v) || placeholders[strings.ToLower(string(v))] {
		return true
	}
	return bytes.Contains(v, []byte("(")) || bytes.Contains(v, []byte("..."))
}

func sameBytes(v []byte) bool {
	for _, c := range v {
		if c != v[0] {
			return false
		}
	}
	return true
}

// assignment finds `<keyword> [:=] value` after from and returns the value
// span. needOp requires a ':' or '=' between keyword and value.
func assignment(b []byte, from int, needOp bool) (int, int) {
	p := from
	// allow a short key suffix (password_hash, token_value) up to the operator
	for p < len(b) && p-from < 16 && (isAlnum(b[p]) || b[p] == '_' || b[p] == '-') {
		p++
	}
	op := false
	for p < len(b) && p-from < 24 {
		c := b[p]
		if c == ':' || c == '=' {
			op = true
		} else if c != ' ' && c != '"' && c != '\'' && c != '\\' && c != '\t' && c != '>' {
			break
		}
		p++
	}
	if needOp && !op {
		return 0, 0
	}
	// a value starts here
	return p, valueEnd(b, p)
}

// valueEnd returns the end of a value that starts at s: white space, a
// quote or a delimiter.
func valueEnd(b []byte, s int) int {
	p := s
	for p < len(b) && p-s < 200 {
		c := b[p]
		if c <= ' ' || c == '"' || c == '\'' || c == '\\' || c == ',' || c == ';' || c == '}' || c == '&' || c == '`' {
			break
		}
		p++
	}
	return p
}

func passwordValue(v []byte) float64 {
	if len(v) < 6 || len(v) > 128 || placeholder(v) {
		return 0
	}
	return 0.75
}

// checksumPrefixed lists the checksum-validated token detectors that start
// with a literal prefix (ghp_, gho_, npm_, …); filled at init.
var checksumPrefixed []*Detector

// failsOwnChecksum reports whether v starts with the prefix of a
// checksum-validated token type whose check rejects it: a ghp_ token with
// a bad CRC is mistyped or made up, and a generic detector must not report
// what the specific one refused.
func failsOwnChecksum(v []byte) bool {
	for _, d := range checksumPrefixed {
		for _, p := range d.prefixes {
			if !bytes.HasPrefix(v, []byte(p)) {
				continue
			}
			var conf float64
			if d.anchorMemo != nil {
				m := runMemo{start: -1, end: -1}
				_, _, conf = d.anchorMemo(v, 0, &m)
			} else {
				_, _, conf = d.anchor(v, 0)
			}
			return conf <= 0
		}
	}
	return false
}

func secretValue(v []byte) float64 {
	if len(v) < 16 || len(v) > 200 || placeholder(v) || alnumClasses(v) < 2 || shannon(v) < 3.5 || v[len(v)-1] == ':' || failsOwnChecksum(v) {
		return 0
	}
	if bytes.Contains(v, []byte("://")) {
		return 0
	}
	return 0.7
}

// proseValue finds the value of a keyword in a sentence without an
// operator: "the password on file is X", "your api_secret was X". Up to
// three short lower-case words may stand between the keyword and the verb.
// It returns the value's start, or -1.
func proseValue(b []byte, from int) int {
	p := from
	for words := 0; words < 4; words++ {
		if p >= len(b) || b[p] != ' ' {
			return -1
		}
		p++
		ws := p
		for p < len(b) && p-ws <= 12 && isLower(b[p]) {
			p++
		}
		if p == ws || p-ws > 12 {
			return -1
		}
		switch string(b[ws:p]) {
		case "is", "was", "are", "were":
			if p+1 < len(b) && b[p] == ' ' && (b[p+1] == '"' || b[p+1] == '\'' || b[p+1] > ' ') {
				return p + 1
			}
			return -1
		}
	}
	return -1
}

// proseSecret reports whether v reads as a secret rather than a word
// ("the password is required", "the password is Expired"): it holds a
// digit or a symbol, or irregular mixed case (three capitals or more).
func proseSecret(v []byte) bool {
	upper := 0
	for _, c := range v {
		switch {
		case isDigit(c), !isAlpha(c):
			return true
		case isUpper(c):
			upper++
		}
	}
	return upper >= 3 && upper < len(v)
}

// sentenceStop reports whether the byte before e is a sentence's full
// stop: followed by white space or the end of the text. "password:
// hunter2. Next sentence": the stop is punctuation; a password that really
// ends in one leaks only that character when redacted. ('!' and '?' stay:
// passwords end in them more often than sentences around them do.)
func sentenceStop(b []byte, s, e int) bool {
	if e-s < 2 || b[e-1] != '.' {
		return false
	}
	return e == len(b) || b[e] == ' ' || b[e] == '\n' || b[e] == '\r' || b[e] == '\t'
}

func assignDetector(id, desc string, kws []string, value func([]byte) float64, gen func(r *rand.Rand) (string, string), near func(r *rand.Rand) string) *Detector {
	trimStop := id == "generic-secret-assignment"
	return &Detector{
		ID: id, Category: Secrets, Tags: tags(TagSOC2, TagPCI), Description: desc, Confidence: 0.8, keywords: kws,
		kw: func(b []byte, from int) (int, int, float64) {
			needOp := from > 0 && b[from-1] != 'r' // "bearer <tok>" needs no operator
			s, e := assignment(b, from, needOp)
			prose := false
			if e <= s && needOp {
				// "the password on file is X": a sentence's verb as the operator
				if vs := proseValue(b, from); vs > 0 {
					s, e, prose = vs, valueEnd(b, vs), true
				}
			}
			if e <= s {
				return 0, 0, 0
			}
			// a token never ends in a full stop: "token: abc…xyz. Next
			// sentence"; a password keeps a stop inside a word
			// ("pa.ss.") but not a sentence's
			if trimStop && e-s > 1 && b[e-1] == '.' || !trimStop && sentenceStop(b, s, e) {
				e--
			}
			if prose && !proseSecret(b[s:e]) {
				return 0, 0, 0
			}
			if c := value(b[s:e]); c > 0 {
				return s, e, c
			}
			return 0, 0, 0
		},
		keyValue: value,
		gen:      gen, near: near,
	}
}

func b64url(r *rand.Rand, v any) string {
	j, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(j)
}

func genJWT(r *rand.Rand) string {
	h := b64url(r, map[string]string{"alg": pick(r, "HS256", "RS256", "ES256"), "typ": "JWT"})
	p := b64url(r, map[string]any{"sub": digits(r, 8), "iat": 1700000000 + r.IntN(1e7), "name": pick(r, "alice", "bob")})
	return h + "." + p + "." + fromSet(r, setB64URL, 43)
}

func jwtAnchor(b []byte, i int, m *runMemo) (int, int, float64) {
	// the header segment: a run of base64url characters ending in '.';
	// remembered so a flood of "eyJ" inside one run is read once
	var k int
	if m.start <= i && i < m.end {
		k = m.end
	} else {
		k = i
		for k < len(b) && (isAlnum(b[k]) || b[k] == '-' || b[k] == '_') {
			k++
		}
		m.start, m.end = i, k
	}
	if k-i > 512 || k >= len(b) || b[k] != '.' {
		return 0, 0, 0
	}
	p := i
	var dots [2]int
	nd := 0
	for p < len(b) && p-i < 8192 {
		c := b[p]
		if c == '.' {
			if nd == 2 {
				break
			}
			dots[nd] = p
			nd++
		} else if !(isAlnum(c) || c == '-' || c == '_') {
			break
		}
		p++
	}
	if nd != 2 || dots[0]-i < 10 || dots[1]-dots[0] < 3 {
		return 0, 0, 0
	}
	hdr, err := base64.RawURLEncoding.DecodeString(string(b[i:dots[0]]))
	if err != nil {
		return 0, 0, 0
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil || h.Alg == "" {
		return 0, 0, 0
	}
	if _, err := base64.RawURLEncoding.DecodeString(string(b[dots[0]+1 : dots[1]])); err != nil {
		return 0, 0, 0
	}
	return i, p, 0.9
}

// pemAnchor recognises a private key block of the given kind.
func pemAnchor(kind string) func(b []byte, i int) (int, int, float64) {
	return func(b []byte, i int) (int, int, float64) {
		const begin = "-----BEGIN "
		if !bytes.HasPrefix(b[i:], []byte(begin)) {
			return 0, 0, 0
		}
		p := i + len(begin)
		ls := p
		for p < len(b) && p-ls < 40 && b[p] != '-' {
			p++
		}
		label := string(b[ls:p])
		if !bytes.HasPrefix(b[p:], []byte("-----")) || !strings.Contains(label, "PRIVATE KEY") {
			return 0, 0, 0
		}
		got := "pem"
		switch {
		case strings.HasPrefix(label, "OPENSSH"):
			got = "openssh"
		case strings.HasPrefix(label, "PGP"):
			got = "pgp"
		}
		if got != kind {
			return 0, 0, 0
		}
		hdrEnd := p + 5
		lim := min(len(b), hdrEnd+16384)
		// look for the END line, but never past the next "-----" that is
		// not it: a block cannot contain another armor line, so every byte
		// is searched at most once per block (linear time)
		endMark := "-----END " + label + "-----"
		q := hdrEnd
		for q < lim {
			k := bytes.Index(b[q:lim], []byte("-----"))
			if k < 0 {
				break
			}
			q += k
			if bytes.HasPrefix(b[q:], []byte(endMark)) {
				return i, q + len(endMark), 0.99
			}
			break
		}
		return i, hdrEnd, 0.85
	}
}

func genPEM(r *rand.Rand, label string) string {
	var sb strings.Builder
	sb.WriteString("-----BEGIN " + label + "-----\n")
	for range 4 {
		sb.WriteString(fromSet(r, setB64, 64) + "\n")
	}
	sb.WriteString("-----END " + label + "-----")
	return sb.String()
}

// urlSchemes maps URL schemes to the detector reporting passwords in them.
var urlSchemes = map[string]string{
	"postgres": "url-password-postgres", "postgresql": "url-password-postgres",
	"mysql": "url-password-mysql", "mariadb": "url-password-mysql", "mysql+pymysql": "url-password-mysql",
	"mongodb": "url-password-mongodb", "mongodb+srv": "url-password-mongodb",
	"redis": "url-password-redis", "rediss": "url-password-redis",
	"amqp": "url-password-amqp", "amqps": "url-password-amqp",
	"http": "url-password-http", "https": "url-password-http",
}

// urlPassword finds scheme://user:password@host around the ':' at i and
// returns the detector for the scheme and the password span.
func urlPassword(b []byte, i int) (*Detector, int, int, float64) {
	if i+3 > len(b) || b[i+1] != '/' || b[i+2] != '/' {
		return nil, 0, 0, 0
	}
	p := i + 3
	colon, at := -1, -1
	for p < len(b) && p-i < 300 {
		c := b[p]
		if c == '/' || c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '?' || c == '#' || c == '\\' {
			break
		}
		if c == ':' && colon < 0 && at < 0 {
			colon = p
		}
		if c == '@' {
			at = p
		}
		p++
	}
	if colon < 0 || at < colon+2 || at+1 >= len(b) || !isAlnum(b[at+1]) {
		return nil, 0, 0, 0
	}
	s := i
	for s > 0 && i-s < 24 && (isAlnum(b[s-1]) || b[s-1] == '+' || b[s-1] == '.' || b[s-1] == '-') {
		s--
	}
	if s == i {
		return nil, 0, 0, 0
	}
	var lb [24]byte
	scheme := lb[:i-s]
	for k := range scheme {
		c := b[s+k]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		scheme[k] = c
	}
	id, known := urlSchemes[string(scheme)]
	if !known {
		id = "url-password-generic"
	}
	pw := b[colon+1 : at]
	if placeholder(pw) {
		return nil, 0, 0, 0
	}
	return byID[id], colon + 1, at, 0.9
}

func init() {
	b32 := "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	regTok(tokSpec{id: "aws-access-key-id", desc: "AWS access key id (AKIA/ASIA/ABIA/ACCA)", prefixes: []string{"AKIA", "ASIA", "ABIA", "ACCA"}, set: b32, min: 16, max: 16,
		nearFn: fixedNear("AKIA12345678901234567", "AKIAabcdefghijklmnop")})
	regTok(tokSpec{id: "gcp-api-key", desc: "Google Cloud API key", prefixes: []string{"AIza"}, set: setB64URL, min: 35, max: 35})
	regTok(tokSpec{id: "gcp-oauth-token", desc: "Google OAuth 2.0 access token", prefixes: []string{"ya29."}, set: setB64URL + ".", min: 40, max: 2048, conf: 0.85})
	regTok(tokSpec{id: "gcp-oauth-client-secret", desc: "Google OAuth client secret", prefixes: []string{"GOCSPX-"}, set: setB64URL, min: 28, max: 28})
	regTok(tokSpec{id: "azure-storage-key", desc: "Azure storage account key in a connection string", prefixes: []string{"AccountKey="}, set: setB64 + "=", min: 86, max: 88,
		gen:    func(r *rand.Rand) string { return "AccountKey=" + fromSet(r, setB64, 86) + "==" },
		nearFn: fixedNear("AccountKey=;", "AccountKey=<your-key>", "AccountKey=${AZURE_KEY}")})
	for _, p := range []struct{ id, pre, name string }{
		{"github-pat", "ghp_", "personal access token"}, {"github-oauth-token", "gho_", "OAuth access token"},
		{"github-user-token", "ghu_", "user-to-server token"}, {"github-server-token", "ghs_", "server-to-server token"},
		{"github-refresh-token", "ghr_", "refresh token"},
	} {
		pre := p.pre
		regTok(tokSpec{id: p.id, desc: "GitHub " + p.name + " (CRC32 checksum verified)", prefixes: []string{pre}, set: setBase62, min: 36, max: 36, conf: 0.97,
			check: crcToken(4), gen: func(r *rand.Rand) string { return genCRCToken(r, pre) },
			nearFn: func(r *rand.Rand) string { return pre + fromSet(r, setBase62, 30) + "000000" }})
	}
	regTok(tokSpec{id: "github-fine-grained-pat", desc: "GitHub fine-grained personal access token", prefixes: []string{"github_pat_"}, set: setAlnum + "_", min: 82, max: 82,
		check: func(t []byte) bool { return t[11+22] == '_' },
		gen: func(r *rand.Rand) string {
			return "github_pat_" + fromSet(r, setAlnum, 22) + "_" + fromSet(r, setAlnum, 59)
		}})
	regTok(tokSpec{id: "npm-token", desc: "npm access token (CRC32 checksum verified)", prefixes: []string{"npm_"}, set: setBase62, min: 36, max: 36, conf: 0.97,
		check: crcToken(4), gen: func(r *rand.Rand) string { return genCRCToken(r, "npm_") },
		nearFn: func(r *rand.Rand) string { return "npm_" + fromSet(r, setBase62, 30) + "zzzzzz" }})
	regTok(tokSpec{id: "gitlab-pat", desc: "GitLab personal/project/group access token", prefixes: []string{"glpat-"}, set: setB64URL + ".", min: 20, max: 120})
	regTok(tokSpec{id: "gitlab-runner-token", desc: "GitLab runner authentication token", prefixes: []string{"glrt-"}, set: setB64URL + ".", min: 20, max: 120})
	regTok(tokSpec{id: "gitlab-deploy-token", desc: "GitLab deploy token", prefixes: []string{"gldt-"}, set: setB64URL, min: 20, max: 80})
	regTok(tokSpec{id: "gitlab-pipeline-trigger", desc: "GitLab pipeline trigger token", prefixes: []string{"glptt-"}, set: setHexLower, min: 40, max: 40})
	regTok(tokSpec{id: "gitlab-runner-registration", desc: "GitLab runner registration token", prefixes: []string{"GR1348941"}, set: setB64URL, min: 20, max: 20})
	regTok(tokSpec{id: "slack-bot-token", desc: "Slack bot token", prefixes: []string{"xoxb-"}, set: setAlnum + "-", min: 40, max: 120,
		gen: func(r *rand.Rand) string {
			return "xoxb-" + digits(r, 12) + "-" + digits(r, 13) + "-" + fromSet(r, setAlnum, 24)
		}})
	regTok(tokSpec{id: "slack-user-token", desc: "Slack user/legacy token", prefixes: []string{"xoxp-", "xoxa-", "xoxs-", "xoxr-"}, set: setAlnum + "-", min: 40, max: 120,
		gen: func(r *rand.Rand) string {
			return "xoxp-" + digits(r, 12) + "-" + digits(r, 12) + "-" + digits(r, 13) + "-" + fromSet(r, setHexLower, 32)
		}})
	regTok(tokSpec{id: "slack-app-token", desc: "Slack app-level token", prefixes: []string{"xapp-"}, set: setAlnum + "-", min: 40, max: 140,
		gen: func(r *rand.Rand) string {
			return "xapp-1-A" + fromSet(r, setUpper+setDigits, 10) + "-" + digits(r, 13) + "-" + fromSet(r, setHexLower, 64)
		}})
	regTok(tokSpec{id: "slack-webhook", desc: "Slack incoming webhook URL", prefixes: []string{"hooks.slack.com/services/"}, set: setAlnum + "/", min: 40, max: 80,
		gen: func(r *rand.Rand) string {
			return "hooks.slack.com/services/T" + fromSet(r, setUpper+setDigits, 10) + "/B" + fromSet(r, setUpper+setDigits, 10) + "/" + fromSet(r, setAlnum, 24)
		}})
	regTok(tokSpec{id: "stripe-secret-key", desc: "Stripe live secret key", prefixes: []string{"sk_live_"}, set: setAlnum, min: 24, max: 247})
	regTok(tokSpec{id: "stripe-restricted-key", desc: "Stripe live restricted key", prefixes: []string{"rk_live_"}, set: setAlnum, min: 24, max: 247})
	regTok(tokSpec{id: "stripe-test-key", desc: "Stripe test secret key", prefixes: []string{"sk_test_", "rk_test_"}, set: setAlnum, min: 24, max: 247, conf: 0.8})
	regTok(tokSpec{id: "stripe-webhook-secret", desc: "Stripe webhook signing secret", prefixes: []string{"whsec_"}, set: setB64, min: 32, max: 64})
	regTok(tokSpec{id: "twilio-api-key", desc: "Twilio API key SID", prefixes: []string{"SK"}, set: setHexLower, min: 32, max: 32, conf: 0.8,
		nearFn: fixedNear("SK0123456789abcdef", "SKILLS")})
	regTok(tokSpec{id: "sendgrid-api-key", desc: "SendGrid API key", prefixes: []string{"SG."}, set: setB64URL + ".", min: 66, max: 66,
		check: func(t []byte) bool { return t[3+22] == '.' },
		gen:   func(r *rand.Rand) string { return "SG." + fromSet(r, setB64URL, 22) + "." + fromSet(r, setB64URL, 43) }})
	regTok(tokSpec{id: "openai-api-key", desc: "OpenAI project/service-account/admin API key", prefixes: []string{"sk-proj-", "sk-svcacct-", "sk-admin-"}, set: setB64URL, min: 40, max: 200, conf: 0.95,
		gen: func(r *rand.Rand) string {
			return "sk-proj-" + fromSet(r, setB64URL, 80) + "T3BlbkFJ" + fromSet(r, setB64URL, 40)
		}})
	regTok(tokSpec{id: "openai-legacy-key", desc: "OpenAI legacy API key (T3BlbkFJ marker)", prefixes: []string{"sk-"}, set: setAlnum, min: 48, max: 48, conf: 0.95,
		check: func(t []byte) bool { return bytes.Contains(t, []byte("T3BlbkFJ")) },
		gen: func(r *rand.Rand) string {
			return "sk-" + fromSet(r, setAlnum, 20) + "T3BlbkFJ" + fromSet(r, setAlnum, 20)
		}})
	regTok(tokSpec{id: "anthropic-api-key", desc: "Anthropic API key", prefixes: []string{"sk-ant-api03-"}, set: setB64URL, min: 95, max: 95, conf: 0.97,
		check: func(t []byte) bool { return bytes.HasSuffix(t, []byte("AA")) },
		gen:   func(r *rand.Rand) string { return "sk-ant-api03-" + fromSet(r, setB64URL, 93) + "AA" }})
	regTok(tokSpec{id: "anthropic-admin-key", desc: "Anthropic admin API key", prefixes: []string{"sk-ant-admin01-"}, set: setB64URL, min: 95, max: 95, conf: 0.97,
		check: func(t []byte) bool { return bytes.HasSuffix(t, []byte("AA")) },
		gen:   func(r *rand.Rand) string { return "sk-ant-admin01-" + fromSet(r, setB64URL, 93) + "AA" }})
	regTok(tokSpec{id: "pypi-token", desc: "PyPI upload token (macaroon)", prefixes: []string{"pypi-AgEIcHlwaS5vcmc"}, set: setB64URL, min: 50, max: 300})
	regTok(tokSpec{id: "huggingface-token", desc: "Hugging Face access token", prefixes: []string{"hf_"}, set: setUpper + setLower, min: 34, max: 34})
	regTok(tokSpec{id: "digitalocean-token", desc: "DigitalOcean personal/OAuth/refresh token", prefixes: []string{"dop_v1_", "doo_v1_", "dor_v1_"}, set: setHexLower, min: 64, max: 64})
	regTok(tokSpec{id: "shopify-token", desc: "Shopify access/app token", prefixes: []string{"shpat_", "shpss_", "shpca_", "shppa_"}, set: "0123456789abcdefABCDEF", min: 32, max: 32})
	regTok(tokSpec{id: "mailgun-key", desc: "Mailgun API key", prefixes: []string{"key-"}, set: setHexLower, min: 32, max: 32, conf: 0.8})
	regTok(tokSpec{id: "databricks-token", desc: "Databricks personal access token", prefixes: []string{"dapi"}, set: setHexLower, min: 32, max: 32})
	regTok(tokSpec{id: "square-token", desc: "Square access token / OAuth secret", prefixes: []string{"sq0atp-", "sq0csp-", "EAAAE"}, set: setB64URL, min: 22, max: 60})
	regTok(tokSpec{id: "linear-api-key", desc: "Linear API key", prefixes: []string{"lin_api_"}, set: setAlnum, min: 40, max: 40})
	regTok(tokSpec{id: "notion-token", desc: "Notion integration token", prefixes: []string{"ntn_", "secret_"}, set: setAlnum, min: 43, max: 46, conf: 0.85})
	regTok(tokSpec{id: "figma-token", desc: "Figma personal access token", prefixes: []string{"figd_"}, set: setB64URL, min: 40, max: 40})
	regTok(tokSpec{id: "planetscale-token", desc: "PlanetScale service token / password", prefixes: []string{"pscale_tkn_", "pscale_pw_", "pscale_oauth_"}, set: setB64URL + ".", min: 32, max: 64})
	regTok(tokSpec{id: "doppler-token", desc: "Doppler personal/service token", prefixes: []string{"dp.pt.", "dp.st.", "dp.sa.", "dp.ct."}, set: setAlnum + ".", min: 40, max: 60})
	regTok(tokSpec{id: "grafana-token", desc: "Grafana service account / cloud token", prefixes: []string{"glsa_", "glc_"}, set: setB64URL + "=", min: 32, max: 200})
	regTok(tokSpec{id: "sentry-token", desc: "Sentry user/org auth token", prefixes: []string{"sntrys_", "sntryu_"}, set: setB64 + "=_", min: 64, max: 400})
	regTok(tokSpec{id: "newrelic-key", desc: "New Relic user/ingest API key", prefixes: []string{"NRAK-", "NRII-", "NRJS-"}, set: setUpper + setDigits, min: 27, max: 27})
	regTok(tokSpec{id: "atlassian-token", desc: "Atlassian API token", prefixes: []string{"ATATT3"}, set: setB64URL + "=", min: 150, max: 260})
	regTok(tokSpec{id: "bitbucket-app-password", desc: "Bitbucket app password", prefixes: []string{"ATBB"}, set: setAlnum, min: 32, max: 40})
	regTok(tokSpec{id: "groq-key", desc: "Groq API key", prefixes: []string{"gsk_"}, set: setAlnum, min: 52, max: 52})
	regTok(tokSpec{id: "replicate-token", desc: "Replicate API token", prefixes: []string{"r8_"}, set: setAlnum, min: 37, max: 37})
	regTok(tokSpec{id: "perplexity-key", desc: "Perplexity API key", prefixes: []string{"pplx-"}, set: setAlnum, min: 48, max: 48})
	regTok(tokSpec{id: "openrouter-key", desc: "OpenRouter API key", prefixes: []string{"sk-or-v1-"}, set: setHexLower, min: 64, max: 64, conf: 0.95})
	regTok(tokSpec{id: "xai-key", desc: "xAI API key", prefixes: []string{"xai-"}, set: setAlnum, min: 80, max: 80})
	regTok(tokSpec{id: "dockerhub-pat", desc: "Docker Hub personal access token", prefixes: []string{"dckr_pat_"}, set: setB64URL, min: 27, max: 27})
	regTok(tokSpec{id: "nuget-key", desc: "NuGet API key", prefixes: []string{"oy2"}, set: setLower + setDigits, min: 43, max: 43})
	regTok(tokSpec{id: "alibaba-access-key", desc: "Alibaba Cloud AccessKey ID", prefixes: []string{"LTAI"}, set: setAlnum, min: 12, max: 20, conf: 0.85})
	regTok(tokSpec{id: "tencent-secret-id", desc: "Tencent Cloud SecretId", prefixes: []string{"AKID"}, set: setAlnum, min: 32, max: 32})
	regTok(tokSpec{id: "gcs-hmac-key", desc: "Google Cloud Storage HMAC access id", prefixes: []string{"GOOG1"}, set: setUpper + setDigits, min: 56, max: 59})
	regTok(tokSpec{id: "rubygems-key", desc: "RubyGems API key", prefixes: []string{"rubygems_"}, set: setHexLower, min: 48, max: 48})
	regTok(tokSpec{id: "heroku-key", desc: "Heroku platform API key", prefixes: []string{"HRKU-"}, set: setB64URL, min: 60, max: 60})
	regTok(tokSpec{id: "discord-webhook", desc: "Discord webhook URL", prefixes: []string{"discord.com/api/webhooks/", "discordapp.com/api/webhooks/"}, set: setB64URL + "/", min: 80, max: 100,
		gen: func(r *rand.Rand) string {
			return "discord.com/api/webhooks/" + digits(r, 18) + "/" + fromSet(r, setB64URL, 68)
		}})
	regTok(tokSpec{id: "shippo-token", desc: "Shippo live API token", prefixes: []string{"shippo_live_"}, set: setHexLower, min: 40, max: 40})
	regTok(tokSpec{id: "postman-key", desc: "Postman API key", prefixes: []string{"PMAK-"}, set: setHexLower + "-", min: 59, max: 59,
		gen: func(r *rand.Rand) string {
			return "PMAK-" + fromSet(r, setHexLower, 24) + "-" + fromSet(r, setHexLower, 34)
		}})
	regTok(tokSpec{id: "pulumi-token", desc: "Pulumi access token", prefixes: []string{"pul-"}, set: setHexLower, min: 40, max: 40})
	regTok(tokSpec{id: "vault-token", desc: "HashiCorp Vault service/batch token", prefixes: []string{"hvs.", "hvb."}, set: setB64URL, min: 90, max: 250})
	regTok(tokSpec{id: "contentful-token", desc: "Contentful personal access token", prefixes: []string{"CFPAT-"}, set: setB64URL, min: 43, max: 43})
	regTok(tokSpec{id: "dynatrace-token", desc: "Dynatrace API token", prefixes: []string{"dt0c01."}, set: setUpper + setDigits + ".", min: 89, max: 89,
		check: func(t []byte) bool { return t[7+24] == '.' },
		gen: func(r *rand.Rand) string {
			return "dt0c01." + fromSet(r, setUpper+setDigits, 24) + "." + fromSet(r, setUpper+setDigits, 64)
		}})
	regTok(tokSpec{id: "brevo-key", desc: "Brevo (Sendinblue) API key", prefixes: []string{"xkeysib-"}, set: setAlnum + "-", min: 81, max: 81,
		gen: func(r *rand.Rand) string {
			return "xkeysib-" + fromSet(r, setHexLower, 64) + "-" + fromSet(r, setAlnum, 16)
		}})
	regTok(tokSpec{id: "airtable-pat", desc: "Airtable personal access token", prefixes: []string{"pat"}, set: setAlnum + ".", min: 79, max: 79,
		check: func(t []byte) bool { return t[3+14] == '.' },
		gen:   func(r *rand.Rand) string { return "pat" + fromSet(r, setAlnum, 14) + "." + fromSet(r, setHexLower, 64) }})
	regTok(tokSpec{id: "age-secret-key", desc: "age encryption secret key", prefixes: []string{"AGE-SECRET-KEY-1"}, set: "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", min: 58, max: 58})
	register(&Detector{
		ID: "putty-private-key", Category: Secrets, Tags: tags(TagSOC2, TagPCI), Description: "PuTTY private key file (header line)",
		Confidence: 0.95, prefixes: []string{"PuTTY-User-Key-File-"},
		anchor: func(b []byte, i int) (int, int, float64) {
			p := i + len("PuTTY-User-Key-File-")
			if p+3 > len(b) || (b[p] != '2' && b[p] != '3') || b[p+1] != ':' || b[p+2] != ' ' {
				return 0, 0, 0
			}
			q := p + 3
			for q < len(b) && q-p < 40 && (isAlnum(b[q]) || b[q] == '-' || b[q] == '@' || b[q] == '.') {
				q++
			}
			alg := b[p+3 : q]
			if q-p-3 < 7 || !(bytes.HasPrefix(alg, []byte("ssh-")) || bytes.HasPrefix(alg, []byte("ecdsa-"))) {
				return 0, 0, 0
			}
			return i, q, 0.95
		},
		gen: func(r *rand.Rand) (string, string) {
			return "key file:\n", "PuTTY-User-Key-File-" + pick(r, "2", "3") + ": " + pick(r, "ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256")
		},
		near: fixedNear("PuTTY-User-Key-File-x: ssh-rsa", "PuTTY-User-Key-File-2:"),
	})
	register(&Detector{
		ID: "jwt", Category: Secrets, Tags: tags(TagSOC2), Description: "JSON Web Token (header decoded, alg present)",
		Confidence: 0.9, prefixes: []string{"eyJ"}, anchorMemo: jwtAnchor,
		gen: func(r *rand.Rand) (string, string) { return "Authorization: Bearer ", genJWT(r) },
		near: func(r *rand.Rand) string {
			return "eyJub3RhbGciOiJ4In0." + fromSet(r, setB64URL, 20) + "." + fromSet(r, setB64URL, 20)
		},
	})
	for _, k := range []struct{ id, kind, label, desc string }{
		{"pem-private-key", "pem", "RSA PRIVATE KEY", "PEM private key (PKCS#1/PKCS#8/EC/DSA/encrypted)"},
		{"openssh-private-key", "openssh", "OPENSSH PRIVATE KEY", "OpenSSH private key"},
		{"pgp-private-key", "pgp", "PGP PRIVATE KEY BLOCK", "PGP private key block"},
	} {
		label := k.label
		register(&Detector{
			ID: k.id, Category: Secrets, Tags: tags(TagSOC2, TagPCI), Description: k.desc,
			Confidence: 0.99, special: '-', anchor: pemAnchor(k.kind),
			gen:  func(r *rand.Rand) (string, string) { return "key:\n", genPEM(r, label) },
			near: func(r *rand.Rand) string { return genPEM(r, strings.Replace(label, "PRIVATE", "PUBLIC", 1)) },
		})
	}
	for _, u := range []struct{ id, scheme string }{
		{"url-password-postgres", "postgres"}, {"url-password-mysql", "mysql"}, {"url-password-mongodb", "mongodb+srv"},
		{"url-password-redis", "redis"}, {"url-password-amqp", "amqp"}, {"url-password-http", "https"}, {"url-password-generic", "ftp"},
	} {
		scheme := u.scheme
		register(&Detector{
			ID: u.id, Category: Secrets, Tags: tags(TagSOC2, TagPCI), Description: "Password in a " + scheme + " URL / connection string",
			Confidence: 0.9, via: "url-password-generic",
			gen: func(r *rand.Rand) (string, string) {
				return "DSN=" + scheme + "://app:", fromSet(r, setAlnum, 16)
			},
			near: func(r *rand.Rand) string {
				return scheme + "://app:${DB_PASSWORD}@db.internal:5432/x " + scheme + "://db.internal/x"
			},
		})
	}
	byID["url-password-generic"].special = ':'
	byID["url-password-generic"].route = urlPassword
	// the generated positive is the password; finish the URL after it
	for _, id := range []string{"url-password-postgres", "url-password-mysql", "url-password-mongodb", "url-password-redis", "url-password-amqp", "url-password-http", "url-password-generic"} {
		byID[id].suffix = "@db.internal:5432/app"
	}

	register(assignDetector("password-assignment", "Password assigned to a password-like key (config, env, JSON, connection string)",
		[]string{"password", "passwd", "pwd", "pass", "passphrase", "dbpassword", "userpassword"}, passwordValue,
		func(r *rand.Rand) (string, string) {
			return pick(r, "DB_PASSWORD=", "password: ", "\"password\": \"", "Password="), fromSet(r, setAlnum+"!#", 12)
		},
		fixedNear("password: ${DB_PASSWORD}", "password = \"********\"", "reset your password now", "password: null")))
	register(assignDetector("generic-secret-assignment", "High-entropy value assigned to a secret-like key (secret, token, api key, credential)",
		[]string{"secret", "token", "apikey", "key", "auth", "credential", "credentials", "accesskey", "privatekey", "clientsecret", "bearer", "secretkey"}, secretValue,
		func(r *rand.Rand) (string, string) {
			return pick(r, "API_KEY=", "client_secret: ", "\"token\": \"", "Authorization: Bearer "), fromSet(r, setAlnum, 32)
		},
		fixedNear("token: aaaaaaaaaaaaaaaaaaaaaaaa", "api_key = \"${API_KEY}\"", "secret: hello-world", "key: user_profile_settings")))
	register(&Detector{
		ID: "aws-secret-access-key", Category: Secrets, Tags: tags(TagSOC2, TagPCI), Description: "AWS secret access key (40 base64 characters near an AWS keyword)",
		Confidence: 0.85, keywords: []string{"aws", "awssecretaccesskey", "secretaccesskey"},
		kw: func(b []byte, from int) (int, int, float64) {
			lim := min(len(b), from+64)
			for p := from; p < lim; p++ {
				if p > 0 && (isAlnum(b[p-1]) || b[p-1] == '/' || b[p-1] == '+') {
					continue
				}
				q := p
				for q < len(b) && q-p <= 40 && (isAlnum(b[q]) || b[q] == '/' || b[q] == '+') {
					q++
				}
				if q-p == 40 && (q == len(b) || !(isAlnum(b[q]) || b[q] == '/' || b[q] == '+' || b[q] == '=')) && classes(b[p:q]) >= 3 && shannon(b[p:q]) > 4 {
					return p, q, 0.85
				}
			}
			return 0, 0, 0
		},
		keyValue: func(v []byte) float64 {
			if len(v) == 40 && classes(v) >= 3 && shannon(v) > 4 {
				return 0.85
			}
			return 0
		},
		gen: func(r *rand.Rand) (string, string) {
			return "aws_secret_access_key = ", fromSet(r, setAlnum, 30) + "/" + fromSet(r, setAlnum+"+", 9)
		},
		near: func(r *rand.Rand) string { return "aws_region = us-east-1 " + fromSet(r, setLower, 40) },
	})
	register(&Detector{
		ID: "gcp-service-account", Category: Secrets, Tags: tags(TagSOC2), Description: "Google Cloud service-account JSON key (private_key_id)",
		Confidence: 0.9, Context: []string{"service", "account", "gserviceaccount"}, prefixes: []string{"private_key_id"},
		anchor: func(b []byte, i int) (int, int, float64) {
			p := i + len("private_key_id")
			for p < len(b) && p-i < 24 && (b[p] == '"' || b[p] == ' ' || b[p] == ':' || b[p] == '\\') {
				p++
			}
			s := p
			for p < len(b) && isHex(b[p]) && p-s <= 40 {
				p++
			}
			if p-s != 40 {
				return 0, 0, 0
			}
			return s, p, 0.9
		},
		gen: func(r *rand.Rand) (string, string) {
			return "{\"type\": \"service_account\", \"project_id\": \"demo\", \"private_key_id\": \"", fromSet(r, setHexLower, 40)
		},
		near: fixedNear("{\"private_key_id\": \"abc\"}"),
	})
	register(&Detector{
		ID: "azure-ad-client-secret", Category: Secrets, Tags: tags(TagSOC2), Description: "Microsoft Entra ID (Azure AD) client secret (…8Q~…)",
		Confidence: 0.9, special: '~',
		anchor: func(b []byte, i int) (int, int, float64) {
			if i < 5 || b[i-1] != 'Q' || !isDigit(b[i-2]) {
				return 0, 0, 0
			}
			s := i - 5
			for k := s; k < i-2; k++ {
				if !isAlnum(b[k]) && b[k] != '_' && b[k] != '.' && b[k] != '~' {
					return 0, 0, 0
				}
			}
			if s > 0 && (isAlnum(b[s-1]) || b[s-1] == '_') {
				return 0, 0, 0
			}
			p := i + 1
			for p < len(b) && p-i <= 35 && (isAlnum(b[p]) || bytesIn(b[p], "_~.-")) {
				p++
			}
			if n := p - i - 1; n < 31 || n > 34 {
				return 0, 0, 0
			}
			return s, p, 0.9
		},
		gen: func(r *rand.Rand) (string, string) {
			return "client_secret=", fromSet(r, setAlnum, 3) + digits(r, 1) + "Q~" + fromSet(r, setAlnum+"_.-", 34)
		},
		near: fixedNear("path ~/home ABC8Q~short", "x8Q~"),
	})
	register(&Detector{
		ID: "azure-sas-token", Category: Secrets, Tags: tags(TagSOC2), Description: "Azure shared access signature (sig= with sv=)",
		Confidence: 0.85, prefixes: []string{"sig="},
		anchor: func(b []byte, i int) (int, int, float64) {
			lo := max(0, i-400)
			if !bytes.Contains(b[lo:i], []byte("sv=")) {
				return 0, 0, 0
			}
			p := i + 4
			for p < len(b) && p-i < 100 && (isAlnum(b[p]) || bytesIn(b[p], "%+/=")) {
				p++
			}
			if p-i-4 < 40 {
				return 0, 0, 0
			}
			return i + 4, p, 0.85
		},
		gen: func(r *rand.Rand) (string, string) {
			return "https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&sp=r&sig=", fromSet(r, setAlnum, 43) + "%3D"
		},
		near: fixedNear("https://example.com/?sig=abc", "sig="+strings.Repeat("A", 44)),
	})
	register(&Detector{
		ID: "telegram-bot-token", Category: Secrets, Tags: tags(TagSOC2), Description: "Telegram bot token (bot id : AA…)",
		Confidence: 0.85, special: ':',
		anchor: func(b []byte, i int) (int, int, float64) {
			s := i
			for s > 0 && isDigit(b[s-1]) && i-s <= 10 {
				s--
			}
			if i-s < 8 || i-s > 10 || (s > 0 && isAlnum(b[s-1])) || i+3 > len(b) || b[i+1] != 'A' || b[i+2] != 'A' {
				return 0, 0, 0
			}
			p := i + 1
			for p < len(b) && p-i <= 36 && (isAlnum(b[p]) || b[p] == '_' || b[p] == '-') {
				p++
			}
			if p-i-1 != 35 {
				return 0, 0, 0
			}
			return s, p, 0.85
		},
		gen: func(r *rand.Rand) (string, string) {
			return "bot token ", digits(r, 10) + ":AA" + fromSet(r, setB64URL, 33)
		},
		near: fixedNear("time 1234567890:AAbc", "12345678:BB"+strings.Repeat("x", 33)),
	})
	register(&Detector{
		ID: "mailchimp-key", Category: Secrets, Tags: tags(TagSOC2), Description: "Mailchimp API key (32 hex + datacenter)",
		Confidence: 0.85, minLen: 35, maxLen: 36, needsSep: true,
		group: func(c *cand) float64 {
			// datacenters us1 … us21: one or two digits
			n := len(c.raw)
			if n < 36 || n > 37 || !allIn(c.raw[:32], func(x byte) bool { return isDigit(x) || (x >= 'a' && x <= 'f') }) || string(c.raw[32:35]) != "-us" || !allDigits(c.raw[35:]) {
				return 0
			}
			return 0.85
		},
		gen: func(r *rand.Rand) (string, string) {
			return "mailchimp: ", fromSet(r, setHexLower, 32) + "-us" + digits(r, 2)
		},
		near: func(r *rand.Rand) string { return fromSet(r, setHexLower, 32) + "-eu12" },
	})
}
