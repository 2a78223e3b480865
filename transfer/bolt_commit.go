package transfer

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommit runs the embedded store's writes in shared transactions, one
// commit (and fsync) at a time: every write that arrives while a commit
// runs goes into the next one, so a group grows with the commit time.
// bbolt's own Batch cuts a batch every MaxBatchDelay instead, and batches
// queued behind a slow fsync never merge: once a commit outlasts the delay
// each commit carries only the delay's worth of writes, the writes arrive
// faster than they commit, and the backlog grows without bound (measured:
// 4 400 calls waiting on their store write at 1 050 calls/s, a 2 ms delay,
// on this VM under load).
type groupCommit struct {
	db      *bolt.DB
	mu      sync.Mutex
	queue   []groupWrite
	running bool // a goroutine is committing; it takes the queue next
}

type groupWrite struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// untouched is an error a write returned before it changed anything: the
// group's other writes still commit, and the error is this write's answer.
type untouched struct{ err error }

func (u untouched) Error() string { return u.err.Error() }
func (u untouched) Unwrap() error { return u.err }

// do runs fn in a shared transaction and returns when it has committed,
// with fn's error or the commit's. Like bbolt's Batch, fn may run more than
// once (when another write of its group fails half-way), so it must not
// depend on side effects of an earlier run.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	w := groupWrite{fn: fn, err: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	return <-w.err
}

// run commits the queue, group after group, until it is empty.
func (g *groupCommit) run() {
	for {
		g.mu.Lock()
		group := g.queue
		g.queue = nil
		if len(group) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(group)
	}
}

// commit runs one group in one transaction. A write that fails after it
// may have changed something rolls the transaction back: it is run alone,
// and the rest of its group again without it.
func (g *groupCommit) commit(group []groupWrite) {
	answers := make([]error, len(group))
	failed := -1
	err := g.db.Update(func(tx *bolt.Tx) error {
		for i, w := range group {
			err := w.fn(tx)
			var u untouched
			switch {
			case errors.As(err, &u):
				answers[i] = u.err
			case err != nil:
				failed = i
				return err
			}
		}
		return nil
	})
	if failed >= 0 {
		group[failed].err <- unwrapUntouched(g.db.Update(group[failed].fn))
		if rest := append(group[:failed:failed], group[failed+1:]...); len(rest) > 0 {
			g.commit(rest)
		}
		return
	}
	for i, w := range group {
		if answers[i] != nil {
			w.err <- answers[i]
		} else {
			w.err <- err
		}
	}
}

func unwrapUntouched(err error) error {
	var u untouched
	if errors.As(err, &u) {
		return u.err
	}
	return err
}
