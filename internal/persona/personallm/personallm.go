// Package personallm is the optional language-model Advisor of the persona
// drafter: a client for an on-premises, OpenAI-compatible server (vLLM,
// Ollama, llama.cpp server, LocalAI), configured by URL. It speaks either
// /v1/chat/completions (the model picks skills and answers JSON) or
// /v1/embeddings (skills similar to the description are proposed).
//
// The model only chooses skills. The drafter's own rules then decide what
// each chosen skill may do, so a wrong or hostile answer can never grant an
// ability the description does not ask for (see persona.Advisor). Answers
// are parsed defensively: bounded in size, unknown fields ignored, names
// checked against the registry. The API key is read from a file or an
// environment variable, sent only in the Authorization header, and never
// appears in an error, a log line or a report.
//
// The default drafter stays offline and deterministic; this package is used
// only when an admin configures a model URL.
package personallm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/persona"
)

// Modes of the endpoint.
const (
	ModeChat       = "chat"
	ModeEmbeddings = "embeddings"
)

// Defaults.
const (
	// DefaultTimeout leaves room, within the CLI's default 30s request
	// timeout, for the draft's 10s of tools/list calls.
	DefaultTimeout = 15 * time.Second
	// maxResponse bounds a response body; a larger one is an error.
	maxResponse = 8 << 20
	// maxErrorBody is how much of an error response is quoted.
	maxErrorBody = 300
	// maxDims bounds an embedding's length.
	maxDims = 1 << 16
	// maxPromptCards bounds the catalogue sent in one prompt.
	maxPromptCards = 400
	// maxCached bounds the cached embeddings of skill cards.
	maxCached = 4096
)

// Config configures a Client.
type Config struct {
	// URL is the server's OpenAI-compatible base, ending in /v1
	// ("http://10.0.0.5:8000/v1"; Ollama: "http://host:11434/v1").
	// http and https only; credentials in the URL are refused (use
	// APIKeyFile or APIKeyEnv).
	URL string
	// Mode is ModeChat or ModeEmbeddings.
	Mode string
	// Model is the model name the server expects.
	Model string
	// APIKeyFile or APIKeyEnv name where the bearer token is (at most one;
	// neither for servers without authentication).
	APIKeyFile string
	APIKeyEnv  string
	// Timeout bounds one draft's calls (default DefaultTimeout).
	Timeout time.Duration
	// Similarity (embeddings mode) proposes the skills whose cosine
	// similarity is at least this fraction of the best one (default 0.9),
	// at most TopK of them (default 6).
	Similarity float64
	TopK       int
	// HTTPClient is used for the calls (default: a client with Timeout).
	HTTPClient *http.Client
	// Logger gets one line per call (never the key, never the text).
	Logger *slog.Logger
}

// Client is a persona.Advisor backed by an OpenAI-compatible server. It is
// safe for concurrent use.
type Client struct {
	cfg    Config
	base   *url.URL
	key    string
	http   *http.Client
	log    *slog.Logger
	source string

	mu    sync.Mutex
	cache map[string][]float64 // embeddings of skill cards, by text
}

var _ persona.Advisor = (*Client)(nil)

// New validates cfg and reads the API key.
func New(cfg Config) (*Client, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeChat
	}
	if cfg.Mode != ModeChat && cfg.Mode != ModeEmbeddings {
		return nil, fmt.Errorf("persona model: mode %q is neither %q nor %q", cfg.Mode, ModeChat, ModeEmbeddings)
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, errors.New("persona model: no model name")
	}
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(cfg.URL), "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("persona model: URL %q is not an http(s) URL with a host", redactURL(cfg.URL))
	}
	if u.User != nil {
		return nil, errors.New("persona model: the URL carries credentials; put the API key in a file (APIKeyFile) or an environment variable (APIKeyEnv)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("persona model: URL %q has a query or fragment; give the API base only", u.Redacted())
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Similarity <= 0 || cfg.Similarity > 1 {
		cfg.Similarity = 0.9
	}
	if cfg.TopK <= 0 {
		cfg.TopK = 6
	}
	key, err := readKey(cfg.APIKeyFile, cfg.APIKeyEnv)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: u, key: key, http: cfg.HTTPClient, log: cfg.Logger, cache: map[string][]float64{}}
	if c.http == nil {
		// No redirects: an API base never needs one, and the key must
		// not follow a redirect anywhere.
		c.http = &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.source = fmt.Sprintf("model %s (%s) at %s", cfg.Model, cfg.Mode, u.String())
	return c, nil
}

func readKey(file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", errors.New("persona model: give the API key in a file or an environment variable, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("persona model: read API key file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if k == "" || strings.ContainsAny(k, "\r\n") {
			return "", fmt.Errorf("persona model: API key file %s must hold one non-empty line", file)
		}
		return k, nil
	case env != "":
		k := strings.TrimSpace(os.Getenv(env))
		if k == "" {
			return "", fmt.Errorf("persona model: environment variable %s is empty or unset", env)
		}
		return k, nil
	}
	return "", nil
}

// redactURL hides what a malformed URL might carry after "//user:".
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if i := strings.Index(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

// Source names the endpoint in explanations.
func (c *Client) Source() string { return c.source }

// Advise asks the model which skills fit the description.
func (c *Client) Advise(ctx context.Context, desc string, skills []persona.SkillCard) (*persona.Advice, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.cfg.Mode == ModeEmbeddings {
		return c.adviseEmbeddings(ctx, desc, skills)
	}
	return c.adviseChat(ctx, desc, skills)
}

const systemPrompt = `You help an administrator grant an AI agent the least privilege it needs.
You get a job description and a catalogue of skills (name, description, tools).
Choose the skills the job needs and nothing more. Prefer a read-only skill when the job only reads.
Do not choose a skill for something the description forbids ("never", "must not", "read-only").
Answer with one JSON object and nothing else:
{"skills": [{"name": "<skill name from the catalogue>", "reason": "<short reason>"}]}`

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model          string            `json:"model"`
	Messages       []chatMessage     `json:"messages"`
	Temperature    float64           `json:"temperature"`
	ResponseFormat map[string]string `json:"response_format,omitempty"`
}

func (c *Client) adviseChat(ctx context.Context, desc string, skills []persona.SkillCard) (*persona.Advice, error) {
	var cat strings.Builder
	for i, s := range skills {
		if i == maxPromptCards {
			break
		}
		cat.WriteString("- " + s.Text() + "\n")
	}
	req := chatRequest{
		Model: c.cfg.Model,
		Messages: []chatMessage{
			{Role: "system", Content: systemPrompt},
			{Role: "user", Content: "Skill catalogue:\n" + cat.String() + "\nJob description:\n" + desc},
		},
		ResponseFormat: map[string]string{"type": "json_object"},
	}
	body, err := c.post(ctx, "/chat/completions", req)
	if err != nil {
		return nil, err
	}
	picked, err := ParseChat(body)
	if err != nil {
		return nil, fmt.Errorf("persona model: %s: %w", c.source, err)
	}
	return &persona.Advice{Source: c.source, Skills: picked, Exclusive: true}, nil
}

type embeddingsRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

func (c *Client) adviseEmbeddings(ctx context.Context, desc string, skills []persona.SkillCard) (*persona.Advice, error) {
	// The vectors of cards embedded before are taken under the lock now,
	// so another draft trimming the cache meanwhile cannot lose them.
	skillVecs := make([][]float64, len(skills))
	var missing []string
	var missingAt []int
	c.mu.Lock()
	for i, s := range skills {
		if v, ok := c.cache[s.Text()]; ok {
			skillVecs[i] = v
		} else {
			missing = append(missing, s.Text())
			missingAt = append(missingAt, i)
		}
	}
	c.mu.Unlock()
	vecs, err := c.embed(ctx, append([]string{desc}, missing...))
	if err != nil {
		return nil, err
	}
	for k, i := range missingAt {
		skillVecs[i] = vecs[k+1]
	}
	c.mu.Lock()
	if len(c.cache)+len(missing) > maxCached {
		// The registry changed a lot: keep only the current cards.
		c.cache = make(map[string][]float64, len(skills))
		for i, s := range skills {
			c.cache[s.Text()] = skillVecs[i]
		}
	}
	for k, t := range missing {
		c.cache[t] = vecs[k+1]
	}
	c.mu.Unlock()
	q := vecs[0]
	type sim struct {
		name string
		v    float64
	}
	var sims []sim
	for i, v := range skillVecs {
		if len(v) != len(q) {
			return nil, fmt.Errorf("persona model: %s: embeddings of different lengths (%d and %d)", c.source, len(v), len(q))
		}
		sims = append(sims, sim{skills[i].Name, cosine(q, v)})
	}
	sort.SliceStable(sims, func(i, j int) bool { return sims[i].v > sims[j].v })
	out := &persona.Advice{Source: c.source}
	for _, s := range sims {
		if len(out.Skills) == c.cfg.TopK || s.v <= 0 || s.v < c.cfg.Similarity*sims[0].v {
			break
		}
		out.Skills = append(out.Skills, persona.AdvisedSkill{Name: s.name, Reason: fmt.Sprintf("similarity %.3f", s.v)})
	}
	return out, nil
}

func (c *Client) embed(ctx context.Context, input []string) ([][]float64, error) {
	body, err := c.post(ctx, "/embeddings", embeddingsRequest{Model: c.cfg.Model, Input: input})
	if err != nil {
		return nil, err
	}
	vecs, err := ParseEmbeddings(body, len(input))
	if err != nil {
		return nil, fmt.Errorf("persona model: %s: %w", c.source, err)
	}
	return vecs, nil
}

// post sends one JSON request and returns the 2xx body.
func (c *Client) post(ctx context.Context, path string, v any) ([]byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("persona model: encode request: %w", err)
	}
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("persona model: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.Warn("persona model call failed", "endpoint", u.String(), "err", c.scrub(err.Error()))
		if ctx.Err() != nil {
			return nil, fmt.Errorf("persona model: %s did not answer within %s", u.String(), c.cfg.Timeout)
		}
		return nil, fmt.Errorf("persona model: call %s: %s", u.String(), c.scrub(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("persona model: %s did not answer within %s", u.String(), c.cfg.Timeout)
		}
		return nil, fmt.Errorf("persona model: read answer of %s: %s", u.String(), c.scrub(err.Error()))
	}
	c.log.Info("persona model call", "endpoint", u.String(), "status", resp.StatusCode, "bytes", len(body), "took", time.Since(start).Round(time.Millisecond))
	if len(body) > maxResponse {
		return nil, fmt.Errorf("persona model: the answer of %s is larger than %d bytes", u.String(), maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		snippet := strings.TrimSpace(string(body))
		if len(snippet) > maxErrorBody {
			snippet = snippet[:maxErrorBody] + "…"
		}
		return nil, fmt.Errorf("persona model: %s answered %s: %s", u.String(), resp.Status, c.scrub(snippet))
	}
	return body, nil
}

// scrub removes the API key from text that may echo it.
func (c *Client) scrub(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}

func cosine(a, b []float64) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	v := dot / (math.Sqrt(na) * math.Sqrt(nb))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0 // a zero or overflowing vector matches nothing
	}
	return v
}
