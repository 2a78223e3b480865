package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/handoff/handoff/internal/wstest"
)

// echoAgent is the cheapest possible agent: every inbound media message
// goes straight back as agent media.
func echoAgent(tb testing.TB) string {
	return wstest.Serve(tb, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m struct {
				Event string
				Media struct{ Payload string }
			}
			if json.Unmarshal(b, &m) != nil || m.Event != "media" {
				continue
			}
			out := `{"event":"media","streamSid":"x","media":{"payload":"` + m.Media.Payload + `"}}`
			if c.Write(ctx, websocket.MessageText, []byte(out)) != nil {
				return
			}
		}
	})
}

// BenchmarkAgentLink runs `calls` concurrent sessions against an
// in-process echo agent on loopback, paced like real calls: every 20 ms
// each session gets one caller frame (PushAudio) and is asked for one agent
// frame (NextFrame), as the media session does. One op is one 20 ms tick
// of all calls, so run it with e.g. -benchtime 500x (10 s).
//
// Reported: the latency Handoff adds, uplink (PushAudio -> WebSocket frame
// written) and downlink (agent message read -> frame handed to the pacer,
// which includes the wait for the next 20 ms tick), as p50/p99 from 10 µs
// histograms; and lost frames: caller frames whose echo never reached the
// pacer, plus every drop the session counted.
func BenchmarkAgentLink(b *testing.B) {
	for _, calls := range []int{1, 100, 300, 500} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) { benchLink(b, calls) })
	}
}

func benchLink(b *testing.B, calls int) {
	url := echoAgent(b)
	m := NewMetrics(nil)
	fine := prometheus.LinearBuckets(0, 10e-6, 6000) // 10 µs steps to 60 ms
	m.uplink = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "up", Buckets: fine})
	m.downlink = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "down", Buckets: fine})
	w := &WebSocket{URL: url, Logger: quiet, Metrics: m, ConnectTimeout: 10 * time.Second}
	sessions := make([]Session, calls)
	for i := range sessions {
		s, err := w.Open(context.Background(), CallInfo{TransferID: fmt.Sprint("bench-", i)})
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = s
	}
	defer func() {
		var wg sync.WaitGroup
		for _, s := range sessions {
			wg.Go(s.Close)
		}
		wg.Wait()
	}()
	frame, _ := ulawFrame(1200)
	var pushed, pulled atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	b.ResetTimer()
	for i, s := range sessions {
		// Caller audio arrives on the caller's clock, the pacer pulls on
		// Handoff's: their phases differ per call.
		phase := (time.Duration(i)*20*time.Millisecond + 10*time.Millisecond) / time.Duration(calls)
		wg.Go(func() {
			push := time.NewTicker(20 * time.Millisecond)
			defer push.Stop()
			time.Sleep(phase)
			pull := time.NewTicker(20 * time.Millisecond)
			defer pull.Stop()
			for {
				select {
				case <-stop:
					return
				case <-push.C:
					s.PushAudio(TrackCaller, frame)
					pushed.Add(1)
				case <-pull.C:
					if _, ok := s.NextFrame(); ok {
						pulled.Add(1)
					}
				}
			}
		})
	}
	time.Sleep(time.Duration(b.N) * 20 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Let the last echoes in.
	time.Sleep(100 * time.Millisecond)
	for range 10 {
		for _, s := range sessions {
			if _, ok := s.NextFrame(); ok {
				pulled.Add(1)
			}
		}
	}
	b.StopTimer()
	var drops float64
	for _, r := range []string{dropSendQueue, dropControlQueue, dropPlayoutFull} {
		drops += value(m.drops.WithLabelValues(r))
	}
	b.ReportMetric(float64(pushed.Load()-pulled.Load())+drops, "lost-frames")
	b.ReportMetric(quantile(m.uplink, 0.5)*1e6, "up-p50-µs")
	b.ReportMetric(quantile(m.uplink, 0.99)*1e6, "up-p99-µs")
	b.ReportMetric(quantile(m.downlink, 0.5)*1e3, "down-p50-ms")
	b.ReportMetric(quantile(m.downlink, 0.99)*1e3, "down-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// quantile estimates q from a histogram's buckets (the upper bound of the
// bucket that holds it).
func quantile(h prometheus.Histogram, q float64) float64 {
	var d dto.Metric
	if err := h.Write(&d); err != nil {
		panic(err)
	}
	hist := d.Histogram
	rank := q * float64(hist.GetSampleCount())
	for _, bk := range hist.Bucket {
		if float64(bk.GetCumulativeCount()) >= rank {
			return bk.GetUpperBound()
		}
	}
	return math.Inf(1)
}
