package transfer

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts the updates a store commits, and fails them while
// failing is set.
type countingStore struct {
	Store
	updates atomic.Int64
	failing atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (c *countingStore) Update(ctx context.Context, id string, now time.Time, fn func(*Transfer) error) (*Transfer, error) {
	if c.failing.Load() {
		return nil, errDiskFull
	}
	t, err := c.Store.Update(ctx, id, now, fn)
	if err == nil {
		c.updates.Add(1)
	}
	return t, err
}

// The embedded store serves one node: a claim and its unclaim write
// nothing, the answer writes the claim's node and Inbound in the one write
// that makes the transfer ONGOING, and readers see a claim held in memory
// as a stored one.
func TestEmbeddedClaimsWriteNothing(t *testing.T) {
	st := &countingStore{Store: openStore(t, storeKinds[0], 0)}
	c := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	svc := NewService(st, ServiceConfig{TTL: time.Minute, ClaimTTL: 10 * time.Second, Clock: c.Now, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: "t1", ExternalConversationID: "c", Type: TypeSIP}); err != nil {
		t.Fatal(err)
	}
	claimed, err := svc.ClaimWith(ctx, "t1", "call-a", "n1", testInbound("call-a"))
	if err != nil || claimed.Claim == nil || claimed.Inbound == nil {
		t.Fatalf("claim: %v %+v", err, claimed)
	}
	if _, err := svc.Claim(ctx, "t1", "call-b", "n1"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("second claim: %v, want ErrClaimed", err)
	}
	if err := svc.Unclaim(ctx, "t1", "call-a"); err != nil {
		t.Fatal(err)
	}
	c.Add(55 * time.Second) // the transfer expires at 1 min, this claim at 1 min 5 s
	if _, err := svc.ClaimWith(ctx, "t1", "call-b", "n1", testInbound("call-b")); err != nil {
		t.Fatal(err)
	}
	if n := st.updates.Load(); n != 0 {
		t.Fatalf("claims and unclaims wrote %d times, want 0", n)
	}
	// Past its expiry a claimed transfer reads ACTIVE, and the sweeper
	// leaves it to its call.
	c.Add(6 * time.Second)
	got, err := svc.Get(ctx, "ivr", "t1")
	if err != nil || got.StatusAt(svc.Now()) != StatusActive || got.Inbound.CallID != "call-b" {
		t.Fatalf("claimed transfer past expiry: %v %+v", err, got)
	}
	if n, err := svc.SweepExpired(ctx); err != nil || n != 0 {
		t.Fatalf("sweep expired %d (%v) claimed transfers", n, err)
	}
	on, err := svc.Answer(ctx, "t1", "call-b")
	if err != nil || on.Status != StatusOngoing || on.Node != "n1" || on.Inbound.CallID != "call-b" {
		t.Fatalf("answer: %v %+v", err, on)
	}
	if n := st.updates.Load(); n != 1 {
		t.Fatalf("the answer took %d writes, want 1", n)
	}
	if stored, _ := st.Get(ctx, "t1"); stored.Claim != nil || stored.Inbound == nil || stored.Node != "n1" {
		t.Fatalf("stored after the answer: %+v", stored)
	}
}

// A claim that lapsed lets another call claim, and is forgotten by the
// sweep.
func TestEmbeddedClaimLapses(t *testing.T) {
	svc, c, _ := newTestService(t, storeKinds[0], nil, 0)
	ctx := context.Background()
	if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: "t1", ExternalConversationID: "c", Type: TypeSIP}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Claim(ctx, "t1", "call-a", "n1"); err != nil {
		t.Fatal(err)
	}
	c.Add(11 * time.Second) // the test service's claim TTL is 10 s
	if _, err := svc.SweepExpired(ctx); err != nil {
		t.Fatal(err)
	}
	if len(svc.local.byID) != 0 {
		t.Fatalf("lapsed claims kept: %v", svc.local.byID)
	}
	if _, err := svc.Claim(ctx, "t1", "call-b", "n1"); err != nil {
		t.Fatalf("claim after the first lapsed: %v", err)
	}
	if _, err := svc.Answer(ctx, "t1", "call-a"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("the lapsed call answered: %v", err)
	}
}

// After a write failed for a reason of the store's own, claims are written
// again, so they fail too (the INVITE gets 503 before it is answered);
// the first write that succeeds makes them local again.
func TestEmbeddedClaimsWrittenWhileWritesFail(t *testing.T) {
	st := &countingStore{Store: openStore(t, storeKinds[0], 0)}
	svc := NewService(st, ServiceConfig{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for _, id := range []string{"t1", "t2", "t3"} {
		if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: id, ExternalConversationID: "c", Type: TypeSIP}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Claim(ctx, "t1", "call-1", "n1"); err != nil {
		t.Fatal(err)
	}
	st.failing.Store(true)
	if _, err := svc.Answer(ctx, "t1", "call-1"); !errors.Is(err, errDiskFull) {
		t.Fatalf("answer with the disk full: %v", err)
	}
	if _, err := svc.Claim(ctx, "t2", "call-2", "n1"); !errors.Is(err, errDiskFull) {
		t.Fatalf("claim after a failed write: %v, want the store's error", err)
	}
	st.failing.Store(false)
	if _, err := svc.Claim(ctx, "t2", "call-2", "n1"); err != nil {
		t.Fatalf("written claim once the disk works: %v", err)
	}
	if stored, _ := st.Get(ctx, "t2"); stored.Claim == nil || stored.Claim.CallID != "call-2" {
		t.Fatalf("the claim after a failure was not written: %+v", stored.Claim)
	}
	// The written claim answers (and unclaims) like a local one; the
	// successful write made claims local again.
	if _, err := svc.Claim(ctx, "t2", "call-x", "n1"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("second claim of a written claim: %v", err)
	}
	if _, err := svc.Answer(ctx, "t2", "call-2"); err != nil {
		t.Fatal(err)
	}
	before := st.updates.Load()
	if _, err := svc.Claim(ctx, "t3", "call-3", "n1"); err != nil || st.updates.Load() != before {
		t.Fatalf("claim once writes work again: %v, %d writes", err, st.updates.Load()-before)
	}
}
