package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
	"github.com/handoff/handoff/webhook/webhooktest"
)

// BenchmarkDispatcher: events per second from the in-memory outbox through
// the dispatcher (sign, POST, classify, Done) to a loopback HTTP receiver
// answering 204, with 64 transfers' events interleaved.
//
//	go test -run '^$' -bench BenchmarkDispatcher -benchtime 20000x -count 3 ./webhook/
func BenchmarkDispatcher(b *testing.B) {
	for _, workers := range []int{4, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchDispatcher(b, workers) })
	}
}

func benchDispatcher(b *testing.B, workers int) {
	ob := webhook.NewMemoryOutbox()
	data := []byte(`{"id":"tr","externalConversationId":"conv-1","type":"SIP","status":"ONGOING","createdAt":"2026-01-01T00:00:00Z"}`)
	for i := range b.N {
		ev, err := webhook.NewEvent(webhook.TransferOngoing, fmt.Sprintf("tr-%d", i%64), "ivr", time.Now(), data)
		if err != nil {
			b.Fatal(err)
		}
		if err := ob.Enqueue(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	elapsed := webhooktest.DeliverAll(b, ob, workers, b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkMemoryOutbox: one Claim and Done with a backlog of 1000
// transfers (the in-memory outbox scans its transfers on every claim).
func BenchmarkMemoryOutbox(b *testing.B) {
	ob := webhook.NewMemoryOutbox()
	ctx := context.Background()
	now := time.Now()
	for i := range 1000 {
		ev, _ := webhook.NewEvent(webhook.TransferCreated, fmt.Sprintf("tr-%d", i), "", now, []byte(`{}`))
		_ = ob.Enqueue(ctx, ev)
	}
	for b.Loop() {
		ds, err := ob.Claim(ctx, "n", now, time.Minute, 1)
		if err != nil || len(ds) != 1 {
			b.Fatal(ds, err)
		}
		ev := ds[0].Event
		ev.ID = webhook.NewEventID()
		_ = ob.Done(ctx, ds[0].Lease, webhook.ResultDelivered)
		_ = ob.Enqueue(ctx, ev) // keep the backlog
	}
}
