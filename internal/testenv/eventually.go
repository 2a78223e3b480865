package testenv

import (
	"testing"
	"time"
)

// eventuallyLimit is generous: machines running -race under load are slow,
// and only a failing test ever waits this long.
const eventuallyLimit = 15 * time.Second

// Eventually polls cond until it holds, failing t with what it waited for
// after eventuallyLimit.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventuallyLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
