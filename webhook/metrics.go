package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	deliveries *prometheus.CounterVec
	retries    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_webhook_deliveries_total",
			Help: "Webhook events that left the outbox, by event type and result (delivered, failed, expired, no_endpoint).",
		}, []string{"type", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_webhook_retries_total",
			Help: "Failed webhook attempts scheduled for a retry, by reason (timeout, connection, http_408, http_429, http_5xx).",
		}, []string{"reason"}),
	}
	for _, t := range EventTypes {
		for _, r := range Results {
			m.deliveries.WithLabelValues(string(t), string(r))
		}
	}
	for _, r := range retryReasons {
		m.retries.WithLabelValues(r)
	}
	return m
}

// typeLabel bounds the type label: an event type this version does not
// know (written by a newer one) counts as "other".
func typeLabel(t EventType) string {
	if t.Known() {
		return string(t)
	}
	return "other"
}

// Register adds the dispatcher's metrics to reg: the delivery and retry
// counters, and the queue depth and oldest event's age, read from the
// outbox at scrape time.
func (d *Dispatcher) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{d.metrics.deliveries, d.metrics.retries, &queueCollector{d: d}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	queueDepthDesc = prometheus.NewDesc("handoff_webhook_queue_depth",
		"Webhook events not yet delivered, dropped or failed (in the outbox, leased or waiting).", nil, nil)
	oldestAgeDesc = prometheus.NewDesc("handoff_webhook_oldest_event_age_seconds",
		"Age of the oldest webhook event still in the outbox (0 when it is empty).", nil, nil)
)

type queueCollector struct{ d *Dispatcher }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- oldestAgeDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.d.outbox.Stats(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if s.Depth > 0 {
		age = max(c.d.cfg.Clock().Sub(s.Oldest), 0).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(oldestAgeDesc, prometheus.GaugeValue, age)
}
