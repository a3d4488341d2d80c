package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// kindInfo describes how the CLI names and prints one kind of object.
type kindInfo struct {
	kind    string   // as in documents: Upstream
	path    string   // as in API paths: upstreams
	columns []column // table columns after NAME
}

type column struct {
	header string
	value  func(obj map[string]any) string
}

// Objects arrive as documents: {apiVersion, kind, metadata, spec}.
func spec(o map[string]any) map[string]any { m, _ := o["spec"].(map[string]any); return m }

func objName(o map[string]any) string {
	m, _ := o["metadata"].(map[string]any)
	return scalar(m["name"])
}

func field(name string) func(map[string]any) string {
	return func(o map[string]any) string { return scalar(spec(o)[name]) }
}

func count(name string) func(map[string]any) string {
	return func(o map[string]any) string {
		l, _ := spec(o)[name].([]any)
		return fmt.Sprint(len(l))
	}
}

func list(name string) func(map[string]any) string {
	return func(o map[string]any) string {
		l, _ := spec(o)[name].([]any)
		parts := make([]string, 0, len(l))
		for _, v := range l {
			parts = append(parts, scalar(v))
		}
		return strings.Join(parts, ",")
	}
}

// toolPrefix shows the prefix agents see: the upstream's name unless
// toolPrefix is set, and "(none)" when it is set to "".
func toolPrefix(o map[string]any) string {
	p, ok := spec(o)["toolPrefix"]
	switch {
	case !ok || p == nil:
		return objName(o)
	case p == "":
		return "(none)"
	}
	return scalar(p)
}

// upstreamStatus is what the node last saw of an upstream: "up (12
// tools)", "down: <why>", or "unknown" when it has not used it yet.
func upstreamStatus(o map[string]any) string {
	st, _ := o["status"].(map[string]any)
	switch scalar(st["state"]) {
	case "up":
		return fmt.Sprintf("up (%s tools)", scalar(st["tools"]))
	case "down":
		return "down: " + scalar(st["error"])
	case "":
		return ""
	}
	return scalar(st["state"])
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64, bool:
		return fmt.Sprint(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

var kinds = []kindInfo{
	{kind: "Upstream", path: "upstreams", columns: []column{
		{"URL", field("url")}, {"TRANSPORT", field("transport")}, {"PREFIX", toolPrefix}, {"STATUS", upstreamStatus},
	}},
	{kind: "Skill", path: "skills", columns: []column{
		{"TOOLS", count("tools")}, {"RESOURCES", count("resources")}, {"PROMPTS", count("prompts")}, {"DESCRIPTION", field("description")},
	}},
	{kind: "Persona", path: "personas", columns: []column{
		{"SKILLS", list("skills")}, {"DESCRIPTION", field("description")},
	}},
	{kind: "Agent", path: "agents", columns: []column{
		{"PERSONA", field("persona")}, {"DESCRIPTION", field("description")},
	}},
	{kind: "NetworkPolicy", path: "networkpolicies", columns: []column{
		{"DENY", list("denyCIDRs")}, {"ALLOW", list("allowCIDRs")}, {"UNKNOWN COUNTRY", field("unknownCountry")},
	}},
	{kind: "SequenceRule", path: "sequencerules", columns: []column{
		{"PERSONAS", list("personas")}, {"AFTER", sequenceAfter}, {"THEN", sequenceThen}, {"ACTION", field("action")},
	}},
}

// sequenceAfter renders a rule's after part: "200 × skills read-tickets / 10m0s".
func sequenceAfter(o map[string]any) string {
	a, _ := spec(o)["after"].(map[string]any)
	what := "skills " + joined(a["skills"])
	if a["skills"] == nil {
		what = "tools " + joined(a["tools"])
	}
	return fmt.Sprintf("%s × %s / %s", scalar(a["count"]), what, scalar(a["within"]))
}

func sequenceThen(o map[string]any) string {
	t, _ := spec(o)["then"].(map[string]any)
	if e := scalar(t["egress"]); e != "" {
		return "egress " + e
	}
	return "tools " + joined(t["tools"])
}

func joined(v any) string {
	l, _ := v.([]any)
	parts := make([]string, 0, len(l))
	for _, e := range l {
		parts = append(parts, scalar(e))
	}
	return strings.Join(parts, ",")
}

// lookupKind accepts the kind in any case, singular or plural
// (Upstream, upstream, upstreams).
func lookupKind(s string) (kindInfo, error) {
	l := strings.ToLower(s)
	for _, k := range kinds {
		if l == strings.ToLower(k.kind) || l == k.path {
			return k, nil
		}
	}
	return kindInfo{}, fmt.Errorf("unknown kind %q (known: %s)", s, kindNames())
}

// kindNames lists the kinds as the commands accept them.
func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.path
	}
	return strings.Join(names, ", ")
}

// kindArgs is argsBetween for commands whose first argument is a KIND: with
// no argument at all it says which kinds there are.
func kindArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%q needs a KIND (one of: %s); usage: %s", cmd.CommandPath(), kindNames(), cmd.UseLine())
		}
		return argsBetween(lo, hi)(cmd, args)
	}
}

// printObjects writes objects (raw JSON documents) as a table, YAML
// documents (re-appliable) or JSON. A list (one is false) always prints as
// a list, {"items": [...]} in JSON, however many objects it holds; one
// object (`get KIND NAME`) prints bare.
func printObjects(w io.Writer, k kindInfo, objs []json.RawMessage, format string, one bool) error {
	switch format {
	case "json":
		if one && len(objs) == 1 {
			return writeIndented(w, objs[0])
		}
		if objs == nil {
			objs = []json.RawMessage{}
		}
		b, err := json.Marshal(map[string]any{"items": objs})
		if err != nil {
			return err
		}
		return writeIndented(w, b)
	case "yaml":
		for i, o := range objs {
			y, err := jsonToYAML(o)
			if err != nil {
				return fmt.Errorf("render yaml: %w", err)
			}
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			if _, err := w.Write(y); err != nil {
				return err
			}
		}
		return nil
	case "", "table", "wide":
		return printTable(w, k, objs)
	}
	return fmt.Errorf("unknown output format %q (want table, yaml or json)", format)
}

func writeIndented(w io.Writer, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printTable(w io.Writer, k kindInfo, objs []json.RawMessage) error {
	rows := make([]map[string]any, 0, len(objs))
	for _, raw := range objs {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("decode object: %w", err)
		}
		rows = append(rows, m)
	}
	sort.Slice(rows, func(i, j int) bool { return objName(rows[i]) < objName(rows[j]) })
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	hdr := []string{"NAME"}
	for _, c := range k.columns {
		hdr = append(hdr, c.header)
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, r := range rows {
		cells := []string{objName(r)}
		for _, c := range k.columns {
			cells = append(cells, c.value(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
