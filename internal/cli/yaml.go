package cli

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// jsonToYAML renders a JSON document as block-style YAML, keeping the
// order of object members (JSON is YAML, so the document is decoded into
// a node tree and re-encoded with the flow and quoting styles cleared).
func jsonToYAML(b []byte) ([]byte, error) {
	// encoding/json reads invalid UTF-8 as U+FFFD; the YAML decoder
	// would refuse it.
	b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	plain(&n)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return out.Bytes(), nil
}

// plain clears JSON's flow and double-quote styles; the encoder still
// quotes any string that would otherwise read back as another type.
func plain(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle | yaml.DoubleQuotedStyle
	for _, c := range n.Content {
		plain(c)
	}
}
