package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// storeTimeout bounds one outbox call made on behalf of a delivery.
const storeTimeout = 5 * time.Second

// Dispatcher claims due events from an Outbox and delivers them on bounded
// workers, so a slow endpoint slows only its own events, never calls or
// the API. A transfer's events go one at a time, in order: the outbox lease
// on the transfer is held until the attempt's outcome is recorded.
type Dispatcher struct {
	cfg     Config
	outbox  Outbox
	resolve EndpointResolver
	client  *http.Client
	metrics *metrics
	wake    chan struct{}
}

// New returns a dispatcher; Run starts it.
func New(cfg Config, outbox Outbox, resolve EndpointResolver) (*Dispatcher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if outbox == nil || resolve == nil {
		return nil, errors.New("webhooks: dispatcher needs an outbox and an endpoint resolver")
	}
	return &Dispatcher{cfg: cfg, outbox: outbox, resolve: resolve, client: newClient(cfg.Transport),
		metrics: newMetrics(), wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the dispatcher to claim now instead of at the next poll;
// call it after committing an event. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the attempts in flight to end
// (each within Timeout) so their outcome is recorded, and returns.
func (d *Dispatcher) Run(ctx context.Context) {
	slots := make(chan struct{}, d.cfg.Workers)
	var wg sync.WaitGroup
	defer d.client.CloseIdleConnections()
	defer wg.Wait()
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	work := context.WithoutCancel(ctx)
	for {
		for _, dl := range d.claim(ctx, cap(slots)-len(slots)) {
			slots <- struct{}{}
			wg.Go(func() {
				defer d.Notify() // a slot is free, and the transfer's next event may be due
				defer func() { <-slots }()
				d.deliver(work, dl)
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// claim leases up to free due events; an outbox error is logged and the
// next poll tries again.
func (d *Dispatcher) claim(ctx context.Context, free int) []Delivery {
	if free <= 0 || ctx.Err() != nil {
		return nil
	}
	ds, err := d.outbox.Claim(ctx, d.cfg.Node, d.cfg.Clock(), d.cfg.Lease, free)
	if err != nil && ctx.Err() == nil {
		d.cfg.Logger.Error("webhook outbox claim failed", "error", err)
	}
	return ds
}

// deliver makes one attempt at dl, or drops it, and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, dl Delivery) {
	now := d.cfg.Clock()
	if now.Sub(dl.CreatedAt) >= d.cfg.MaxAge {
		d.drop(ctx, dl, "max age reached before this attempt")
		return
	}
	ep := d.resolve(dl.Event)
	if ep == nil {
		d.finish(ctx, dl, ResultNoEndpoint) // silently: the credential asked for no events
		return
	}
	o := d.post(ctx, ep, dl.Event, now)
	log := d.cfg.Logger.With("transfer_id", dl.TransferID, "webhook_id", dl.ID, "type", dl.Type,
		"attempt", dl.Attempt+1, "endpoint", ep.Host())
	switch o.result {
	case ResultDelivered:
		log.Debug("webhook delivered", "status", o.status)
		d.finish(ctx, dl, ResultDelivered)
	case ResultFailed:
		log.Warn("webhook refused by the endpoint, not retried", "status", o.status)
		d.finish(ctx, dl, ResultFailed)
	default:
		d.retry(ctx, log, dl, o)
	}
}

// retry schedules the next attempt, the later of the backoff and the
// endpoint's Retry-After, or drops the event if that is past its max age.
func (d *Dispatcher) retry(ctx context.Context, log *slog.Logger, dl Delivery, o outcome) {
	attempt := dl.Attempt + 1
	delay := max(backoff(attempt, d.cfg.BackoffBase, d.cfg.BackoffMax, d.cfg.Jitter()), o.retryAfter)
	next := d.cfg.Clock().Add(delay)
	dl.Attempt, dl.LastError = attempt, o.err
	if next.Sub(dl.CreatedAt) >= d.cfg.MaxAge {
		d.drop(ctx, dl, "max age reached before the next attempt")
		return
	}
	log.Info("webhook attempt failed, will retry", "error", o.err, "retry_in", delay.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := d.outbox.Retry(ctx, dl.Lease, next, attempt, o.err); err != nil {
		d.outboxFailed(dl, "retry", err)
		return
	}
	d.metrics.retries.WithLabelValues(o.retry).Inc()
}

// drop gives up on an event past its max age.
func (d *Dispatcher) drop(ctx context.Context, dl Delivery, why string) {
	d.cfg.Logger.Warn("webhook dropped: "+why, "transfer_id", dl.TransferID, "webhook_id", dl.ID,
		"type", dl.Type, "attempts", dl.Attempt, "last_error", dl.LastError, "age", d.cfg.Clock().Sub(dl.CreatedAt).Round(time.Second))
	d.finish(ctx, dl, ResultExpired)
}

// finish removes the event from the outbox and counts it.
func (d *Dispatcher) finish(ctx context.Context, dl Delivery, r Result) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := d.outbox.Done(ctx, dl.Lease, r); err != nil {
		d.outboxFailed(dl, "done", err)
		return
	}
	d.metrics.deliveries.WithLabelValues(typeLabel(dl.Type), string(r)).Inc()
}

// outboxFailed logs an outcome the outbox did not take. The lease then runs
// out and the event is tried again: a duplicate, with the same webhook-id.
func (d *Dispatcher) outboxFailed(dl Delivery, op string, err error) {
	msg := "webhook outbox " + op + " failed; the event will be tried again"
	if errors.Is(err, ErrLeaseLost) {
		msg = "webhook lease lost before " + op + " (attempt took longer than the lease); another claim owns the event"
	}
	d.cfg.Logger.Error(msg, "transfer_id", dl.TransferID, "webhook_id", dl.ID, "error", err)
}
