package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestReachRemembersPeersThatTimedOut(t *testing.T) {
	var r reach
	const a, b = "10.0.0.1:9444", "10.0.0.2:9444"
	if got := r.timeout(a); got != rpcTimeout {
		t.Fatalf("timeout of a peer never called = %v, want %v", got, rpcTimeout)
	}
	timedOut := fmt.Errorf("Get https://%s/v1/status: %w", a, context.DeadlineExceeded)
	// A caller that gave up at once says nothing of the peer.
	r.done(a, time.Millisecond, fmt.Errorf("get: %w", context.Canceled))
	if got := r.timeout(a); got != rpcTimeout {
		t.Fatalf("after a call cancelled within 1ms: %v, want %v", got, rpcTimeout)
	}
	// Other errors (refused, TLS) come fast anyway and mark nothing.
	r.done(a, 2*time.Second, errors.New("connection refused"))
	if got := r.timeout(a); got != rpcTimeout {
		t.Fatalf("after a refused call: %v, want %v", got, rpcTimeout)
	}
	r.done(a, rpcTimeout, timedOut)
	if got := r.timeout(a); got != quickProbe {
		t.Fatalf("after a call that timed out: %v, want %v", got, quickProbe)
	}
	if got := r.timeout(b); got != rpcTimeout {
		t.Fatalf("another peer after a's timeout: %v, want %v", got, rpcTimeout)
	}
	r.done(a, quickProbe, timedOut)
	if got := r.timeout(a); got != quickProbe {
		t.Fatalf("after a quick probe timed out: %v, want %v", got, quickProbe)
	}
	r.done(a, time.Millisecond, nil)
	if got := r.timeout(a); got != rpcTimeout {
		t.Fatalf("after the peer answered: %v, want %v", got, rpcTimeout)
	}
	r.timedOut[a] = time.Now().Add(-reachMemory)
	if got := r.timeout(a); got != rpcTimeout {
		t.Fatalf("a timeout %v ago: %v, want %v", reachMemory, got, rpcTimeout)
	}
}
