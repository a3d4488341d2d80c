package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// benchTarget is an MCP endpoint with an initialized 2025-11-25 session.
type benchTarget struct {
	url, sid, auth string
	client         *http.Client
	modern         bool // 2026-07-28: no session, _meta and headers on every request
}

func newTarget(b *testing.B, url, auth string) *benchTarget {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	bt := &benchTarget{url: url, auth: auth, client: &http.Client{Transport: tr}}
	b.Cleanup(tr.CloseIdleConnections)
	res := bt.post(b, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	bt.sid = res.Header.Get(mcp.HeaderSessionID)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	res = bt.post(b, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	res.Body.Close()
	return bt
}

func (bt *benchTarget) post(b *testing.B, body string) *http.Response {
	req, _ := http.NewRequest("POST", bt.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
	if bt.sid != "" {
		req.Header.Set(mcp.HeaderSessionID, bt.sid)
	}
	if bt.auth != "" {
		req.Header.Set("Authorization", "Bearer "+bt.auth)
	}
	res, err := bt.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func (bt *benchTarget) call(b *testing.B, tool string) {
	var res *http.Response
	if bt.modern {
		req, _ := http.NewRequest("POST", bt.url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"`+tool+`","arguments":{"id":"T-1"},`+modernMeta+`}}`))
		for k, v := range modernHeaders("tools/call", tool) {
			req.Header.Set(k, v)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+bt.auth)
		var err error
		if res, err = bt.client.Do(req); err != nil {
			b.Fatal(err)
		}
	} else {
		res = bt.post(b, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"`+tool+`","arguments":{"id":"T-1"}}}`)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(body, []byte("ticket T-1")) {
		b.Fatalf("call %s: %d %s", tool, res.StatusCode, body)
	}
}

func benchCalls(b *testing.B, bt *benchTarget, tool string) {
	bt.call(b, tool) // warm: upstream connection, catalog
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		bt.call(b, tool)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkToolsCall compares one tools/call sent directly to an SDK
// upstream with the same call through the gateway (authn, session, policy,
// catalog lookup, decision record, pooled upstream connection). The
// difference of the two ns/op is the added latency.
func BenchmarkToolsCall(b *testing.B) {
	e := newEnv(b, nil)
	b.Run("direct", func(b *testing.B) {
		benchCalls(b, newTarget(b, e.ups["helpdesk"].url(), ""), "get_ticket")
	})
	b.Run("gateway", func(b *testing.B) {
		benchCalls(b, newTarget(b, e.endpoint("support"), e.key), "helpdesk_get_ticket")
	})
	b.Run("gateway-2026-07-28", func(b *testing.B) {
		bt := &benchTarget{url: e.endpoint("support"), auth: e.key, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, modern: true}
		benchCalls(b, bt, "helpdesk_get_ticket")
	})
	b.Run("gateway-parallel", func(b *testing.B) {
		bt := newTarget(b, e.endpoint("support"), e.key)
		bt.call(b, "helpdesk_get_ticket")
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bt.call(b, "helpdesk_get_ticket")
			}
		})
	})
}
