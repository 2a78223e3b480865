package webhooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// Several nodes claiming at once never hold one transfer together, and
// together deliver every event once, in order per transfer.
func concurrentNodes(t *testing.T, ob webhook.Outbox) {
	const transfers, perTransfer, nodes = 12, 5, 4
	for n := range perTransfer {
		for tr := range transfers {
			enqueue(t, ob, event(t, fmt.Sprintf("t%02d", tr), n))
		}
	}
	r := &tally{held: map[string]string{}, seen: map[string][]int{}}
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { r.drain(t, ob, fmt.Sprintf("node-%d", i)) })
	}
	wg.Wait()
	for tr := range transfers {
		id := fmt.Sprintf("t%02d", tr)
		if got := r.seen[id]; fmt.Sprint(got) != fmt.Sprint([]int{0, 1, 2, 3, 4}) {
			t.Errorf("%s delivered %v, want [0 1 2 3 4]", id, got)
		}
	}
}

type tally struct {
	mu   sync.Mutex
	held map[string]string // transfer -> node holding it
	seen map[string][]int  // transfer -> event numbers delivered
}

// drain claims and completes until the outbox is empty.
func (r *tally) drain(t *testing.T, ob webhook.Outbox, node string) {
	ctx := context.Background()
	now := base.Add(time.Hour)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		ds, err := ob.Claim(ctx, node, now, time.Hour, 3)
		if err != nil {
			t.Errorf("%s: Claim: %v", node, err)
			return
		}
		if len(ds) == 0 {
			if s, err := ob.Stats(ctx); err == nil && s.Depth == 0 {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		for _, d := range ds {
			r.take(t, node, d)
			runtime.Gosched() // let other nodes claim meanwhile
			r.release(d)
			if err := ob.Done(ctx, d.Lease, webhook.ResultDelivered); err != nil {
				t.Errorf("%s: Done(%s): %v", node, d.ID, err)
			}
		}
	}
	t.Errorf("%s: outbox not drained", node)
}

// take records a delivery and marks its transfer held by node, failing if
// another node holds it; release ends the hold, just before Done.
func (r *tally) take(t *testing.T, node string, d webhook.Delivery) {
	var body struct {
		Data struct{ N int } `json:"data"`
	}
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Errorf("body of %s: %v", d.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.held[d.TransferID]; ok {
		t.Errorf("%s claimed %s while %s holds it", node, d.TransferID, other)
	}
	r.held[d.TransferID] = node
	r.seen[d.TransferID] = append(r.seen[d.TransferID], body.Data.N)
}

func (r *tally) release(d webhook.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.held, d.TransferID)
}
