package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// DuplicateKey reports the path of the first object member name that occurs
// twice in the same JSON object of doc ("filter.owner", "items[2].id"), or
// ok=false when there is none (or doc is not valid JSON: the caller's own
// decoding reports that).
//
// The gateway decides on decoded arguments but forwards the agent's bytes;
// parsers disagree about which duplicate wins (Go keeps the last, others the
// first), so a duplicate could show the policy one value and the upstream
// another. Arguments with duplicates are refused instead.
func DuplicateKey(doc []byte) (path string, ok bool) {
	if bytes.IndexByte(doc, '{') < 0 || !json.Valid(doc) {
		return "", false
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	p, found, err := dupValue(d, "", 0)
	if err != nil || !found {
		return "", false
	}
	return p, true
}

const maxDupDepth = 256

var errTooDeep = errors.New("nested too deep")

func dupValue(d *json.Decoder, path string, depth int) (string, bool, error) {
	if depth > maxDupDepth {
		return "", false, errTooDeep
	}
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", false, err
	}
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		return "", false, nil
	}
	switch delim {
	case '{':
		seen := map[string]struct{}{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return "", false, err
			}
			k, _ := kt.(string)
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			if _, dup := seen[k]; dup {
				return sub, true, nil
			}
			seen[k] = struct{}{}
			if p, found, err := dupValue(d, sub, depth+1); err != nil || found {
				return p, found, err
			}
		}
	case '[':
		for i := 0; d.More(); i++ {
			if p, found, err := dupValue(d, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil || found {
				return p, found, err
			}
		}
	}
	_, err = d.Token() // the closing delimiter
	return "", false, err
}
