package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// TestUnknownCommandFormatStopsTheNode checks what happens when the log
// holds an entry of a format this binary does not know (as a newer leader
// would write): the node stops — Run returns the store's error, writes are
// refused — and a restart replays up to the entry and stops again, never
// applying anything after it.
func TestUnknownCommandFormatStopsTheNode(t *testing.T) {
	dir := t.TempDir()
	store := state.NewStore(testLogger(t))
	n := startNode(t, dir, store, true)
	ready(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	run := make(chan error, 1)
	go func() { run <- n.Run(ctx) }()

	good, _, err := store.Prepare(&state.Command{Op: state.OpSecretPut, Time: time.Unix(1700000000, 0).UTC(),
		Secret: &state.Secret{Name: "tok", Version: 1, Sealed: []byte("fake-ciphertext")}}, state.Node{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := good.Encode()
	if _, err := n.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	future := []byte(`{"v":99,"op":"secret.put","time":"2026-12-01T00:00:00Z","secret":{"name":"tok","version":2,"sealed":"eA=="}}`)
	if _, err := n.Apply(ctx, future); !errors.Is(err, state.ErrUnsupported) {
		t.Fatalf("apply of a format-99 entry: %v, want ErrUnsupported", err)
	}
	select {
	case err := <-run:
		if err == nil || !strings.Contains(err.Error(), "upgrade") {
			t.Fatalf("Run returned %v, want the halt explained", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the state machine halted")
	}
	if _, err := n.Apply(ctx, b); !errors.Is(err, state.ErrUnsupported) {
		t.Fatalf("write after the halt: %v, want it refused", err)
	}
	if _, err := store.Snapshot(); err == nil {
		t.Fatal("a halted store must not snapshot (it would compact the unapplied entry away)")
	}
	n.Close()

	// A restart with the same binary replays the log and halts again.
	store2 := state.NewStore(testLogger(t))
	n2 := startNode(t, dir, store2, true)
	select {
	case <-store2.Halted():
	case <-ctx.Done():
		t.Fatal("replaying the log did not halt the store")
	}
	if err := n2.Run(ctx); err == nil || !errors.Is(err, state.ErrUnsupported) {
		t.Fatalf("Run after replay: %v", err)
	}
	if s := store2.Current().Secrets["tok"]; s == nil || s.Version != 1 {
		t.Fatalf("state after replay: secret %+v, want version 1 (nothing after the unknown entry)", s)
	}
}
