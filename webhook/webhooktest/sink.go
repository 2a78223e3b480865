package webhooktest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// sinkSecret signs what benchmarks deliver to a Sink.
const sinkSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Sink is a loopback HTTP receiver that answers 204 to everything and
// counts the requests: the far end of delivery benchmarks.
type Sink struct {
	Endpoint *webhook.Endpoint
	n        atomic.Int64
}

// NewSink serves a Sink until tb ends.
func NewSink(tb testing.TB) *Sink {
	tb.Helper()
	s := &Sink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(srv.Close)
	ep, err := webhook.NewEndpoint(srv.URL+"/hook", sinkSecret, false)
	if err != nil {
		tb.Fatal(err)
	}
	s.Endpoint = ep
	return s
}

// Count is how many requests the sink has answered.
func (s *Sink) Count() int64 { return s.n.Load() }

// Dispatch runs a dispatcher with workers on ob, delivering every event to
// sink, until tb ends.
func Dispatch(tb testing.TB, ob webhook.Outbox, workers int, sink *Sink) {
	tb.Helper()
	d, err := webhook.New(webhook.Config{Workers: workers, Logger: slog.New(slog.DiscardHandler)}, ob,
		func(webhook.Event) *webhook.Endpoint { return sink.Endpoint })
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
}

// DeliverAll delivers n queued events of ob to a new Sink with workers and
// returns how long it took: a benchmark's timed part.
func DeliverAll(b *testing.B, ob webhook.Outbox, workers, n int) time.Duration {
	b.Helper()
	sink := NewSink(b)
	b.ResetTimer()
	start := time.Now()
	Dispatch(b, ob, workers, sink)
	for sink.Count() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}
