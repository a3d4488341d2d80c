package dlp

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// Category groups detectors by the kind of data they find.
type Category string

// The categories a Policy can name.
const (
	PCI        Category = "pci"
	Banking    Category = "banking"
	NationalID Category = "national-id"
	PHI        Category = "phi"
	Secrets    Category = "secrets"
	PII        Category = "pii"
	Crypto     Category = "crypto"
)

// Categories lists every category in a stable order.
var Categories = []Category{PCI, Banking, NationalID, PHI, Secrets, PII, Crypto}

// Compliance tags attached to detectors.
const (
	TagPCI   = "PCI-DSS"
	TagHIPAA = "HIPAA"
	TagSOC2  = "SOC 2"
	TagGDPR  = "GDPR"
)

// Detector describes one kind of sensitive value and how to recognise it.
// The exported fields describe it; the unexported ones are its trigger (how
// the shared prefilter reaches it) and its validator.
type Detector struct {
	ID           string   `json:"id"`
	Category     Category `json:"category"`
	Tags         []string `json:"tags"`
	Description  string   `json:"description"`
	Confidence   float64  `json:"confidence"`              // base confidence of a validated match
	Context      []string `json:"context,omitempty"`       // nearby words that raise confidence
	Negative     []string `json:"negative,omitempty"`      // nearby words that lower it ("^w": only right before the value)
	NeedsContext bool     `json:"needs_context,omitempty"` // only reported next to a keyword
	Checksum     bool     `json:"checksum,omitempty"`      // validated by a checksum

	// Group trigger: candidate runs of alphanumerics joined by separators,
	// dispatched by their normalized (alphanumeric-only) length.
	minLen, maxLen int
	digitsOnly     bool
	group          func(c *cand) float64
	groupRoute     func(c *cand) (*Detector, float64) // group trigger shared by a family
	needsSep       bool                               // never matches a bare run
	// longIDs: a 17-19 digit match that is a whole JSON value, under a key
	// that names none of the detector's context words, is the key's own
	// integer (int64 ids and nanosecond timestamps are 19 digits), not
	// this type: see scanner.context.
	longIDs bool
	// kwSpaced are the keywords of two words, as head and tail (lower case)
	kwSpaced [][2]string

	// Prefix trigger: a literal at the start of a word; anchor parses the
	// bounded extent from i and returns the finding span.
	prefixes []string
	// Special trigger: a punctuation byte ('@', ':', '-', '~').
	special byte
	anchor  func(b []byte, i int) (s, e int, conf float64)
	// anchorMemo is anchor with per-scan memory of the body run it read.
	anchorMemo func(b []byte, i int, m *runMemo) (s, e int, conf float64)

	// route replaces anchor for a special trigger shared by a family of
	// detectors: it returns which detector matched. Members name the
	// router's id in via.
	route func(b []byte, i int) (d *Detector, s, e int, conf float64)
	via   string

	// Keyword trigger: a context word; kw looks for the value after it.
	keywords []string
	kw       func(b []byte, from int) (s, e int, conf float64)
	// keyValue checks a whole JSON string value whose key is a keyword.
	keyValue func(v []byte) float64

	// Test vectors and corpus generators: gen returns a context prefix and a
	// value that must be found; near returns a look-alike that must not be.
	gen    func(r *rand.Rand) (ctx, val string)
	near   func(r *rand.Rand) string
	suffix string // text that follows a generated value

	ctxSet map[string]int8
	// yieldsToLabels: another identifier's label nearby lowers confidence
	// (as for national and health identifiers)
	yieldsToLabels bool
}

// Sample returns a generated positive example: a text and the span of the
// value inside it that the detector must report.
func (d *Detector) Sample(r *rand.Rand) (text string, start, end int) {
	ctx, val := d.gen(r)
	return ctx + val + d.suffix, len(ctx), len(ctx) + len(val)
}

// NearMiss returns a generated look-alike (failing a checksum, a range or a
// context rule) that the detector must not report.
func (d *Detector) NearMiss(r *rand.Rand) string { return d.near(r) }

// runMemo remembers the last body run a token anchor scanned.
type runMemo struct{ start, end int }

// Finding is one sensitive value found in the input.
type Finding struct {
	Detector   string   `json:"detector"`
	Category   Category `json:"category"`
	Start      int      `json:"start"` // byte offset in the scanned input
	End        int      `json:"end"`
	Confidence float64  `json:"confidence"`
	Path       string   `json:"path,omitempty"` // JSON path of the value (ScanJSON)

	// set by ScanJSON for rewriting: the raw span of the enclosing JSON
	// token, whether it is a number, and whether the value was escaped
	tokStart, tokEnd int
	inNumber         bool
	escaped          bool
	// plain is the value as detected when it differs from the input bytes
	// (normalised digits, a decoded run); encoded marks a finding on a
	// whole base64/hex run
	plain   string
	encoded bool
}

var registry []*Detector
var byID = map[string]*Detector{}

func register(ds ...*Detector) {
	for _, d := range ds {
		if _, dup := byID[d.ID]; dup {
			panic("dlp: duplicate detector " + d.ID)
		}
		if d.Confidence == 0 {
			d.Confidence = 0.9
		}
		d.ctxSet = map[string]int8{}
		for _, w := range d.Context {
			v := int8(1)
			if rest, ok := strings.CutPrefix(w, "~"); ok {
				w, v = rest, 2 // a weak word: it names another type too, and raises less
			}
			if head, _, ok := strings.Cut(w, " "); ok { // a phrase: its two words joined
				w = strings.ReplaceAll(w, " ", "")
				phrases[strings.ToLower(w)] = true
				if h := strings.ToLower(head); !slices.Contains(phraseHeads, h) {
					phraseHeads = append(phraseHeads, h)
				}
			}
			d.ctxSet[strings.ToLower(w)] = v
		}
		for i, w := range d.keywords {
			// a keyword of two words ("security code") is also written as
			// one (securitycode, security_code, SecurityCode): the scanner
			// keys it joined and reaches the spaced form from its head
			if head, tail, ok := strings.Cut(w, " "); ok {
				d.keywords[i] = head + tail
				d.kwSpaced = append(d.kwSpaced, [2]string{head, tail})
			}
			d.ctxSet[strings.ToLower(d.keywords[i])] = 1
		}
		for _, w := range d.Negative {
			v := int8(-1)
			if rest, ok := strings.CutPrefix(w, "^"); ok {
				w, v = rest, -2 // lowers only as the value's own label
			}
			d.ctxSet[strings.ToLower(w)] = v
		}
		if len(d.keywords) > 0 {
			d.NeedsContext = true
		}
		registry = append(registry, d)
		byID[d.ID] = d
	}
}

// checksummed lists the detectors whose matches pass a checksum (Luhn,
// mod 97, Verhoeff, weighted mod 11, CRC32, Base58Check, bech32, EIP-55…).
var checksummed = []string{
	"card-visa", "card-mastercard", "card-amex", "card-discover", "card-jcb", "card-diners", "card-unionpay", "card-maestro",
	"card-mir", "card-rupay", "card-verve", "track1-data", "track2-data", "iban", "aba-routing",
	"uk-nhs", "es-dni", "es-nie", "br-cpf", "br-cnpj", "in-aadhaar", "au-tfn", "au-abn", "au-medicare", "pl-pesel", "fi-hetu",
	"kr-rrn", "tr-tckn", "de-steuer-id", "it-codice-fiscale", "nl-bsn", "fr-nir", "cn-resident-id", "ca-sin", "za-id",
	"se-personnummer", "no-fodselsnummer", "dk-cpr", "be-national-number", "pt-nif", "ch-ahv", "ie-pps", "mx-curp", "cl-rut",
	"sg-nric", "hk-hkid", "jp-my-number", "ro-cnp", "bg-egn", "cz-rodne-cislo", "ee-isikukood", "il-teudat-zehut", "nz-ird",
	"us-npi", "us-dea", "github-pat", "github-oauth-token", "github-user-token", "github-server-token", "github-refresh-token",
	"npm-token", "btc-address", "ltc-address", "doge-address", "tron-address", "xrp-address", "btc-wif-private-key",
	"btc-bech32-address", "ltc-bech32-address", "eth-address",
}

func init() {
	for _, id := range checksummed {
		byID[id].Checksum = true
	}
	for _, d := range registry {
		if d.Checksum && len(d.prefixes) > 0 && (d.anchor != nil || d.anchorMemo != nil) {
			checksumPrefixed = append(checksumPrefixed, d)
		}
	}
	// phone numbers share layouts with identifiers (NHS 3-3-4, NANP
	// 3-3-4): next to an identifier's label a number that failed that
	// identifier's check is not a phone number
	for _, id := range []string{"phone-nanp", "phone-uk", "phone-fr", "phone-intl"} {
		byID[id].yieldsToLabels = true
	}
	buildLabels()
}

// labelOwner maps a word that names exactly one identifier type ("tfn",
// "hetu", "aadhaar", "nhs", …) to the detector it names. Next to a value,
// such a label of another identifier lowers confidence like a negative
// word: "tfn: 269 494 431" is a mistyped tax file number, not a Canadian
// SIN that happens to pass Luhn.
var labelOwner = map[string]*Detector{}

// phrases holds the two-word context phrases ("tax file" for a TFN, whose
// words alone say little), stored joined ("taxfile") in ctxSet.
var phrases = map[string]bool{}

// phraseHeads are the first words of the phrases (few: a word is compared
// with them before any phrase is looked up).
var phraseHeads []string

// genericLabel lists context words too general to name one identifier.
var genericLabel = map[string]bool{
	"business": true, "national": true, "registre": true, "documento": true, "health": true, "patient": true,
	"income": true, "file": true, "fiscal": true, "contribuinte": true, "provider": true, "physician": true,
	"clinician": true, "registration": true, "beneficiary": true, "identity": true,
	"social": true, "insurance": true, "resident": true, "tax": true, "prescriber": true, "taxpayer": true,
	"extranjero": true, "identifikationsnummer": true,
}

func buildLabels() {
	owners := map[string][]*Detector{}
	for _, d := range registry {
		if d.Category != NationalID && d.Category != PHI {
			continue
		}
		for w, v := range d.ctxSet {
			if v == 1 && len(w) >= 3 && !genericLabel[w] {
				owners[w] = append(owners[w], d)
			}
		}
	}
	for w, ds := range owners {
		if len(ds) == 1 {
			labelOwner[w] = ds[0]
		}
	}
}

// All returns every built-in detector sorted by id. The detectors are
// shared: callers must treat them as read-only.
func All() []*Detector {
	out := append([]*Detector(nil), registry...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup returns the built-in detector with the given id.
func Lookup(id string) (*Detector, error) {
	d, ok := byID[id]
	if !ok {
		return nil, fmt.Errorf("dlp: unknown detector %q", id)
	}
	return d, nil
}

func validCategory(c Category) bool {
	for _, x := range Categories {
		if x == c {
			return true
		}
	}
	return false
}
