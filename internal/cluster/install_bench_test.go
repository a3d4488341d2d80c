package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// bigState is a store holding personas personas (each with a skill and an
// agent) and keys API keys, restored from a snapshot built here (building
// it through raft would take 100,000 commits).
func bigState(b *testing.B, personas, keys int) *state.Store {
	b.Helper()
	doc := func(kind, name string, spec any) map[string]any {
		return map[string]any{"apiVersion": "portcullis/v1", "kind": kind, "metadata": map[string]any{"name": name, "revision": 1}, "spec": spec}
	}
	objs := []any{doc("Upstream", "helpdesk", map[string]any{"url": "https://helpdesk.internal/mcp"})}
	for i := range personas {
		objs = append(objs,
			doc("Skill", fmt.Sprintf("skill-%d", i), map[string]any{"tools": []any{map[string]any{"tool": "helpdesk/get_ticket", "args": map[string]any{"project": map[string]any{"in": []string{"SUPPORT", fmt.Sprint(i)}}}}}}),
			doc("Persona", fmt.Sprintf("persona-%d", i), map[string]any{"description": "support agent for queue " + fmt.Sprint(i), "skills": []string{fmt.Sprintf("skill-%d", i)}}),
			doc("Agent", fmt.Sprintf("agent-%d", i), map[string]any{"persona": fmt.Sprintf("persona-%d", i)}))
	}
	var ks []any
	for i := range keys {
		ks = append(ks, map[string]any{"id": fmt.Sprintf("k%07d", i), "agent": fmt.Sprintf("agent-%d", i%personas), "hash": bytes.Repeat([]byte{byte(i)}, 32), "created": time.Now().UTC()})
	}
	raw, err := json.Marshal(map[string]any{"format": 1, "index": 1, "objects": objs, "keys": ks})
	if err != nil {
		b.Fatal(err)
	}
	s := state.NewStore(nil)
	if err := s.Restore(nopCloser{bytes.NewReader(raw)}); err != nil {
		b.Fatal(err)
	}
	return s
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// BenchmarkSnapshotInstall measures how long a new member takes to receive
// and apply the leader's snapshot of a large state (10,000 personas with
// their skills and agents, 100,000 API keys) over the mutual-TLS node port:
// from being added to raft until its state holds every key.
//
//	go test ./internal/cluster -run '^$' -bench SnapshotInstall -benchtime 1x
func BenchmarkSnapshotInstall(b *testing.B) {
	const personas, keys = 10000, 100000
	ca := newTestCA(b, "cluster CA")
	leaderState := bigState(b, personas, keys)
	n1 := startNode(b, filepath.Join(b.TempDir(), "1"), leaderState, true, func(c *Config) {
		c.TLS, c.Codec, c.TrailingLogs = ca.nodeTLS(b, "node-1"), state.OutcomeCodec{}, 1
		c.Logger = nil
	})
	ready(b, n1)
	// One committed entry, then a snapshot: a new member must install it.
	cmd, _, err := leaderState.Prepare(&state.Command{Op: state.OpAdminPut, Time: time.Now(), Admin: &state.AdminCredential{ID: "a", Hash: bytes.Repeat([]byte{1}, 32)}}, state.Node{})
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := cmd.Encode()
	if _, err := n1.Apply(context.Background(), enc); err != nil {
		b.Fatal(err)
	}
	if err := n1.Snapshot(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		fsm := state.NewStore(nil)
		id := fmt.Sprintf("node-%d", i+2)
		n := startNode(b, filepath.Join(b.TempDir(), id), fsm, false, func(c *Config) {
			c.NodeID, c.TLS, c.Codec, c.Logger = id, ca.nodeTLS(b, id), state.OutcomeCodec{}, nil
		})
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := n1.raft.AddNonvoter(raftID(id), raftAddr(n.Addr()), 0, time.Minute).Error(); err != nil {
			b.Fatal(err)
		}
		for len(fsm.Current().Keys) < keys {
			if ctx.Err() != nil {
				b.Fatalf("the new member holds %d of %d keys after 5 minutes", len(fsm.Current().Keys), keys)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		b.StopTimer()
		b.ReportMetric(time.Since(start).Seconds(), "s/install")
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))/(1<<20), "MiB-heap-added")
		if err := n1.RemoveServer(context.Background(), id); err != nil {
			b.Fatal(err)
		}
		n.Close()
	}
}

func raftID(s string) raft.ServerID        { return raft.ServerID(s) }
func raftAddr(s string) raft.ServerAddress { return raft.ServerAddress(s) }
