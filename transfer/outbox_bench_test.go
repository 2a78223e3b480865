package transfer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
	"github.com/handoff/handoff/webhook/webhooktest"
)

// BenchmarkOutbox measures each store's outbox (bolt with fsync per
// commit; Redis without persistence, on loopback), with 1000 transfers'
// events queued:
//
//   - ClaimDone: 8×GOMAXPROCS goroutines each Claim one event and record
//     it Done, as dispatcher workers do: the outbox's cost per event (the
//     scan for a due head, the lease, the removal), in events/s.
//
//   - Deliver: a webhook.Dispatcher (4 workers, the default, and 16) takes
//     the events to a loopback HTTP receiver answering 204: the whole
//     delivery per event (claim, sign, POST, done), in events/s.
//
//     go test -run '^$' -bench BenchmarkOutbox -benchtime 20000x ./transfer/
func BenchmarkOutbox(b *testing.B) {
	for _, kind := range []string{"bolt", "redis"} {
		b.Run(kind, func(b *testing.B) {
			b.Run("ClaimDone", func(b *testing.B) { benchClaimDone(b, benchOutbox(b, kind)) })
			for _, workers := range []int{4, 16} {
				b.Run(fmt.Sprintf("Deliver/workers=%d", workers), func(b *testing.B) { benchDeliver(b, benchOutbox(b, kind), workers) })
			}
		})
	}
}

type benchStoreOutbox interface {
	Store
	webhook.Outbox
}

func benchOutbox(b *testing.B, kind string) benchStoreOutbox {
	b.Helper()
	var st benchStoreOutbox
	var err error
	if kind == "bolt" {
		st, err = OpenBolt(b.TempDir()+"/handoff.db", BoltOptions{})
	} else {
		st, err = OpenRedis(context.Background(), benchRedis(b), RedisOptions{Prefix: fmt.Sprintf("obbench%d:", benchSeq.Add(1))})
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// fillOutbox queues n events over 1000 transfers, in batches.
func fillOutbox(b *testing.B, ob webhook.Outbox, n int) {
	b.Helper()
	data := []byte(`{"id":"tr","externalConversationId":"conv-1","type":"SIP","status":"ONGOING","createdAt":"2026-01-01T00:00:00Z"}`)
	batch := make([]webhook.Event, 0, 500)
	for i := range n {
		ev, err := webhook.NewEvent(webhook.TransferOngoing, fmt.Sprintf("tr-%d", i%1000), "ivr", time.Now(), data)
		if err != nil {
			b.Fatal(err)
		}
		if batch = append(batch, ev); len(batch) == cap(batch) || i == n-1 {
			if err := ob.Enqueue(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

func benchClaimDone(b *testing.B, ob webhook.Outbox) {
	fillOutbox(b, ob, b.N+8*1000)
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	var node atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		name := fmt.Sprintf("node-%d", node.Add(1))
		for pb.Next() {
			ds, err := ob.Claim(ctx, name, time.Now(), time.Minute, 1)
			if err != nil || len(ds) != 1 {
				b.Errorf("claim: %v %v", ds, err)
				return
			}
			if err := ob.Done(ctx, ds[0].Lease, webhook.ResultDelivered); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func benchDeliver(b *testing.B, ob webhook.Outbox, workers int) {
	fillOutbox(b, ob, b.N)
	elapsed := webhooktest.DeliverAll(b, ob, workers, b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
