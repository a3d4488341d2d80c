package dlpqa

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// realisticClean returns a document modelled on what tools really return
// and that holds nothing sensitive: commit and blob hashes, Kubernetes
// objects, order rows with SKUs, ISBNs and tracking numbers, stack traces,
// base64 blobs, epoch timestamps, version strings. Everything a detector
// reports in it is a false positive.
func realisticClean(r *rand.Rand) Doc {
	hex := func(n int) string { return fromSet(r, "0123456789abcdef", n) }
	var v any
	kind := "json"
	switch r.IntN(6) {
	case 0:
		v = map[string]any{
			"sha": hex(40), "node_id": "C_kwDO" + fromSet(r, setAlnum, 30),
			"commit": map[string]any{
				"author":  map[string]any{"name": "Jane Doe", "date": fmt.Sprintf("2025-%02d-%02dT10:%02d:00Z", 1+r.IntN(12), 1+r.IntN(28), r.IntN(60))},
				"message": fmt.Sprintf("Fix parser regression in #%d (refs %s)", r.IntN(9000)+100, hex(7)),
				"tree":    map[string]any{"sha": hex(40)},
			},
			"stats": map[string]any{"additions": r.IntN(400), "deletions": r.IntN(200), "total": r.IntN(600)},
			"url":   "https://api.github.example/repos/acme/app/commits/" + hex(40),
		}
	case 1:
		v = map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{
				"name":              fmt.Sprintf("api-%s-%s", hex(9), fromSet(r, "bcdfghjklmnpqrstvwxz2456789", 5)),
				"uid":               fmt.Sprintf("%s-%s-%s-%s-%s", hex(8), hex(4), hex(4), hex(4), hex(12)),
				"resourceVersion":   fmt.Sprint(10000000 + r.IntN(90000000)),
				"creationTimestamp": fmt.Sprintf("2025-%02d-%02dT%02d:00:00Z", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24)),
				"labels":            map[string]any{"app": "api", "pod-template-hash": hex(10)},
			},
			"spec":   map[string]any{"containers": []any{map[string]any{"image": "registry.example/api@sha256:" + hex(64), "resources": map[string]any{"limits": map[string]any{"memory": "512Mi", "cpu": "500m"}}}}},
			"status": map[string]any{"phase": "Running", "startTime": fmt.Sprint(1700000000 + r.IntN(50000000))},
		}
	case 2:
		var rows []any
		for k := 0; k < 5; k++ {
			rows = append(rows, map[string]any{
				"order_id": 1000000 + r.IntN(9000000), "sku": fmt.Sprintf("SKU-%05d-%c", r.IntN(99999), 'A'+r.IntN(26)),
				"qty": 1 + r.IntN(5), "amount": float64(r.IntN(100000)) / 100, "currency": "EUR",
				"isbn":     "978-" + digits(r, 1) + "-" + digits(r, 3) + "-" + digits(r, 5) + "-" + digits(r, 1),
				"tracking": "1Z" + fromSet(r, setUpper+setDigits, 16), "created_ms": 1700000000000 + r.Int64N(5e10),
				"invoice": fmt.Sprintf("INV-2025-%06d", r.IntN(999999)),
			})
		}
		v = map[string]any{"rows": rows, "rowCount": len(rows), "elapsed_ms": r.IntN(300)}
	case 3:
		kind = "log"
		var sb strings.Builder
		fmt.Fprintf(&sb, "2025-06-%02d %02d:%02d:%02d,%03d ERROR [worker-%d] request req_%s failed after %dms\n", 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(16), hex(12), r.IntN(5000))
		fmt.Fprintf(&sb, "java.lang.IllegalStateException: retry budget exhausted (attempt %d of %d)\n", 3, 3)
		for k := 0; k < 6; k++ {
			fmt.Fprintf(&sb, "\tat com.example.billing.Service%d.handle(Service%d.java:%d)\n", k, k, 20+r.IntN(900))
		}
		fmt.Fprintf(&sb, "trace_id=%s span_id=%s build=%d.%d.%d commit=%s\n", hex(32), hex(16), r.IntN(5), r.IntN(30), r.IntN(300), hex(12))
		return Doc{Kind: kind, Text: []byte(sb.String())}
	case 4:
		kind = "code"
		img := make([]byte, 300)
		for i := range img {
			img[i] = byte(r.IntN(256))
		}
		src := fmt.Sprintf("// Package cache keeps computed digests.\npackage cache\n\nconst (\n\tmagic = 0x%s\n\tseed  = %d\n\tdigest = \"sha256:%s\"\n)\n\nvar logo = \"data:image/png;base64,%s\"\n\nfunc version() string { return \"%d.%d.%d\" }\n",
			strings.ToUpper(hex(8)), r.Int64N(1e15), hex(64), base64.StdEncoding.EncodeToString(img), r.IntN(5), r.IntN(20), r.IntN(99))
		return Doc{Kind: kind, Text: []byte(src)}
	default:
		v = map[string]any{
			"jsonrpc": "2.0", "id": r.IntN(1000),
			"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": fmt.Sprintf(
				"Ticket %d was escalated to tier %d at %02d:%02d. Customer reference %s, build %d.%d.%d, %d attachments (%d KB).",
				r.IntN(99999), 1+r.IntN(3), r.IntN(24), r.IntN(60), fromSet(r, setUpper+setDigits, 10), r.IntN(5), r.IntN(20), r.IntN(99), r.IntN(9), r.IntN(4000))}}},
		}
	}
	b, _ := json.Marshal(v)
	return Doc{Kind: kind, Text: b}
}

const (
	setDigits = "0123456789"
	setUpper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	setAlnum  = setDigits + setUpper + "abcdefghijklmnopqrstuvwxyz"
)

func fromSet(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

func digits(r *rand.Rand, n int) string { return fromSet(r, setDigits, n) }
