package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/redistest"
)

// testRedis starts a redis-server for t (skipped without one, failed in CI).
func testRedis(t *testing.T) *redistest.Server { return redistest.Start(t) }

// redisServices opens n services with separate clients on one Redis and
// one key prefix, as n nodes would.
func redisServices(t *testing.T, url string, n int, pools map[string][]string, quarantine time.Duration, clk *clock) []*Service {
	t.Helper()
	var out []*Service
	for range n {
		st, err := OpenRedis(context.Background(), url, RedisOptions{Prefix: "cluster:", Quarantine: quarantine})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg := ServiceConfig{TTL: time.Minute, ClaimTTL: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
		if clk != nil {
			cfg.Clock = clk.Now
		}
		svc := NewService(st, cfg)
		if err := svc.SetNumbers(context.Background(), pools); err != nil {
			t.Fatal(err)
		}
		out = append(out, svc)
	}
	return out
}

// Several nodes (separate clients) create at once: each number is leased
// once, the rest are refused, and after the quarantine the numbers go round
// again, still exclusively.
func TestRedisLeaseExclusiveAcrossClients(t *testing.T) {
	srv := testRedis(t)
	clk := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	nodes := redisServices(t, srv.URL(), 4, map[string][]string{"US": {"+19995550100-+19995550129"}, "CA": {"+12045550100-+12045550109"}}, time.Minute, clk)
	ctx := context.Background()
	round := func(r int) map[string]string {
		var wg sync.WaitGroup
		var leases leaseTally
		for i := range 160 {
			wg.Go(func() {
				req := phoneReq(fmt.Sprintf("r%d-c%d", r, i))
				if i%4 == 0 {
					req.Country = "CA"
				}
				tr, _, err := nodes[i%len(nodes)].Create(ctx, "ivr", req)
				leases.record(t, tr, err)
			})
		}
		wg.Wait()
		got := leases.got
		if len(got) != 40 || leases.refused != 120 {
			t.Fatalf("round %d: leased %d numbers, %d refused; want 40 and 120", r, len(got), leases.refused)
		}
		for number, id := range got {
			found, err := nodes[0].FindByNumber(ctx, number)
			if err != nil || found.ID != id {
				t.Fatalf("round %d: %s finds %v %v, want %s", r, number, found, err, id)
			}
		}
		return got
	}
	first := round(1)
	stats, err := nodes[1].Store().PoolStats(ctx, clk.Now())
	if err != nil || stats["US"] != (PoolStats{Leased: 30}) || stats["CA"] != (PoolStats{Leased: 10}) {
		t.Fatalf("pool stats %+v %v", stats, err)
	}
	// Half the calls arrive (the lease ends at the answer), on two nodes at once.
	var wg sync.WaitGroup
	i := 0
	for _, id := range first {
		i++
		if i%2 == 0 {
			continue
		}
		n := nodes[i%len(nodes)]
		wg.Go(func() {
			if _, err := n.Claim(ctx, id, "call-"+id, "node"); err != nil {
				t.Error(err)
				return
			}
			if _, err := n.Answer(ctx, id, "call-"+id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stats, _ = nodes[2].Store().PoolStats(ctx, clk.Now())
	if got := stats["US"].Leased + stats["CA"].Leased; got != 20 {
		t.Fatalf("leased after answers: %d (%+v), want 20", got, stats)
	}
	if got := stats["US"].Quarantined + stats["CA"].Quarantined; got != 20 {
		t.Fatalf("quarantined after answers: %d (%+v), want 20", got, stats)
	}
	// The rest expire; every node sweeps at once.
	clk.Add(time.Minute)
	var swept sync.Map
	for _, n := range nodes {
		wg.Go(func() {
			c, err := n.SweepExpired(ctx)
			if err != nil {
				t.Error(err)
			}
			swept.Store(n, c)
		})
	}
	wg.Wait()
	total := 0
	swept.Range(func(_, v any) bool { total += v.(int); return true })
	if total != 20 {
		t.Fatalf("sweepers expired %d transfers in all, want 20", total)
	}
	counts, _ := nodes[3].Store().Counts(ctx)
	if counts[StatusActive] != 0 || counts[StatusOngoing] != 20 || counts[StatusExpired] != 20 {
		t.Fatalf("counts %v", counts)
	}
	clk.Add(time.Minute)
	round(2)
}

// Two nodes receive INVITEs for one transfer at once: one claim wins.
func TestRedisClaimIsCompareAndSet(t *testing.T) {
	srv := testRedis(t)
	nodes := redisServices(t, srv.URL(), 2, map[string][]string{"US": {"+19995550100"}}, time.Minute, nil)
	ctx := context.Background()
	for r := range 20 {
		id := fmt.Sprintf("sip-%d", r)
		if _, _, err := nodes[0].Create(ctx, "ivr", CreateRequest{ID: id, Type: TypeSIP, SIP: &SIPReturn{ReturnTransferType: ReturnBye}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, busy := 0, 0
		for i := range 8 {
			wg.Go(func() {
				_, err := nodes[i%2].Claim(ctx, id, fmt.Sprintf("call-%d", i), fmt.Sprintf("node-%d", i%2))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, ErrClaimed):
					busy++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if won != 1 || busy != 7 {
			t.Fatalf("round %d: %d claims won, %d busy; want 1 and 7", r, won, busy)
		}
	}
}

// A node stops sending heartbeats: once its heartbeat is older than the
// limit, another node completes its ONGOING transfers as node_lost and
// leaves the live node's alone.
func TestRedisEndLostNodes(t *testing.T) {
	srv := testRedis(t)
	nodes := redisServices(t, srv.URL(), 2, map[string][]string{"US": {"+19995550100"}}, time.Minute, nil)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	start := func(svc *Service, id, node string) {
		t.Helper()
		if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: id, Type: TypeSIP, SIP: &SIPReturn{ReturnTransferType: ReturnBye}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Claim(ctx, id, "call-"+id, node); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Answer(ctx, id, "call-"+id); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		start(a, fmt.Sprintf("on-a-%d", i), "node-a")
	}
	start(b, "on-b", "node-b")
	const ttl, lostAfter = 300 * time.Millisecond, 500 * time.Millisecond
	for _, hb := range []struct {
		svc  *Service
		node string
	}{{a, "node-a"}, {b, "node-b"}} {
		if err := hb.svc.Heartbeat(ctx, hb.node, ttl); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.EndLostNodes(ctx, "node-b", lostAfter); err != nil || n != 0 {
		t.Fatalf("ended %d transfers of live nodes (%v)", n, err)
	}
	// node-b keeps beating through the grace period; node-a has died.
	deadline := time.Now().Add(lostAfter + 200*time.Millisecond)
	for time.Now().Before(deadline) {
		if err := b.Heartbeat(ctx, "node-b", ttl); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A node never ends its own calls, even if Redis last heard of it long ago.
	if n, err := a.EndLostNodes(ctx, "node-a", lostAfter); err != nil || n != 0 {
		t.Fatalf("node-a ended %d of its own transfers (%v)", n, err)
	}
	// Both survivors sweeping at once end each transfer once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 2 {
		wg.Go(func() {
			n, err := b.EndLostNodes(ctx, "node-b", lostAfter)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 3 {
		t.Fatalf("ended %d transfers of the lost node, want 3", total)
	}
	for i := range 3 {
		got, err := b.Get(ctx, "ivr", fmt.Sprintf("on-a-%d", i))
		if err != nil || got.Status != StatusCompleted || got.EndReason != EndNodeLost || got.CompletedAt.IsZero() {
			t.Fatalf("lost node's transfer: %v %+v", err, got)
		}
	}
	if got, _ := b.Get(ctx, "ivr", "on-b"); got.Status != StatusOngoing {
		t.Fatalf("live node's transfer is %s", got.Status)
	}
	// The lost node's own completion now fails: the transfer has moved on.
	if _, err := a.Complete(ctx, "on-a-0", EndCallerHangup, nil, nil); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("late completion by the lost node: %v", err)
	}
	if n, err := b.EndLostNodes(ctx, "node-b", lostAfter); err != nil || n != 0 {
		t.Fatalf("second pass ended %d (%v)", n, err)
	}
}

// RunNode on two nodes: when one stops, the other ends its calls.
func TestRedisRunNode(t *testing.T) {
	srv := testRedis(t)
	nodes := redisServices(t, srv.URL(), 2, map[string][]string{"US": {"+19995550100"}}, time.Minute, nil)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	cfg := func(id string) NodeConfig {
		return NodeConfig{ID: id, Interval: 50 * time.Millisecond, TTL: 200 * time.Millisecond, Grace: 100 * time.Millisecond}
	}
	actx, stopA := context.WithCancel(ctx)
	bctx, stopB := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopB()
	defer stopA()
	wg.Go(func() { a.RunNode(actx, cfg("node-a")) })
	wg.Go(func() { b.RunNode(bctx, cfg("node-b")) })
	for _, id := range []string{"x1", "x2"} {
		if _, _, err := a.Create(ctx, "ivr", CreateRequest{ID: id, Type: TypeSIP, SIP: &SIPReturn{ReturnTransferType: ReturnBye}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		svc      *Service
		id, node string
	}{{a, "x1", "node-a"}, {b, "x2", "node-b"}} {
		if _, err := c.svc.Claim(ctx, c.id, "call", c.node); err != nil {
			t.Fatal(err)
		}
		if _, err := c.svc.Answer(ctx, c.id, "call"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(600 * time.Millisecond) // both alive: nothing ends
	if got, _ := b.Get(ctx, "ivr", "x1"); got.Status != StatusOngoing {
		t.Fatalf("live node's transfer ended: %+v", got)
	}
	stopA()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := b.Get(ctx, "ivr", "x1")
		if err == nil && got.Status == StatusCompleted && got.EndReason == EndNodeLost {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lost node's transfer not ended: %v %+v", err, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, _ := b.Get(ctx, "ivr", "x2"); got.Status != StatusOngoing {
		t.Fatalf("surviving node's transfer is %s", got.Status)
	}
}

// The embedded store serves one node: the node functions do nothing.
func TestBoltNodeFunctionsAreNoOps(t *testing.T) {
	svc, _, _ := newTestService(t, storeKinds[0], map[string][]string{"US": {"+19995550100"}}, time.Minute)
	if err := svc.Heartbeat(context.Background(), "n", time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.EndLostNodes(context.Background(), "n", 0); n != 0 || err != nil {
		t.Fatalf("EndLostNodes: %d %v", n, err)
	}
	svc.RunNode(context.Background(), NodeConfig{ID: "n"}) // returns at once
}

// Redis goes away: every call fails with ErrUnavailable (the API's 503),
// and works again once Redis is back.
func TestRedisUnavailable(t *testing.T) {
	srv := testRedis(t)
	st, err := OpenRedis(context.Background(), srv.URL(), RedisOptions{Quarantine: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := NewService(st, ServiceConfig{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := svc.SetNumbers(ctx, map[string][]string{"US": {"+19995550100"}}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := svc.Ready(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ready with Redis down: %v", err)
	}
	if _, _, err := svc.Create(ctx, "ivr", phoneReq("t1")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("create with Redis down: %v", err)
	}
	if _, err := svc.Get(ctx, "ivr", "t1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get with Redis down: %v", err)
	}
	if _, err := svc.Complete(ctx, "t1", EndCallerHangup, nil, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("complete with Redis down: %v", err)
	}
	srv.Restart(t)
	if err := svc.Ready(ctx); err != nil {
		t.Fatalf("ready after restart: %v", err)
	}
}

// A refused reconfiguration changes nothing (the script checks first).
func TestRedisSetNumbersConflictChangesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		svc, _, st := newTestService(t, k, map[string][]string{"US": {"+19995550100", "+19995550101"}}, time.Minute)
		ctx := context.Background()
		tr, _, err := svc.Create(ctx, "ivr", phoneReq("t1"))
		if err != nil {
			t.Fatal(err)
		}
		busy := tr.PhoneNumber.TransferNumber
		err = svc.SetNumbers(ctx, map[string][]string{"US": {"+19995550150"}, "CA": {busy}})
		if err == nil {
			t.Fatal("a leased number moved to another country")
		}
		stats, _ := st.PoolStats(ctx, svc.Now())
		if stats["US"] != (PoolStats{Free: 1, Leased: 1}) || stats["CA"] != (PoolStats{}) {
			t.Fatalf("pool changed by a refused reconfiguration: %+v", stats)
		}
		if got, err := svc.FindByNumber(ctx, busy); err != nil || got.ID != "t1" {
			t.Fatalf("lease lost: %v", err)
		}
	})
}
