package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
	"github.com/handoff/handoff/webhook"
	"github.com/handoff/handoff/webhook/webhooktest"
)

// BenchmarkCreateGet measures a POST followed by a GET of the same transfer
// over real HTTP on loopback, against the bolt store (fsync on every commit,
// concurrent commits batched). It reports whole create+get pairs per second
// and the pair's p99 latency. Contract checking is off here; the tests do it.
// The store is wired as cmd/handoff wires it: the plain variants have no
// webhook endpoint configured (no event is written); the _events and
// _webhooks variants have one: every create also writes its
// transfer.created event in its transaction; with _webhooks a dispatcher
// (4 workers) delivers the events meanwhile to a loopback receiver, on the
// same CPUs; they report the events delivered per second and those still
// pending when the run ends.
//
//	go test -run '^$' -bench BenchmarkCreateGet -benchtime 5s ./control/
func BenchmarkCreateGet(b *testing.B) {
	for _, typ := range []string{"SIP", "PHONE_NUMBER"} {
		for _, hooks := range []string{"", "_events", "_webhooks"} {
			b.Run(typ+hooks, func(b *testing.B) { benchCreateGet(b, typ, hooks) })
		}
	}
}

// benchCreateGet runs one variant: hooks "" (no endpoint), "_events" (an
// endpoint, no dispatcher: the events' write alone) or "_webhooks" (an
// endpoint and a dispatcher delivering meanwhile).
func benchCreateGet(b *testing.B, typ, hooks string) {
	e := newEnv(b, func(c *envConfig) {
		c.plain = true
		c.log = io.Discard
		c.cfg.RateLimit = -1
		// Enough numbers that the pool never runs dry within a run.
		c.pools = map[string][]string{"US": {"+15550000000-+15550099999"}}
		// As cmd/handoff wires it: without an endpoint no event is written.
		c.webhooks = &transfer.Webhooks{Wants: func(string) bool { return hooks != "" }}
	})
	sink := webhooktest.NewSink(b)
	if hooks == "_webhooks" {
		webhooktest.Dispatch(b, e.outbox, webhook.DefaultWorkers, sink)
	}
	var lat testenv.Latencies // from 8×GOMAXPROCS concurrent clients
	elapsed := lat.RunParallel(b, func() (time.Duration, error) {
		id := newID("bench")
		body := sipBody(id, map[string]any{"returnTransferType": "REFER", "returnUri": "sip:back@ivr.example.com"})
		if typ == "PHONE_NUMBER" {
			body = phoneBody(id, "US")
		}
		t0 := time.Now()
		if err := benchDo(e, http.MethodPost, pathCreate, body); err != nil {
			return 0, err
		}
		if err := benchDo(e, http.MethodGet, pathCreate+"/"+id, nil); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	})
	lat.Report(b, elapsed, true)
	if hooks != "" {
		st, _ := e.outbox.Stats(context.Background())
		b.ReportMetric(float64(sink.Count())/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(st.Depth), "pending-events")
	}
}

// benchDo sends one request and checks for 200; safe from RunParallel goroutines.
func benchDo(e *env, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("asapp-api-id", credA.ID)
	req.Header.Set("asapp-api-secret", credA.Secret)
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return nil
}
