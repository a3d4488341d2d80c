package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// ErrNotDurable: a record was taken but could not be made durable in time
// (WriteDurable). The record stays in the trail's buffer or replication
// queue and is retried; the call it records was refused.
var ErrNotDurable = errors.New("audit: record not durable")

// durability tracks the highest seq that is durable as the log's mode
// requires: fsynced locally without a Replicator, committed by raft with
// one. WriteDurable waits on it; Down reports from it.
type durability struct {
	mu        sync.Mutex
	committed uint64
	wake      chan struct{} // closed and replaced on every change
	err       error         // the newest flush or replication failure, until a success
	errAt     time.Time
	taken     uint64    // the highest seq taken
	oldest    time.Time // when the oldest record not yet committed was taken
}

func (d *durability) init(seq uint64) {
	d.mu.Lock()
	d.committed, d.taken, d.wake = seq, seq, make(chan struct{})
	d.mu.Unlock()
}

// pending notes that seq was taken.
func (d *durability) pending(seq uint64) {
	d.mu.Lock()
	if d.taken == d.committed {
		d.oldest = time.Now()
	}
	d.taken = seq
	d.mu.Unlock()
}

// commit records that every record through seq is durable.
func (d *durability) commit(seq uint64) {
	d.mu.Lock()
	if seq > d.committed {
		d.committed = seq
		d.oldest = time.Now() // the next pending record waits from now at most
	}
	d.err = nil
	close(d.wake)
	d.wake = make(chan struct{})
	d.mu.Unlock()
}

// fail records that an attempt to make records durable failed.
func (d *durability) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.errAt = time.Now()
	}
	d.err = err
	close(d.wake)
	d.wake = make(chan struct{})
	d.mu.Unlock()
}

// wait blocks until seq is durable, timeout passes, or ctx ends. A failed
// attempt does not end it: the record is retried (a raft leader change
// fails one proposal, and the retry through the next leader commits it).
func (d *durability) wait(ctx context.Context, seq uint64, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		d.mu.Lock()
		committed, wake, last := d.committed, d.wake, d.err
		d.mu.Unlock()
		if committed >= seq {
			return nil
		}
		select {
		case <-wake:
		case <-t.C:
			if last != nil {
				return fmt.Errorf("%w: record %d not durable within %s: %w", ErrNotDurable, seq, timeout, last)
			}
			return fmt.Errorf("%w: record %d not durable within %s (no quorum, or the disk is too slow)", ErrNotDurable, seq, timeout)
		case <-ctx.Done():
			return fmt.Errorf("%w: record %d: %w", ErrNotDurable, seq, ctx.Err())
		}
	}
}

// downGrace is how long attempts must have been failing before Down
// reports the trail down (a raft election takes about a second).
const downGrace = time.Second

// writeDurable appends d's record and returns once it is durable: fsynced
// to the local trail, and with a Replicator committed by raft (on a
// quorum of nodes). It makes Run flush at once (Config.Strict). It fails
// with an error matching ErrNotDurable (naming the last failure) when the
// record is not durable within Config.StrictTimeout; the record then stays
// queued and is retried, so the trail may hold a record of a call that was
// refused. StrictSink's WriteDurable.
func (l *Log) writeDurable(ctx context.Context, d gateway.Decision) error {
	seq, _, err := l.take(recordOf(&d, l.cfg.Node))
	if err != nil {
		return err
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return l.dur.wait(ctx, seq, l.cfg.StrictTimeout)
}

// Down reports why the trail cannot make records durable now, or nil:
// flush or replication attempts have failed for more than a second (or
// StrictTimeout, if shorter) and none succeeded since, or a record has
// waited longer than StrictTimeout. In strict mode the node refuses new
// calls while it is not nil.
func (l *Log) Down() error {
	d := &l.dur
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil && time.Since(d.errAt) >= min(downGrace, l.cfg.StrictTimeout) {
		return fmt.Errorf("audit: records cannot be made durable since %s: %w", d.errAt.UTC().Format(time.RFC3339), d.err)
	}
	if d.taken > d.committed && time.Since(d.oldest) > l.cfg.StrictTimeout {
		return fmt.Errorf("audit: %d records have waited more than %s to be made durable", d.taken-d.committed, l.cfg.StrictTimeout)
	}
	return nil
}

// Committed is the highest seq durable as the mode requires.
func (l *Log) Committed() uint64 {
	l.dur.mu.Lock()
	defer l.dur.mu.Unlock()
	return l.dur.committed
}

// StrictSink is l as a gateway.DurableSink: the gateway waits for each
// record (WriteDurable) before it answers. The Log itself is a plain Sink
// (the async mode).
func (l *Log) StrictSink() gateway.DurableSink { return strictSink{l} }

type strictSink struct{ l *Log }

func (s strictSink) Write(d gateway.Decision) error { return s.l.Write(d) }

func (s strictSink) WriteDurable(ctx context.Context, d gateway.Decision) error {
	return s.l.writeDurable(ctx, d)
}

var _ gateway.DurableSink = strictSink{}
