package icap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/icap/icaptest"
)

// startCICAP runs the real c-icap server (see icaptest) and returns its
// address.
func startCICAP(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the c-icap server; skipped in -short")
	}
	return icaptest.Start(t)
}

func newClient(t *testing.T, addr string, preview int) *Client {
	t.Helper()
	c, err := New(Config{Addr: addr, Service: "echo", Timeout: 5 * time.Second, Preview: preview, NoPreview: preview == 0})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCICAPOptions(t *testing.T) {
	addr := startCICAP(t)
	o, err := newClient(t, addr, -1).Options(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(o.Methods, " "), "RESPMOD") || !strings.Contains(strings.Join(o.Methods, " "), "REQMOD") || o.ISTag == "" {
		t.Errorf("options = %+v", o)
	}
	t.Logf("echo service: methods %v, preview %d, allow204 %v, istag %s", o.Methods, o.Preview, o.Allow204, o.ISTag)
}

func TestCICAPModes(t *testing.T) {
	addr := startCICAP(t)
	ctx := context.Background()
	small := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}`)
	large := bytes.Repeat([]byte(`{"row":"lorem ipsum dolor sit amet 0123456789"},`), 4000) // ≈190 KB
	for _, preview := range []int{-1, 0, 16} {
		c := newClient(t, addr, preview)
		for _, body := range [][]byte{small, large} {
			name := fmt.Sprintf("preview=%d/body=%d", preview, len(body))
			req, _ := http.NewRequest(http.MethodPost, "http://upstream.internal/mcp", nil)
			req.Header.Set("Content-Type", "application/json")
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}}

			res, err := c.RespMod(ctx, req, resp, body)
			if err != nil {
				t.Fatalf("%s: respmod: %v", name, err)
			}
			checkEcho(t, name+" respmod", res, body)
			// c-icap's echo answers RESPMOD with the full message: this
			// exercises preview, 100 Continue and the chunked body reader
			if res.Unchanged() || res.Response == nil || res.Response.StatusCode != 200 {
				t.Errorf("%s: respmod returned response %+v", name, res.Response)
			}

			res, err = c.ReqMod(ctx, req, body)
			if err != nil {
				t.Fatalf("%s: reqmod: %v", name, err)
			}
			checkEcho(t, name+" reqmod", res, body)
			if !res.Unchanged() && (res.Request == nil || res.Request.Method != http.MethodPost || res.Request.URL.Path != "/mcp") {
				t.Errorf("%s: reqmod returned request %+v", name, res.Request)
			}
		}
	}
	// no body at all
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.internal/health", nil)
	res, err := newClient(t, addr, -1).ReqMod(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Unchanged() && (res.Request == nil || res.Request.URL.Path != "/health") {
		t.Errorf("null-body reqmod: %+v", res)
	}
}

// checkEcho accepts the two valid answers of an echo service: 204 (no
// change) or 200 with the very same body.
func checkEcho(t *testing.T, name string, res *Result, body []byte) {
	t.Helper()
	if res.Header.Get("ISTag") == "" {
		t.Errorf("%s: no ISTag", name)
	}
	t.Logf("%s: ICAP %d, %d body bytes", name, res.Status, len(res.Body))
	if res.Unchanged() {
		return
	}
	if res.Status != 200 || !bytes.Equal(res.Body, body) {
		t.Errorf("%s: status %d, body %d bytes (sent %d)", name, res.Status, len(res.Body), len(body))
	}
}

func TestClientErrors(t *testing.T) {
	if _, err := New(Config{Addr: "nohost", Service: "echo"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad addr: %v", err)
	}
	if _, err := New(Config{Addr: "127.0.0.1:1344", Service: "a b"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad service: %v", err)
	}
	// a server that speaks garbage
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				br.ReadString('\n')
				c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
			}()
		}
	}()
	c, _ := New(Config{Addr: l.Addr().String(), Service: "x", Preview: 0, Timeout: time.Second})
	if _, err := c.Options(context.Background()); !errors.Is(err, ErrProtocol) {
		t.Errorf("garbage server: %v", err)
	}
}

func FuzzReadChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("3; ieof\r\nabc\r\n0; ieof\r\n\r\n"))
	f.Add([]byte("zz\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		body, err := readChunked(bufio.NewReader(bytes.NewReader(in)), 1<<16)
		if err == nil && len(body) > len(in) {
			t.Fatalf("body longer than input")
		}
	})
}

func FuzzParseEncapsulated(f *testing.F) {
	f.Add("req-hdr=0, res-hdr=137, res-body=296")
	f.Add("null-body=0")
	f.Add("res-hdr=0,res-body=x")
	f.Fuzz(func(t *testing.T, v string) {
		ps, err := parseEncapsulated(v)
		if err == nil {
			for i := 1; i < len(ps); i++ {
				if ps[i].off < ps[i-1].off {
					t.Fatal("offsets not sorted")
				}
			}
		}
	})
}
