package siptest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
)

// Transfers reads the transfers a test's calls change, as the owner that
// created them, and waits for what the calls' goroutines record.
type Transfers struct {
	T     testing.TB
	Svc   *transfer.Service
	Owner string
}

// Get returns the transfer id, failing the test if it cannot.
func (x Transfers) Get(id string) *transfer.Transfer {
	x.T.Helper()
	tr, err := x.Svc.Get(context.Background(), x.Owner, id)
	if err != nil {
		x.T.Fatal(err)
	}
	return tr
}

// WaitStatus polls until the transfer reads want (a call's end is recorded
// after its BYE exchange).
func (x Transfers) WaitStatus(id string, want transfer.Status) *transfer.Transfer {
	x.T.Helper()
	var tr *transfer.Transfer
	testenv.Eventually(x.T, fmt.Sprintf("transfer %s reaches %s", id, want), func() bool {
		tr = x.Get(id)
		return tr.StatusAt(x.Svc.Now()) == want
	})
	return tr
}

// WaitReturn polls until the transfer records how its call was handed back.
func (x Transfers) WaitReturn(id string) *transfer.Transfer {
	x.T.Helper()
	var tr *transfer.Transfer
	testenv.Eventually(x.T, "return of "+id+" recorded", func() bool {
		tr = x.Get(id)
		return tr.Return != nil && tr.Return.Result != ""
	})
	return tr
}

// StopOnCleanup shuts a SIP server down when the test ends (up to 10 s for
// its calls), then checks every RTP port pair went back to the pool and
// closes the store.
func StopOnCleanup(t testing.TB, shutdown func(context.Context) error, portsInUse func() int, closeStore func() error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := portsInUse(); n != 0 {
			t.Errorf("%d RTP port pairs still in use after shutdown", n)
		}
		_ = closeStore()
	})
}
