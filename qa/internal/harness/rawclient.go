package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// RawClient speaks MCP Streamable HTTP with the least possible client-side
// work, so that load figures measure the server, not the client. It is safe
// for concurrent use after Initialize.
type RawClient struct {
	URL      string
	Bearer   string // sent as Authorization when set
	Version  string // protocol revision, default 2025-11-25
	HTTP     *http.Client
	session  string
	nextID   atomic.Int64
	Headers  map[string]string
	Sessions bool // false for 2026-07-28 (stateless)
}

// NewRawClient returns a client with a keep-alive pool sized for conc
// concurrent calls.
func NewRawClient(url, bearer string, conc int) *RawClient {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	return &RawClient{URL: url, Bearer: bearer, Version: "2025-11-25", HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Sessions: true}
}

// Response is a JSON-RPC response.
type Response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// Initialize performs the initialize handshake (stateful revisions).
func (c *RawClient) Initialize() error {
	params := map[string]any{
		"protocolVersion": c.Version,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "portcullis-qa", "version": "1"},
	}
	resp, hdr, err := c.Do("initialize", "", params)
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return fmt.Errorf("initialize: %d %s", resp.Error.Code, resp.Error.Message)
	}
	c.session = hdr.Get("Mcp-Session-Id")
	_, _, err = c.Do("notifications/initialized", "", nil)
	return err
}

// SessionID is the Mcp-Session-Id the server gave at initialize ("" for
// stateless revisions). Changing URL keeps it: a client that moves to
// another node continues the same session.
func (c *RawClient) SessionID() string { return c.session }

// CallTool calls a tool and returns the JSON-RPC response.
func (c *RawClient) CallTool(name string, args any) (*Response, error) {
	resp, _, err := c.Do("tools/call", name, map[string]any{"name": name, "arguments": args})
	return resp, err
}

// Do sends one JSON-RPC message (a notification when method starts with
// "notifications/") and returns the response (nil for notifications).
func (c *RawClient) Do(method, name string, params any) (*Response, http.Header, error) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	notify := strings.HasPrefix(method, "notifications/")
	if !notify {
		msg["id"] = c.nextID.Add(1)
	}
	if params != nil {
		msg["params"] = params
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", c.Version)
	req.Header.Set("Mcp-Method", method)
	if name != "" {
		req.Header.Set("Mcp-Name", name)
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if notify {
		io.Copy(io.Discard, res.Body)
		if res.StatusCode != http.StatusAccepted {
			return nil, res.Header, fmt.Errorf("%s: HTTP %d", method, res.StatusCode)
		}
		return nil, res.Header, nil
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return nil, res.Header, fmt.Errorf("%s: HTTP %d: %s", method, res.StatusCode, bytes.TrimSpace(b))
	}
	var r Response
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		data, err := readSSEResponse(res.Body)
		if err != nil {
			return nil, res.Header, fmt.Errorf("%s: %w", method, err)
		}
		body = data
	} else if body, err = io.ReadAll(res.Body); err != nil {
		return nil, res.Header, err
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, res.Header, fmt.Errorf("%s: bad response %q: %w", method, body, err)
	}
	return &r, res.Header, nil
}

// readSSEResponse returns the data of the first SSE event that is a
// JSON-RPC response (has an id and a result or error).
func readSSEResponse(r io.Reader) ([]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				var probe struct {
					ID     json.RawMessage `json:"id"`
					Method string          `json:"method"`
				}
				if json.Unmarshal(data.Bytes(), &probe) == nil && len(probe.ID) > 0 && probe.Method == "" {
					return data.Bytes(), nil
				}
				data.Reset()
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("event stream ended without a response")
}
