package transfer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/redistest"
	"github.com/handoff/handoff/internal/testenv"
)

// BenchmarkStore compares the embedded store (bolt, fsync per commit,
// concurrent commits batched) and Redis (one local redis-server on
// loopback; "redis" without persistence: the round trips and scripts only;
// "redis-aof-always" with appendonly yes, appendfsync always: the setting
// that loses nothing acknowledged) under the Service, from 8×GOMAXPROCS
// goroutines:
//
//   - CreateGet/SIP, CreateGet/PHONE_NUMBER: Create then Get of the same
//     transfer (the API's create+get without HTTP);
//   - CallSetup: what an INVITE does to the store for a PHONE_NUMBER
//     transfer: FindByNumber, Claim, then Answer on ACK (the transfer is
//     created outside the timing).
//
// It reports ops/s and the op's p50/p99 latency.
//
//	go test -run '^$' -bench BenchmarkStore -benchtime 3s ./transfer/
func BenchmarkStore(b *testing.B) {
	for _, k := range []string{"bolt", "redis", "redis-aof-always"} {
		b.Run(k, func(b *testing.B) {
			for _, op := range []string{"CreateGet/SIP", "CreateGet/PHONE_NUMBER", "CallSetup"} {
				b.Run(op, func(b *testing.B) { benchStore(b, k, op) })
			}
		})
	}
}

var benchSeq atomic.Int64

func benchStore(b *testing.B, kind, op string) {
	var st Store
	var err error
	switch kind {
	case "bolt":
		st, err = OpenBolt(b.TempDir()+"/handoff.db", BoltOptions{Quarantine: time.Minute})
	case "redis":
		st, err = OpenRedis(context.Background(), benchRedis(b), RedisOptions{Prefix: fmt.Sprintf("bench%d:", benchSeq.Add(1)), Quarantine: time.Minute})
	case "redis-aof-always":
		url := redistest.Start(b, "--appendonly", "yes", "--appendfsync", "always").URL()
		st, err = OpenRedis(context.Background(), url, RedisOptions{Quarantine: time.Minute})
	}
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := NewService(st, ServiceConfig{TTL: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	// Enough numbers that the pool never runs dry within a run: 10 000 for
	// bolt, 100 000 for Redis (faster, so more ops per run). Both lease from
	// an index ordered by free time, whatever the pool size.
	pool := "+15550000000-+15550009999"
	if kind != "bolt" {
		pool = "+15550000000-+15550099999"
	}
	if err := svc.SetNumbers(ctx, map[string][]string{"US": {pool}}); err != nil {
		b.Fatal(err)
	}
	var lat testenv.Latencies
	elapsed := lat.RunParallel(b, func() (time.Duration, error) {
		id := fmt.Sprintf("b%d", benchSeq.Add(1))
		req := CreateRequest{ID: id, ExternalConversationID: "c", Type: TypeSIP, SIP: &SIPReturn{ReturnTransferType: ReturnBye}}
		if op != "CreateGet/SIP" {
			req = phoneReq(id)
		}
		if op == "CallSetup" {
			return benchCallSetup(ctx, svc, req)
		}
		t0 := time.Now()
		if _, _, err := svc.Create(ctx, "ivr", req); err != nil {
			return 0, err
		}
		_, err := svc.Get(ctx, "ivr", id)
		return time.Since(t0), err
	})
	lat.Report(b, elapsed, op != "CallSetup") // a set-up's rate is the creates', not its own
}

// benchCallSetup creates the transfer of req (not timed), then times what
// an INVITE does to the store: FindByNumber, Claim, then Answer on ACK.
func benchCallSetup(ctx context.Context, svc *Service, req CreateRequest) (time.Duration, error) {
	tr, _, err := svc.Create(ctx, "ivr", req)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	found, err := svc.FindByNumber(ctx, tr.PhoneNumber.TransferNumber)
	if err == nil {
		_, err = svc.Claim(ctx, found.ID, "call-"+req.ID, "node")
	}
	if err == nil {
		_, err = svc.Answer(ctx, found.ID, "call-"+req.ID)
	}
	return time.Since(t0), err
}

// benchRedis starts a redis-server for one benchmark.
func benchRedis(b *testing.B) string { return redistest.Start(b).URL() }
