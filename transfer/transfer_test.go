package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// storeKind is one Store implementation the store tests run against.
type storeKind struct {
	name string
	// place returns a function that opens the same store (same file, same
	// Redis and key prefix) each time it is called, so a test can reopen it.
	place func(t *testing.T) func(quarantine time.Duration) (Store, error)
}

var storeKinds = []storeKind{
	{"bolt", func(t *testing.T) func(time.Duration) (Store, error) {
		path := filepath.Join(t.TempDir(), "handoff.db")
		return func(q time.Duration) (Store, error) { return OpenBolt(path, BoltOptions{Quarantine: q}) }
	}},
	{"redis", func(t *testing.T) func(time.Duration) (Store, error) {
		url := testRedis(t).URL()
		prefix := "test:" + t.Name() + ":"
		return func(q time.Duration) (Store, error) {
			return OpenRedis(context.Background(), url, RedisOptions{Prefix: prefix, Quarantine: q})
		}
	}},
}

// forEachStore runs test as a subtest per Store implementation.
func forEachStore(t *testing.T, test func(t *testing.T, k storeKind)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { test(t, k) })
	}
}

// openStore opens a fresh store of kind k, closed when t ends.
func openStore(t *testing.T, k storeKind, quarantine time.Duration) Store {
	t.Helper()
	st, err := k.place(t)(quarantine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newTestService(t *testing.T, k storeKind, pools map[string][]string, quarantine time.Duration) (*Service, *clock, Store) {
	t.Helper()
	st := openStore(t, k, quarantine)
	c := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	svc := NewService(st, ServiceConfig{TTL: time.Minute, ClaimTTL: 10 * time.Second, Clock: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err := svc.SetNumbers(context.Background(), pools); err != nil {
		t.Fatal(err)
	}
	return svc, c, st
}

func phoneReq(id string) CreateRequest {
	return CreateRequest{ID: id, ExternalConversationID: "conv-" + id, Type: TypePhoneNumber, Country: "US"}
}

func TestTransitions(t *testing.T) {
	now := time.Now()
	cases := []struct {
		from, to Status
		ok       bool
	}{
		{StatusActive, StatusOngoing, true},
		{StatusActive, StatusExpired, true},
		{StatusActive, StatusCompleted, false},
		{StatusOngoing, StatusCompleted, true},
		{StatusOngoing, StatusExpired, false},
		{StatusOngoing, StatusActive, false},
		{StatusCompleted, StatusOngoing, false},
		{StatusExpired, StatusOngoing, false},
		{StatusExpired, StatusActive, false},
	}
	for _, c := range cases {
		tr := &Transfer{Status: c.from, ExpiresAt: now.Add(time.Hour)}
		err := tr.Transition(c.to, now)
		if (err == nil) != c.ok {
			t.Errorf("%s -> %s: err=%v, want ok=%v", c.from, c.to, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("%s -> %s: error %v is not ErrIllegalTransition", c.from, c.to, err)
		}
	}
	tr := &Transfer{Status: StatusActive, ExpiresAt: now}
	if got := tr.StatusAt(now); got != StatusExpired {
		t.Fatalf("ACTIVE past expiry reads %s, want EXPIRED", got)
	}
	if err := tr.Transition(StatusOngoing, now); err == nil {
		t.Fatal("an expired transfer went ONGOING")
	}
	tr.Claim = &Claim{CallID: "c1", ExpiresAt: now.Add(time.Second)}
	if got := tr.StatusAt(now); got != StatusActive {
		t.Fatalf("claimed transfer past expiry reads %s, want ACTIVE", got)
	}
}

func TestExpandPools(t *testing.T) {
	got, err := ExpandPools(map[string][]string{"US": {"+19995550100-+19995550102", "+19995550200"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"+19995550100", "+19995550101", "+19995550102", "+19995550200"}
	if fmt.Sprint(got["US"]) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got["US"], want)
	}
	for _, bad := range []map[string][]string{
		{"us": {"+1999"}},
		{"US": {"19995550100"}},
		{"US": {"+19995550102-+19995550100"}},
		{"US": {"+1999555010-+19995550100"}},
		{"US": {"+10000000000-+19999999999"}},
		{"US": {"+19995550100"}, "CA": {"+19995550100"}},
	} {
		if _, err := ExpandPools(bad); err == nil {
			t.Errorf("ExpandPools(%v) accepted a bad pool", bad)
		}
	}
}

func TestCreateReplayConflictOwnership(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, _, _ := newTestService(t, k, map[string][]string{"US": {"+19995550100-+19995550101"}}, time.Minute)
		ctx := context.Background()
		first, replayed, err := svc.Create(ctx, "ivr", phoneReq("t1"))
		if err != nil || replayed {
			t.Fatalf("create: %v replayed=%v", err, replayed)
		}
		if first.PhoneNumber.TransferNumber == "" || first.Status != StatusActive {
			t.Fatalf("bad first transfer %+v", first)
		}
		again, replayed, err := svc.Create(ctx, "ivr", phoneReq("t1"))
		if err != nil || !replayed || again.PhoneNumber.TransferNumber != first.PhoneNumber.TransferNumber {
			t.Fatalf("replay: %v replayed=%v %+v", err, replayed, again)
		}
		changed := phoneReq("t1")
		changed.ExternalConversationID = "other"
		if _, _, err := svc.Create(ctx, "ivr", changed); !errors.Is(err, ErrExists) {
			t.Fatalf("conflicting reuse: %v, want ErrExists", err)
		}
		if _, _, err := svc.Create(ctx, "other-ivr", phoneReq("t1")); !errors.Is(err, ErrExists) {
			t.Fatalf("reuse by another owner: %v, want ErrExists", err)
		}
		if _, err := svc.Get(ctx, "other-ivr", "t1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another owner's get: %v, want ErrNotFound", err)
		}
		if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: "t2", Type: TypePhoneNumber, Country: "FR"}); !errors.Is(err, ErrUnknownCountry) {
			t.Fatalf("unknown country: %v", err)
		}
	})
}

// leaseTally records concurrent creates: which transfer got each number
// and how many were refused for want of one. A number leased twice fails t.
type leaseTally struct {
	mu      sync.Mutex
	got     map[string]string // number -> transfer id
	refused int
}

func (l *leaseTally) record(t *testing.T, tr *Transfer, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case errors.Is(err, ErrNoNumber):
		l.refused++
	case err != nil:
		t.Error(err)
	default:
		if l.got == nil {
			l.got = map[string]string{}
		}
		if prev, dup := l.got[tr.PhoneNumber.TransferNumber]; dup {
			t.Errorf("number %s leased to %s and %s", tr.PhoneNumber.TransferNumber, prev, tr.ID)
		}
		l.got[tr.PhoneNumber.TransferNumber] = tr.ID
	}
}

func TestLeaseExclusiveUnderConcurrency(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, _, st := newTestService(t, k, map[string][]string{"US": {"+19995550100-+19995550119"}}, time.Minute)
		ctx := context.Background()
		var wg sync.WaitGroup
		var leases leaseTally
		for i := range 100 {
			wg.Go(func() {
				tr, _, err := svc.Create(ctx, "ivr", phoneReq(fmt.Sprintf("c%d", i)))
				leases.record(t, tr, err)
			})
		}
		wg.Wait()
		if len(leases.got) != 20 || leases.refused != 80 {
			t.Fatalf("leased %d numbers, %d refused; want 20 and 80", len(leases.got), leases.refused)
		}
		stats, err := st.PoolStats(ctx, svc.Now())
		if err != nil || stats["US"].Leased != 20 || stats["US"].Free != 0 {
			t.Fatalf("pool stats %+v %v", stats, err)
		}
	})
}

func TestCallLifeCycleAndQuarantine(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, clk, st := newTestService(t, k, map[string][]string{"US": {"+19995550100"}}, 30*time.Second)
		ctx := context.Background()
		tr, _, err := svc.Create(ctx, "ivr", phoneReq("t1"))
		if err != nil {
			t.Fatal(err)
		}
		number := tr.PhoneNumber.TransferNumber
		if found, err := svc.FindByNumber(ctx, number); err != nil || found.ID != "t1" {
			t.Fatalf("find by number: %v %+v", err, found)
		}
		if _, err := svc.Claim(ctx, "t1", "call-a", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Claim(ctx, "t1", "call-b", ""); !errors.Is(err, ErrClaimed) {
			t.Fatalf("second claim: %v, want ErrClaimed", err)
		}
		// CANCEL before answer: the transfer stays ACTIVE for a retry.
		if err := svc.Unclaim(ctx, "t1", "call-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Claim(ctx, "t1", "call-b", ""); err != nil {
			t.Fatalf("retry claim: %v", err)
		}
		if _, err := svc.Answer(ctx, "t1", "call-a"); err == nil {
			t.Fatal("a call without the claim answered the transfer")
		}
		on, err := svc.Answer(ctx, "t1", "call-b")
		if err != nil || on.Status != StatusOngoing || on.CallReceivedAt.IsZero() {
			t.Fatalf("answer: %v %+v", err, on)
		}
		// The lease ended: the number no longer finds the transfer, and rests.
		if _, err := svc.FindByNumber(ctx, number); !errors.Is(err, ErrNotFound) {
			t.Fatalf("number still leased after answer: %v", err)
		}
		if _, _, err := svc.Create(ctx, "ivr", phoneReq("t2")); !errors.Is(err, ErrNoNumber) {
			t.Fatalf("number leased during quarantine: %v", err)
		}
		if _, err := svc.Claim(ctx, "t1", "call-c", ""); !errors.Is(err, ErrClaimed) {
			t.Fatalf("claim of an ongoing transfer: %v, want ErrClaimed", err)
		}
		done, err := svc.Complete(ctx, "t1", EndAgentFinished, &OutputContext{TransferType: "SYSTEM"}, nil)
		if err != nil || done.Status != StatusCompleted || done.CompletedAt.IsZero() || done.EndReason != EndAgentFinished {
			t.Fatalf("complete: %v %+v", err, done)
		}
		if _, err := svc.Complete(ctx, "t1", EndAgentFinished, nil, nil); !errors.Is(err, ErrIllegalTransition) {
			t.Fatalf("second complete: %v", err)
		}
		clk.Add(31 * time.Second)
		t2, _, err := svc.Create(ctx, "ivr", phoneReq("t2"))
		if err != nil || t2.PhoneNumber.TransferNumber != number {
			t.Fatalf("after quarantine: %v %+v", err, t2)
		}
		stats, _ := st.PoolStats(ctx, svc.Now())
		if stats["US"].Leased != 1 {
			t.Fatalf("stats %+v", stats)
		}
	})
}

func TestExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, clk, st := newTestService(t, k, map[string][]string{"US": {"+19995550100"}}, 30*time.Second)
		ctx := context.Background()
		if _, _, err := svc.Create(ctx, "ivr", phoneReq("t1")); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
		got, _ := svc.Get(ctx, "ivr", "t1")
		if got.StatusAt(svc.Now()) != StatusExpired {
			t.Fatalf("read %s before the sweep, want EXPIRED", got.StatusAt(svc.Now()))
		}
		if _, err := svc.Claim(ctx, "t1", "late-call", ""); !errors.Is(err, ErrNotActive) {
			t.Fatalf("claim after expiry: %v", err)
		}
		if _, err := svc.FindByNumber(ctx, "+19995550100"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired lease still found: %v", err)
		}
		n, err := svc.SweepExpired(ctx)
		if err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		got, _ = svc.Get(ctx, "ivr", "t1")
		if got.Status != StatusExpired {
			t.Fatalf("stored status %s", got.Status)
		}
		counts, _ := st.Counts(ctx)
		if counts[StatusExpired] != 1 || counts[StatusActive] != 0 {
			t.Fatalf("counts %v", counts)
		}
		// Quarantine runs from the expiry, not the sweep.
		if _, _, err := svc.Create(ctx, "ivr", phoneReq("t2")); !errors.Is(err, ErrNoNumber) {
			t.Fatalf("number reused inside quarantine: %v", err)
		}
		clk.Add(30 * time.Second)
		if _, _, err := svc.Create(ctx, "ivr", phoneReq("t2")); err != nil {
			t.Fatalf("number not back after quarantine: %v", err)
		}
	})
}

func TestStoreSurvivesReopen(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		open := k.place(t)
		st, err := open(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		pools, _ := ExpandPools(map[string][]string{"US": {"+19995550100-+19995550101"}})
		if err := st.SetNumbers(context.Background(), pools, time.Now()); err != nil {
			t.Fatal(err)
		}
		svc := NewService(st, ServiceConfig{Logger: slog.New(slog.DiscardHandler)})
		tr, _, err := svc.Create(context.Background(), "ivr", phoneReq("t1"))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		st, err = open(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.SetNumbers(context.Background(), pools, time.Now()); err != nil {
			t.Fatal(err)
		}
		svc = NewService(st, ServiceConfig{Logger: slog.New(slog.DiscardHandler)})
		got, err := svc.FindByNumber(context.Background(), tr.PhoneNumber.TransferNumber)
		if err != nil || got.ID != "t1" {
			t.Fatalf("lease lost on reopen: %v", err)
		}
		// The other number is the only one left.
		t2, _, err := svc.Create(context.Background(), "ivr", phoneReq("t2"))
		if err != nil || t2.PhoneNumber.TransferNumber == tr.PhoneNumber.TransferNumber {
			t.Fatalf("second lease: %v %+v", err, t2)
		}
	})
}

func TestSetNumbersRetiresBusyNumbers(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, _, _ := newTestService(t, k, map[string][]string{"US": {"+19995550100", "+19995550101"}}, time.Minute)
		ctx := context.Background()
		tr, _, err := svc.Create(ctx, "ivr", phoneReq("t1"))
		if err != nil {
			t.Fatal(err)
		}
		// Reconfigure with neither number: the leased one keeps serving t1.
		if err := svc.SetNumbers(ctx, map[string][]string{"US": {"+19995550199"}}); err != nil {
			t.Fatal(err)
		}
		if got, err := svc.FindByNumber(ctx, tr.PhoneNumber.TransferNumber); err != nil || got.ID != "t1" {
			t.Fatalf("retired number lost its transfer: %v", err)
		}
		t2, _, err := svc.Create(ctx, "ivr", phoneReq("t2"))
		if err != nil || t2.PhoneNumber.TransferNumber != "+19995550199" {
			t.Fatalf("lease after reconfig: %v %+v", err, t2)
		}
	})
}

func TestEndOrphansAfterRestart(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, _, _ := newTestService(t, k, map[string][]string{"US": {"+19995550100"}}, time.Minute)
		ctx := context.Background()
		for _, id := range []string{"mine", "other"} {
			if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: id, ExternalConversationID: id, Type: TypeSIP}); err != nil {
				t.Fatal(err)
			}
		}
		node := map[string]string{"mine": "node-a", "other": "node-b"}
		for id, n := range node {
			if _, err := svc.Claim(ctx, id, "call-"+id, n); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Answer(ctx, id, "call-"+id); err != nil {
				t.Fatal(err)
			}
		}
		n, err := svc.EndOrphans(ctx, "node-a")
		if err != nil || n != 1 {
			t.Fatalf("EndOrphans: %d %v", n, err)
		}
		mine, _ := svc.Get(ctx, "ivr", "mine")
		other, _ := svc.Get(ctx, "ivr", "other")
		if mine.Status != StatusCompleted || mine.EndReason != EndNodeRestarted || other.Status != StatusOngoing {
			t.Fatalf("mine %s/%s, other %s", mine.Status, mine.EndReason, other.Status)
		}
	})
}

func TestPurgeAfterRetention(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		st := openStore(t, k, time.Minute)
		c := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
		svc := NewService(st, ServiceConfig{TTL: time.Minute, Retention: time.Hour, Clock: c.Now, Logger: slog.New(slog.DiscardHandler)})
		ctx := context.Background()
		for _, id := range []string{"done", "expired", "talking", "waiting"} {
			if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: id, ExternalConversationID: id, Type: TypeSIP}); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"done", "talking"} {
			if _, err := svc.Claim(ctx, id, "call-"+id, "n1"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Answer(ctx, id, "call-"+id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.Complete(ctx, "done", EndCallerHangup, nil, nil); err != nil {
			t.Fatal(err)
		}
		c.Add(2 * time.Minute) // "expired" and "waiting" pass their expiry
		if _, err := svc.SweepExpired(ctx); err != nil {
			t.Fatal(err)
		}
		// Within the retention nothing goes.
		if n, err := svc.PurgeEnded(ctx); err != nil || n != 0 {
			t.Fatalf("purge inside the retention: %d %v", n, err)
		}
		c.Add(time.Hour)
		if n, err := svc.PurgeEnded(ctx); err != nil || n != 3 {
			t.Fatalf("purge after the retention: %d %v, want 3 (done, expired, waiting)", n, err)
		}
		for _, id := range []string{"done", "expired", "waiting"} {
			if _, err := svc.Get(ctx, "ivr", id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s after the purge: %v", id, err)
			}
		}
		if tr, err := svc.Get(ctx, "ivr", "talking"); err != nil || tr.Status != StatusOngoing {
			t.Fatalf("an ONGOING transfer was purged: %v", err)
		}
		counts, err := st.Counts(ctx)
		if err != nil || counts[StatusCompleted] != 0 || counts[StatusExpired] != 0 || counts[StatusOngoing] != 1 {
			t.Fatalf("counts after the purge: %v %v", counts, err)
		}
		// Nothing is purged twice.
		if n, _ := svc.PurgeEnded(ctx); n != 0 {
			t.Fatalf("second purge removed %d", n)
		}
	})
}
