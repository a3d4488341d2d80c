package icap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func TestInspectCICAP(t *testing.T) {
	addr := startCICAP(t)
	for _, preview := range []int{-1, 0} {
		c := newClient(t, addr, preview)
		body := []byte(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"nothing to see"}]}}`)
		for _, response := range []bool{false, true} {
			out, v, err := c.Inspect(context.Background(), response, "http://crm.internal/mcp", body)
			if err != nil {
				t.Fatal(err)
			}
			if v.Blocked || v.Modified || string(out) != string(body) || v.ISTag == "" {
				t.Errorf("preview %d response %v: echo changed the message: %+v %s", preview, response, v, out)
			}
		}
	}
}

// blockingICAP is a minimal ICAP responder standing in for a commercial
// DLP that blocks: c-icap's bundled services never refuse a message, so
// the block path is exercised against this one.
func blockingICAP(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(conn)
				tp := textproto.NewReader(br)
				line, _ := tp.ReadLine()
				hdr, _ := tp.ReadMIMEHeader()
				if strings.HasPrefix(line, "OPTIONS") {
					fmt.Fprint(conn, "ICAP/1.0 200 OK\r\nMethods: REQMOD, RESPMOD\r\nISTag: \"block-1\"\r\nAllow: 204\r\nEncapsulated: null-body=0\r\n\r\n")
					return
				}
				// read the encapsulated headers and the chunked body
				ps, _ := parseEncapsulated(hdr.Get("Encapsulated"))
				if len(ps) > 0 {
					_, _ = io.CopyN(io.Discard, br, int64(ps[len(ps)-1].off))
					if ps[len(ps)-1].name != "null-body" {
						_, _ = readChunked(br, 1<<20)
					}
				}
				page := "blocked by policy"
				res := fmt.Sprintf("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", len(page))
				fmt.Fprintf(conn, "ICAP/1.0 200 OK\r\nISTag: \"block-1\"\r\nX-Violations-Found: 1\r\nEncapsulated: res-hdr=0, res-body=%d\r\n\r\n%s%x\r\n%s\r\n0\r\n\r\n", len(res), res, len(page), page)
			}()
		}
	}()
	return l.Addr().String()
}

func TestInspectBlocked(t *testing.T) {
	c, err := New(Config{Addr: blockingICAP(t), Service: "dlp", Timeout: 5 * time.Second, NoPreview: true})
	if err != nil {
		t.Fatal(err)
	}
	out, v, err := c.Inspect(context.Background(), true, "http://crm.internal/mcp", []byte(`{"ssn":"536-22-1846"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Blocked || v.Status != 403 || out != nil || v.Reason != "1" {
		t.Errorf("verdict %+v, out %q", v, out)
	}
}
