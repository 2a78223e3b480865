package transfer

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openGroupCommit(t *testing.T) *groupCommit {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return &groupCommit{db: db}
}

// Writes that arrive while a commit runs share the next one, and each gets
// its own answer: a write that failed before changing anything does not
// undo the others, and one that failed half-way is rolled back alone.
func TestGroupCommitAnswersEachWrite(t *testing.T) {
	g := openGroupCommit(t)
	var commits int
	hold, holding := make(chan struct{}), make(chan struct{})
	// Hold the first commit open so the next writes queue behind it.
	first := make(chan error, 1)
	go func() {
		first <- g.do(func(tx *bolt.Tx) error {
			commits++
			close(holding)
			<-hold
			return tx.Bucket([]byte("b")).Put([]byte("first"), []byte("1"))
		})
	}()
	<-holding
	errClean, errHalf := errors.New("clean"), errors.New("half")
	var wg sync.WaitGroup
	answers := make([]error, 10)
	txOf := make([]int, len(answers)) // the transaction of each write's last run
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = g.do(func(tx *bolt.Tx) error {
				txOf[i] = tx.ID()
				b := tx.Bucket([]byte("b"))
				switch i {
				case 3:
					return untouched{errClean}
				case 7:
					if err := b.Put([]byte("half"), []byte("x")); err != nil {
						return err
					}
					return errHalf
				}
				return b.Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
			})
		}()
	}
	for {
		g.mu.Lock()
		n := len(g.queue)
		g.mu.Unlock()
		if n == len(answers) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range answers {
		want := error(nil)
		switch i {
		case 3:
			want = errClean
		case 7:
			want = errHalf
		}
		if err != want {
			t.Errorf("write %d answered %v, want %v", i, err, want)
		}
	}
	if commits != 1 {
		t.Errorf("the first write ran %d times", commits)
	}
	// The eight writes that committed share one transaction (the group's
	// second run, without write 7): committed apart, each would have its
	// own id (bbolt numbers committed write transactions).
	for i, id := range txOf {
		if i != 3 && i != 7 && id != txOf[0] {
			t.Errorf("write %d committed in transaction %d, write 0 in %d: not one group", i, id, txOf[0])
		}
	}
	err := g.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		if b.Get([]byte("half")) != nil {
			return errors.New("the half-done write was kept")
		}
		for i := range answers {
			if got := b.Get(fmt.Appendf(nil, "k%d", i)); (got != nil) != (i != 3 && i != 7) {
				return fmt.Errorf("k%d = %q", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The committer ends with its queue (goleak checks it at the end too).
	for i := 0; ; i++ {
		g.mu.Lock()
		running := g.running
		g.mu.Unlock()
		if !running {
			break
		}
		if i == 1000 {
			t.Fatal("the committer still runs with nothing queued")
		}
		time.Sleep(time.Millisecond)
	}
}
