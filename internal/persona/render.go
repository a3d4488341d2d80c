package persona

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// YAML renders the proposal as documents `portcullis apply` reads: the
// narrowed skills first, then the Persona, each skill annotated with the
// reason it is there.
func (p *Proposal) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	reasons := map[string]string{}
	byName := map[string]*ProposedSkill{}
	for _, ps := range p.Skills {
		reasons[ps.Name] = ps.Reason
		byName[ps.Name] = ps
	}
	var objs []state.Object
	for _, s := range p.NewSkills {
		objs = append(objs, s)
	}
	objs = append(objs, p.Persona)
	for i, o := range objs {
		n, err := documentNode(o)
		if err != nil {
			return nil, fmt.Errorf("render %s %s: %w", o.Kind(), o.Metadata().Name, err)
		}
		if i == 0 {
			n.HeadComment = header(p)
		}
		if s, ok := o.(*state.Skill); ok && byName[s.Name] != nil {
			ps := byName[s.Name]
			c := fmt.Sprintf("Narrowed copy of skill %s: %s", ps.From, oneLine(ps.Reason))
			for _, d := range ps.Dropped {
				_, name, _ := strings.Cut(d.Tool, "/")
				c += fmt.Sprintf("\nwithout %s: %s", name, oneLine(d.Reason))
			}
			n.HeadComment = strings.TrimSpace(n.HeadComment + "\n" + c)
		}
		if per, ok := o.(*state.Persona); ok {
			annotateSkills(n, per, reasons)
		}
		if err := enc.Encode(n); err != nil {
			return nil, fmt.Errorf("render %s %s: %w", o.Kind(), o.Metadata().Name, err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return buf.Bytes(), nil
}

func header(p *Proposal) string {
	var b strings.Builder
	b.WriteString("Drafted by `portcullis persona draft`: review before `portcullis apply`.\n")
	fmt.Fprintf(&b, "Asked for: %s. Forbidden outright: %s.", p.Asked, p.Forbidden)
	if a := p.Advice; a != nil && a.Error == "" {
		fmt.Fprintf(&b, "\nSkills proposed by %s, checked by the drafter's rules: %s.", oneLine(a.Source), oneLine(strings.Join(a.Proposed, ", ")))
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "\nWarning: %s", strings.Join(strings.Fields(w), " "))
	}
	for _, ex := range p.Excluded {
		fmt.Fprintf(&b, "\nLeft out %s: %s", ex.Skill, oneLine(ex.Reason))
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// documentNode renders one object in its wire form as a block-style YAML
// node, keeping the field order of the Go types.
func documentNode(o state.Object) (*yaml.Node, error) {
	d := state.EncodeDocument(o)
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return n.Content[0], nil
	}
	return &n, nil
}

func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// annotateSkills puts each skill's reason beside it in the Persona's list.
func annotateSkills(doc *yaml.Node, per *state.Persona, reasons map[string]string) {
	spec := mapValue(doc, "spec")
	list := mapValue(spec, "skills")
	if list == nil {
		return
	}
	for _, item := range list.Content {
		if r := reasons[item.Value]; r != "" {
			item.LineComment = oneLine(r)
		}
	}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
