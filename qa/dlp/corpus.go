// Package dlpqa measures the DLP scanner: a labeled corpus generator
// (valid values, checksum-failing look-alikes, realistic JSON tool results,
// logs and code), a precision/recall report per detector, and throughput
// benchmarks including a comparison with gitleaks on the same secrets.
package dlpqa

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

// Label marks a sensitive value the scanner must report.
type Label struct {
	Detector   string
	Start, End int
}

// Doc is one corpus document.
type Doc struct {
	Kind   string // json, log or code
	Text   []byte
	Labels []Label // positives
	Near   []Label // spans of look-alikes that must not be reported as Detector
}

// Corpus is a labeled set of documents.
type Corpus struct {
	Docs []Doc
}

var fillerWords = strings.Fields(`the ticket was resolved after customer reported an issue with billing portal login
timeout deployment service region cluster status pending approved quarterly report meeting notes release build error
warning retry queue worker latency p99 cache miss upstream downstream request response session user account settings`)

func filler(r *rand.Rand, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		switch r.IntN(12) {
		case 0:
			fmt.Fprintf(&sb, "%d", r.IntN(100000))
		case 1:
			fmt.Fprintf(&sb, "v%d.%d.%d", r.IntN(5), r.IntN(20), r.IntN(40))
		case 2:
			fmt.Fprintf(&sb, "2025-%02d-%02dT%02d:%02d:%02dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
		case 3:
			fmt.Fprintf(&sb, "%08x-%04x-%04x", r.Uint32(), r.IntN(65536), r.IntN(65536))
		default:
			sb.WriteString(fillerWords[r.IntN(len(fillerWords))])
		}
	}
	return sb.String()
}

// jsonStr returns s JSON-escaped without the quotes.
func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

type piece struct {
	text  string
	label *Label // span relative to text
	near  string // detector id when text is a look-alike
}

// render lays pieces into a document of the given kind, escaping for JSON
// where needed, and returns the labels with absolute offsets.
func render(r *rand.Rand, kind string, ps []piece) Doc {
	var sb strings.Builder
	d := Doc{Kind: kind}
	esc := func(s string) string { return s }
	switch kind {
	case "json":
		fmt.Fprintf(&sb, `{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"`, r.IntN(10000))
		esc = jsonStr
	case "log":
		fmt.Fprintf(&sb, "2025-03-%02dT12:%02d:%02d.%03dZ INFO [svc-%d] req=%d ", 1+r.IntN(28), r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(9), r.IntN(1e6))
	case "code":
		sb.WriteString("// generated config\nconst settings = {\n  endpoint: \"https://api.example.com/v1\",\n  note: `")
	}
	for i, p := range ps {
		if i > 0 {
			sb.WriteString(esc(" " + filler(r, 3+r.IntN(6)) + " "))
		}
		if p.label != nil {
			pre := esc(p.text[:p.label.Start])
			val := esc(p.text[p.label.Start:p.label.End])
			start := sb.Len() + len(pre)
			sb.WriteString(pre + val + esc(p.text[p.label.End:]))
			d.Labels = append(d.Labels, Label{p.label.Detector, start, start + len(val)})
			continue
		}
		start := sb.Len()
		sb.WriteString(esc(p.text))
		if p.near != "" {
			d.Near = append(d.Near, Label{p.near, start, sb.Len()})
		}
	}
	switch kind {
	case "json":
		fmt.Fprintf(&sb, `"}],"isError":false,"meta":{"took_ms":%d,"page":%d}}}`, r.IntN(500), r.IntN(20))
	case "log":
		fmt.Fprintf(&sb, " latency=%dms status=200\n", r.IntN(900))
	case "code":
		sb.WriteString("`,\n  retries: 3,\n};\n")
	}
	d.Text = []byte(sb.String())
	return d
}

// Generate builds a corpus with perDetector positives and as many
// near-miss look-alikes for every detector, mixed with clean filler, as
// JSON tool results, log lines and source code.
func Generate(seed uint64, perDetector int) Corpus {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var ps []piece
	for _, d := range dlp.All() {
		for k := 0; k < perDetector; k++ {
			text, s, e := d.Sample(r)
			ps = append(ps, piece{text: text, label: &Label{d.ID, s, e}})
			ps = append(ps, piece{text: d.NearMiss(r), near: d.ID})
		}
	}
	r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	var c Corpus
	kinds := []string{"json", "log", "code"}
	for len(ps) > 0 {
		n := min(len(ps), 1+r.IntN(4))
		c.Docs = append(c.Docs, render(r, kinds[r.IntN(3)], ps[:n]))
		ps = ps[n:]
	}
	// clean documents: nothing in them may be reported
	n := len(c.Docs)
	for k := 0; k < n/4; k++ {
		c.Docs = append(c.Docs, render(r, kinds[r.IntN(3)], []piece{{text: filler(r, 40)}}))
	}
	for k := 0; k < n/2; k++ {
		c.Docs = append(c.Docs, realisticClean(r))
	}
	return c
}

// Secrets returns the documents that hold at least one secrets label, as
// plain text (for tools that only look for credentials).
func (c Corpus) Secrets() []Doc {
	var out []Doc
	for _, d := range c.Docs {
		for _, l := range d.Labels {
			if det, _ := dlp.Lookup(l.Detector); det.Category == dlp.Secrets {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// Size returns the total bytes of the corpus.
func (c Corpus) Size() int {
	n := 0
	for _, d := range c.Docs {
		n += len(d.Text)
	}
	return n
}
