package qa

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// canaryValue returns a fresh random secret, recognisable in a search.
func canaryValue(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pccanary" + hex.EncodeToString(b)
}

// encodings are the forms a leaked secret could take in a file or a
// message: raw, base64 (how JSON carries []byte), base64url, hex.
func encodings(secret string) map[string][]byte {
	return map[string][]byte{
		"raw":       []byte(secret),
		"base64":    []byte(base64.StdEncoding.EncodeToString([]byte(secret))),
		"base64raw": []byte(base64.RawStdEncoding.EncodeToString([]byte(secret))),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString([]byte(secret))),
		"hex":       []byte(hex.EncodeToString([]byte(secret))),
	}
}

// leakIn names the encoding in which secret occurs in data, or "".
func leakIn(data []byte, secret string) string {
	for name, enc := range encodings(secret) {
		if bytes.Contains(data, enc) {
			return name
		}
	}
	return ""
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// zstdFrames decompresses every zstd frame found anywhere in data (raft
// snapshots are zstd streams; a frame inside another file is found too).
func zstdFrames(data []byte) [][]byte {
	var out [][]byte
	for off := 0; ; {
		i := bytes.Index(data[off:], zstdMagic)
		if i < 0 {
			return out
		}
		start := off + i
		off = start + 1
		dec, err := zstd.NewReader(bytes.NewReader(data[start:]), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			continue
		}
		plain, _ := io.ReadAll(dec) // a false magic just yields nothing
		dec.Close()
		if len(plain) > 0 {
			out = append(out, plain)
		}
	}
}

// dataDirScan is what a search of a data dir found.
type dataDirScan struct {
	files      int
	bytes      int64
	frames     int            // zstd frames decompressed
	leaks      []string       // "path (encoding)" of each leak
	containing map[string]int // marker -> files (raw or decompressed) containing it
}

// scanDataDir reads every file under dir, raw and with every zstd frame
// decompressed, and reports where secret occurs in any encoding, and which
// files hold each marker (a positive control: the search sees the data).
func scanDataDir(t *testing.T, dir, secret string, markers ...string) dataDirScan {
	t.Helper()
	s := dataDirScan{containing: map[string]int{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		s.files++
		s.bytes += int64(len(data))
		views := map[string][]byte{rel: data}
		for i, f := range zstdFrames(data) {
			s.frames++
			views[rel+" zstd#"+string(rune('0'+i%10))] = f
		}
		for name, v := range views {
			if enc := leakIn(v, secret); enc != "" {
				s.leaks = append(s.leaks, name+" ("+enc+")")
			}
			for _, m := range markers {
				if bytes.Contains(v, []byte(m)) {
					s.containing[m]++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return s
}

// seenRequest is what a backend received: headers and the query.
type seenRequest struct {
	header http.Header
	query  string
}

// backend is a real go-sdk MCP server behind a handler that plays an API
// checking its own credential: a request without the right one gets 401,
// so a call through the gateway succeeds only if the credential arrived.
// It records every request's headers and query as the backend saw them.
type backend struct {
	url   string
	calls atomic.Int64

	mu    sync.Mutex
	seen  []seenRequest
	check func(r *http.Request) bool
}

type lookupIn struct {
	ID int `json:"id" jsonschema:"the record number"`
}

type lookupOut struct {
	Record string `json:"record"`
}

// startBackend starts a backend whose one tool is "lookup". check decides
// whether a request carries the right credential (nil: anything goes).
func startBackend(t testing.TB, check func(r *http.Request) bool) *backend {
	t.Helper()
	b := &backend{check: check}
	srv := mcp.NewServer(&mcp.Implementation{Name: "records", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "lookup", Description: "Read one record", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in lookupIn) (*mcp.CallToolResult, lookupOut, error) {
			b.calls.Add(1)
			return nil, lookupOut{Record: "record " + string(rune('A'+in.ID%26))}, nil
		})
	inner := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, seenRequest{header: r.Header.Clone(), query: r.URL.RawQuery})
		ok := b.check == nil || b.check(r)
		b.mu.Unlock()
		if !ok {
			http.Error(w, "bad credential", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	b.url = "http://" + l.Addr().String() + "/mcp"
	return b
}

func (b *backend) requests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seenRequest(nil), b.seen...)
}

// tokenEndpoint is an OAuth 2.0 token endpoint (client credentials, client
// authenticated with HTTP Basic) on loopback; it issues a fresh random
// access token per request and remembers them.
type tokenEndpoint struct {
	url      string
	requests atomic.Int64
	mu       sync.Mutex
	issued   map[string]bool
}

func startTokenEndpoint(t testing.TB, clientID, clientSecret string) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{issued: map[string]bool{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te.requests.Add(1)
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if !ok || id != clientID || secret != clientSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		tok := "at_" + hex.EncodeToString([]byte(canaryValue(t))[8:24])
		te.mu.Lock()
		te.issued[tok] = true
		te.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	te.url = "http://" + l.Addr().String() + "/oauth/token"
	return te
}

// valid reports whether an Authorization header carries a token it issued.
func (te *tokenEndpoint) valid(authz string) bool {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	te.mu.Lock()
	defer te.mu.Unlock()
	return ok && te.issued[tok]
}
