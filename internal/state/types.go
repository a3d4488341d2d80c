package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// APIVersion is the only document version this release understands.
const APIVersion = "portcullis/v1"

// Kind names an object type in documents and in the admin API.
type Kind string

// The kinds an admin can declare.
const (
	KindUpstream Kind = "Upstream"
	KindSkill    Kind = "Skill"
	KindPersona  Kind = "Persona"
	KindAgent    Kind = "Agent"
	// KindNetworkPolicy holds global source-address rules for every port
	// the appliance serves. Several may exist; they combine (see
	// NetworkPolicy).
	KindNetworkPolicy Kind = "NetworkPolicy"
	// KindSequenceRule: see behaviour.go.
)

// Kinds lists the declarable kinds in dependency order: an object refers only
// to kinds earlier in the list.
var Kinds = []Kind{KindUpstream, KindSkill, KindPersona, KindAgent, KindNetworkPolicy, KindSequenceRule}

// ParseKind accepts a kind in any case, singular or plural ("personas").
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if equalFoldKind(s, string(k)) {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q (want one of upstream, skill, persona, agent, networkpolicy, sequencerule)", s)
}

func equalFoldKind(s, k string) bool {
	lower := func(b byte) byte {
		if 'A' <= b && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	if len(s) == len(k)+1 && lower(s[len(s)-1]) == 's' {
		s = s[:len(s)-1]
	} else if n := len(s); n > 3 && lower(s[n-3]) == 'i' && lower(s[n-2]) == 'e' && lower(s[n-1]) == 's' && lower(k[len(k)-1]) == 'y' {
		s = s[:n-3] + "y" // "networkpolicies"
	}
	if len(s) != len(k) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(k[i]) {
			return false
		}
	}
	return true
}

// Meta is what every object carries besides its spec. Created, Updated and
// Revision are set by the FSM, never by the admin.
type Meta struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created,omitzero"`
	Updated  time.Time         `json:"updated,omitzero"`
	Revision uint64            `json:"revision,omitempty"` // raft index of the last change
}

// Object is implemented by every declarable kind.
type Object interface {
	Kind() Kind
	Metadata() *Meta
}

// Upstream is an MCP server the gateway forwards to.
type Upstream struct {
	Meta `json:"-"`
	// URL is the upstream's MCP endpoint (Streamable HTTP) or, for the
	// deprecated HTTP+SSE transport, its SSE endpoint.
	URL string `json:"url"`
	// Transport is "streamable-http" (the default) or "sse".
	Transport string `json:"transport,omitempty"`
	// ToolPrefix is prepended (with "_") to the names of this upstream's tools
	// and prompts as agents see them. Nil means the upstream's name; an empty
	// string exposes the upstream's own names.
	ToolPrefix *string `json:"toolPrefix,omitempty"`
	// Timeout bounds one call to the upstream; zero means the gateway default.
	Timeout Duration `json:"timeout,omitzero"`
	// ProtocolVersion pins the MCP revision spoken to the upstream; empty
	// means negotiate the newest both sides support.
	ProtocolVersion string `json:"protocolVersion,omitempty"`
	// Credential is injected into every request to the upstream. The agent
	// never sees it; its secret is sealed by the HSM.
	Credential *Credential `json:"credential,omitempty"`
	// Environment (prod, staging, dev) and Egress (internal, external) feed
	// data-flow control: prod data never reaches dev, sensitive data never
	// reaches an external upstream.
	Environment string `json:"environment,omitempty"`
	Egress      string `json:"egress,omitempty"`
	// Limits bound the calls to this upstream from every agent together
	// (protecting the backend); Breaker tunes its circuit breaker.
	Limits  *Rates   `json:"limits,omitempty"`
	Breaker *Breaker `json:"breaker,omitempty"`
}

// Credential says how the gateway authenticates to an upstream. Exactly one
// of Secret (with Header or Query), Basic and OAuth2 is set. Secret names
// refer to sealed secrets stored with `portcullis secret put`.
type Credential struct {
	Secret string `json:"secret,omitempty"`
	// Header receives the secret (default Authorization); Format places it
	// in the value, "{secret}" standing for the plaintext (default
	// "Bearer {secret}" for Authorization, "{secret}" otherwise).
	Header string `json:"header,omitempty"`
	Format string `json:"format,omitempty"`
	// Query, instead of Header, names a URL query parameter for the secret.
	Query  string           `json:"query,omitempty"`
	Basic  *BasicCredential `json:"basic,omitempty"`
	OAuth2 *OAuth2Client    `json:"oauth2,omitempty"`
}

// BasicCredential is HTTP basic authentication toward an upstream.
type BasicCredential struct {
	Username       string `json:"username,omitempty"`
	UsernameSecret string `json:"usernameSecret,omitempty"`
	PasswordSecret string `json:"passwordSecret"`
}

// OAuth2Client is the OAuth 2.0 client-credentials grant: the gateway fetches
// and caches access tokens for the upstream itself.
type OAuth2Client struct {
	TokenURL           string   `json:"tokenURL"`
	ClientID           string   `json:"clientID"`
	ClientSecretSecret string   `json:"clientSecret"` // name of the sealed client secret
	Scopes             []string `json:"scopes,omitempty"`
	Audience           string   `json:"audience,omitempty"`
	// AuthStyle is "header" (HTTP basic, the default) or "body".
	AuthStyle string `json:"authStyle,omitempty"`
}

// Skill is an entry of the Skill Registry: a named, described bundle of
// abilities that Personas are built from.
type Skill struct {
	Meta        `json:"-"`
	Description string          `json:"description,omitempty"`
	Tools       []ToolGrant     `json:"tools,omitempty"`
	Resources   []ResourceGrant `json:"resources,omitempty"`
	Prompts     []PromptGrant   `json:"prompts,omitempty"`
}

// ToolGrant allows one tool, or every tool matching a pattern, optionally only
// with arguments that satisfy all of Args.
type ToolGrant struct {
	// Tool is the stable identity "<upstream>/<tool>"; the tool part may use
	// "*" wildcards ("helpdesk/*", "helpdesk/get_*").
	Tool string `json:"tool"`
	// Args constrains named arguments; every entry must hold.
	Args map[string]*Constraint `json:"args,omitempty"`
}

// ResourceGrant allows resources whose URI matches a "*" pattern.
type ResourceGrant struct {
	URI string `json:"uri"`
	// Upstream, when set, limits the grant to one upstream's resources.
	Upstream string `json:"upstream,omitempty"`
}

// PromptGrant allows a prompt by its stable identity "<upstream>/<prompt>"
// ("*" wildcards allowed in the prompt part).
type PromptGrant struct {
	Prompt string `json:"prompt"`
}

// Constraint restricts one argument value. A constrained argument must be
// present unless Optional is set. Every field that is set must hold.
type Constraint struct {
	In        []any    `json:"in,omitempty"`
	NotIn     []any    `json:"notIn,omitempty"`
	Equals    any      `json:"equals,omitempty"`
	Prefix    *string  `json:"prefix,omitempty"`
	Regex     *string  `json:"regex,omitempty"` // RE2, must match the whole value
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	MaxLength *int     `json:"maxLength,omitempty"` // characters of a string, elements of a list
	Optional  bool     `json:"optional,omitempty"`
	// Fields constrains fields of an object-valued argument.
	Fields map[string]*Constraint `json:"fields,omitempty"`
	// Items constrains every element of a list-valued argument.
	Items *Constraint `json:"items,omitempty"`
}

// Persona is a role: the default-deny union of its skills.
type Persona struct {
	Meta        `json:"-"`
	Description string   `json:"description,omitempty"`
	Skills      []string `json:"skills"`
	// DLP rules inspect this persona's requests and responses.
	DLP []DLPRule `json:"dlp,omitempty"`
	// Endpoint gives the persona a dedicated listener of its own.
	Endpoint *Endpoint `json:"endpoint,omitempty"`
	// Network limits where this persona's agents may connect from.
	Network *Network `json:"network,omitempty"`
	// Limits bound how fast this persona's agents may call (stage guard).
	Limits *Limits `json:"limits,omitempty"`
}

// Limits are a persona's rate limits. The top-level figures bound each
// agent of the persona, all its tools together; Tools bound each agent on
// one tool; Persona bounds all of the persona's agents together. Limits
// hold for the whole cluster (nodes share what they admitted).
type Limits struct {
	CallsPerMinute int `json:"callsPerMinute,omitempty"`
	CallsPerHour   int `json:"callsPerHour,omitempty"`
	CallsPerDay    int `json:"callsPerDay,omitempty"`
	// Burst is how many calls may come at once (default: the smallest of
	// the figures set).
	Burst int `json:"burst,omitempty"`
	// Concurrency caps an agent's calls in flight on one node (0: none).
	Concurrency int `json:"concurrency,omitempty"`
	// Tools maps a tool identity (upstream/tool) to each agent's limits on it.
	Tools map[string]Rates `json:"tools,omitempty"`
	// Persona bounds the persona's agents together.
	Persona *Rates `json:"persona,omitempty"`
}

// Rates are calls per minute, hour and day with a burst, and a cap on
// calls in flight; zero means no such limit.
type Rates struct {
	CallsPerMinute int `json:"callsPerMinute,omitempty"`
	CallsPerHour   int `json:"callsPerHour,omitempty"`
	CallsPerDay    int `json:"callsPerDay,omitempty"`
	Burst          int `json:"burst,omitempty"`
	Concurrency    int `json:"concurrency,omitempty"`
}

// Breaker tunes an upstream's circuit breaker.
type Breaker struct {
	// Failures in a row that open it (default 5).
	Failures int `json:"failures,omitempty"`
	// Cooldown is how long it stays open before a trial call (default 5s;
	// it doubles, up to 2m, while trial calls fail).
	Cooldown Duration `json:"cooldown,omitzero"`
}

// DLPRule applies an action to findings of some categories or detectors.
type DLPRule struct {
	Categories []string `json:"categories,omitempty"` // pci, banking, national-id, phi, secrets, pii, crypto
	Detectors  []string `json:"detectors,omitempty"`  // detector ids
	Direction  string   `json:"direction,omitempty"`  // request, response or both (default)
	Action     string   `json:"action"`               // log, mask, redact, tokenize, block
	// KeepTail is how many trailing characters mask leaves visible.
	KeepTail *int `json:"keepTail,omitempty"`
	// Format "ff1" makes tokenize format-preserving.
	Format string `json:"format,omitempty"`
}

// Endpoint is a persona's dedicated listener, serving its MCP endpoint at /mcp.
type Endpoint struct {
	Listen string `json:"listen"` // "ADDR:PORT"
}

// Network holds a persona's source-address rules, enforced at the NIC (XDP)
// on its dedicated listener and again in the gateway.
type Network struct {
	AllowCIDRs     []string `json:"allowCIDRs,omitempty"`
	DenyCIDRs      []string `json:"denyCIDRs,omitempty"`
	AllowCountries []string `json:"allowCountries,omitempty"`
	DenyCountries  []string `json:"denyCountries,omitempty"`
	// UnknownCountry decides, when a country list is set, for sources the
	// GeoIP table does not locate: "allow" or "deny". Empty follows the
	// global NetworkPolicy rule, and without one the list's kind: an
	// allowCountries list refuses unknown sources, a denyCountries list
	// admits them.
	UnknownCountry string `json:"unknownCountry,omitempty"`
	// PinTokensToIP binds every credential of the persona's agents to one
	// client address, given when the credential is made.
	PinTokensToIP bool `json:"pinTokensToIP,omitempty"`
}

// NetworkPolicy holds global source-address rules, enforced at the NIC (XDP)
// for every port the node serves and again in userspace.
//
// Every NetworkPolicy object applies at once: the global deny list is the
// union of all DenyCIDRs, the global allow list the union of all AllowCIDRs
// (if any object lists some, sources outside all of them are refused), and
// UnknownCountry is "deny" if any object says so, else "allow" if any says
// so. Splitting the rules over several objects lets teams own their part.
type NetworkPolicy struct {
	Meta        `json:"-"`
	Description string   `json:"description,omitempty"`
	AllowCIDRs  []string `json:"allowCIDRs,omitempty"`
	DenyCIDRs   []string `json:"denyCIDRs,omitempty"`
	// UnknownCountry is the default for persona country rules when a source
	// is not in the GeoIP table: "allow" or "deny" (see Network).
	UnknownCountry string `json:"unknownCountry,omitempty"`
}

// Agent is a non-human principal that acts as exactly one Persona.
type Agent struct {
	Meta        `json:"-"`
	Persona     string `json:"persona"`
	Description string `json:"description,omitempty"`
}

// Secret is a backend credential sealed by the HSM. Only ciphertext is ever
// stored or replicated; Version increases with every put and is bound into
// the ciphertext as associated data.
type Secret struct {
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	Sealed  []byte    `json:"sealed"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// APIKey is an agent credential. Only a hash of the secret is stored.
type APIKey struct {
	ID      string    `json:"id"`
	Agent   string    `json:"agent"`
	Hash    []byte    `json:"hash"` // SHA-256 of the secret part
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	// PinIP, when set, is the only client address the key is valid from.
	PinIP string `json:"pinIP,omitempty"`
}

func (u *Upstream) Kind() Kind { return KindUpstream }
func (s *Skill) Kind() Kind    { return KindSkill }
func (p *Persona) Kind() Kind  { return KindPersona }
func (a *Agent) Kind() Kind    { return KindAgent }

// Kind implements Object.
func (n *NetworkPolicy) Kind() Kind { return KindNetworkPolicy }
func (m *Meta) Metadata() *Meta     { return m }
func (u *Upstream) Prefix() string {
	if u.ToolPrefix == nil {
		return u.Name
	}
	return *u.ToolPrefix
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (want e.g. \"30s\", \"2m\")", s)
	}
	*d = Duration(v)
	return nil
}

func newObject(k Kind) Object {
	switch k {
	case KindUpstream:
		return &Upstream{}
	case KindSkill:
		return &Skill{}
	case KindPersona:
		return &Persona{}
	case KindAgent:
		return &Agent{}
	case KindNetworkPolicy:
		return &NetworkPolicy{}
	case KindSequenceRule:
		return &SequenceRule{}
	}
	return nil
}
