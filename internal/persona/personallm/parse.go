package personallm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/persona"
)

// maxProposed bounds the skills one answer may name; the rest are ignored.
const maxProposed = 64

// maxName bounds a proposed skill name (registry names are far shorter).
const maxName = 200

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content json.RawMessage `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// ParseChat reads the skills a /v1/chat/completions answer proposes. It is
// strict: the first choice's message content must be exactly one JSON
// object {"skills": [...]} (a single Markdown code fence around it is the
// only wrapping allowed, as many models add one even in JSON mode), whose
// items are each a skill name or {"name": "...", "reason": "..."}; at most
// maxProposed of them, each name non-empty and at most maxName bytes. Any
// other shape is an error, so the draft falls back to the offline one
// rather than guess. Other members of the object are ignored. Names are
// not checked against the registry here: the drafter rejects unknown ones.
func ParseChat(body []byte) ([]persona.AdvisedSkill, error) {
	var resp chatResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("the answer is not a chat completion: %w", err)
	}
	if len(resp.Choices) == 0 {
		return nil, errors.New("the answer has no choices")
	}
	raw := resp.Choices[0].Message.Content
	var content string
	if err := json.Unmarshal(raw, &content); err != nil {
		return nil, errors.New("the answer's message content is not a string")
	}
	obj, err := jsonObject(content)
	if err != nil {
		if resp.Choices[0].FinishReason == "length" {
			return nil, fmt.Errorf("the model's answer was cut off (finish_reason length): %w", err)
		}
		return nil, err
	}
	var prop struct {
		Skills *[]json.RawMessage `json:"skills"`
	}
	if err := json.Unmarshal([]byte(obj), &prop); err != nil {
		return nil, fmt.Errorf("the model's JSON has no usable \"skills\" list: %w", err)
	}
	if prop.Skills == nil {
		return nil, errors.New("the model's JSON has no \"skills\" list")
	}
	if len(*prop.Skills) > maxProposed {
		return nil, fmt.Errorf("the model proposed %d skills, more than %d", len(*prop.Skills), maxProposed)
	}
	out := []persona.AdvisedSkill{}
	for i, item := range *prop.Skills {
		var s persona.AdvisedSkill
		var name string
		if err := json.Unmarshal(item, &name); err == nil {
			s.Name = name
		} else {
			var obj struct {
				Name   *string `json:"name"`
				Reason *string `json:"reason"`
			}
			if err := json.Unmarshal(item, &obj); err != nil || obj.Name == nil {
				return nil, fmt.Errorf("skill %d of the model's answer is neither a name nor {\"name\": ..., \"reason\": ...}", i+1)
			}
			s.Name = *obj.Name
			if obj.Reason != nil {
				s.Reason = *obj.Reason
			}
		}
		s.Name = strings.TrimSpace(s.Name)
		if s.Name == "" || len(s.Name) > maxName {
			return nil, fmt.Errorf("skill %d of the model's answer has an empty name or one longer than %d bytes", i+1, maxName)
		}
		out = append(out, s)
	}
	return out, nil
}

// jsonObject returns the JSON object that is the model's whole text, or
// the whole content of one Markdown code fence (```json ... ```).
func jsonObject(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("the model's answer is empty")
	}
	if strings.HasPrefix(s, "```") && strings.HasSuffix(s, "```") && len(s) >= 6 {
		inner := strings.TrimSuffix(s[3:], "```")
		if nl := strings.IndexByte(inner, '\n'); nl >= 0 && !strings.Contains(inner[:nl], "{") {
			lang := strings.TrimSpace(inner[:nl])
			if lang != "" && lang != "json" {
				return "", fmt.Errorf("the model's answer is a %q code block, not JSON", clipText(lang, 20))
			}
			inner = inner[nl+1:]
		}
		s = strings.TrimSpace(inner)
	}
	if !strings.HasPrefix(s, "{") {
		return "", errors.New("the model's answer is not a JSON object (prose or other text around it is refused)")
	}
	if !json.Valid([]byte(s)) {
		return "", errors.New("the model's answer is not one valid JSON object")
	}
	return s, nil
}

// clipText shortens untrusted text quoted in an error.
func clipText(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

type embeddingsResponse struct {
	Data []struct {
		Index     *int      `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
}

// ParseEmbeddings reads a /v1/embeddings answer for n inputs: exactly n
// vectors, each index once (in the order of "index" when given, else of
// the list), all of the same non-zero length, all finite.
func ParseEmbeddings(body []byte, n int) ([][]float64, error) {
	var resp embeddingsResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("the answer is not an embeddings response: %w", err)
	}
	if len(resp.Data) != n {
		return nil, fmt.Errorf("the answer has %d embeddings for %d inputs", len(resp.Data), n)
	}
	out := make([][]float64, n)
	dims := -1
	for k, d := range resp.Data {
		i := k
		if d.Index != nil {
			i = *d.Index
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("embedding index %d is out of range for %d inputs", i, n)
		}
		if out[i] != nil {
			return nil, fmt.Errorf("embedding index %d appears twice", i)
		}
		if len(d.Embedding) == 0 || len(d.Embedding) > maxDims {
			return nil, fmt.Errorf("embedding %d has %d dimensions", i, len(d.Embedding))
		}
		if dims >= 0 && len(d.Embedding) != dims {
			return nil, fmt.Errorf("embeddings of different lengths (%d and %d)", dims, len(d.Embedding))
		}
		dims = len(d.Embedding)
		for _, x := range d.Embedding {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("embedding %d holds a value that is not a finite number", i)
			}
		}
		out[i] = d.Embedding
	}
	return out, nil
}
