package api

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkApply measures an admin write end to end: HTTP, YAML parsing and
// validation, one raft commit (fsync to raft-boltdb) and the FSM apply.
func BenchmarkApply(b *testing.B) {
	f := newFixture(b)
	client := &http.Client{}
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: up}\nspec: {url: 'http://127.0.0.1:%d/mcp'}\n", 1000+i%2)
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1/apply", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("apply: %v %v", resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/apply")
}

// BenchmarkList measures a read: list 200 skills as documents.
func BenchmarkList(b *testing.B) {
	f := newFixture(b)
	var docs bytes.Buffer
	docs.WriteString("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: up}\nspec: {url: 'http://127.0.0.1:9/mcp'}\n")
	for i := range 200 {
		fmt.Fprintf(&docs, "---\napiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s%d}\nspec: {tools: [{tool: up/t%d, args: {p: {in: [a, b]}}}]}\n", i, i)
	}
	if r := f.do("POST", "/v1/apply", "application/yaml", docs.Bytes()); r.status != 200 {
		b.Fatalf("seed: %d %s", r.status, r.raw)
	}
	client := &http.Client{}
	for b.Loop() {
		req, _ := http.NewRequest("GET", f.srv.URL+"/v1/skills", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("list: %v", err)
		}
		resp.Body.Close()
	}
}
