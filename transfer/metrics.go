package transfer

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type serviceMetrics struct {
	created   *prometheus.CounterVec
	completed *prometheus.CounterVec
}

func newServiceMetrics() *serviceMetrics {
	return &serviceMetrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_transfers_created_total",
			Help: "Transfers created through the API, by type.",
		}, []string{"type"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_transfers_completed_total",
			Help: "Transfers completed, by end reason.",
		}, []string{"reason"}),
	}
}

// Register adds the service's metrics to reg: the event counters, and the
// stored transfers by status and pool numbers by country and state, read from
// the store at scrape time.
func (s *Service) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.events.created, s.events.completed, &storeCollector{s: s}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	transfersDesc = prometheus.NewDesc("handoff_transfers",
		"Stored transfers by stored status (an ACTIVE one past its expiry counts ACTIVE until swept).",
		[]string{"status"}, nil)
	poolDesc = prometheus.NewDesc("handoff_number_pool_numbers",
		"Numbers in the pool by country and state (free, leased, quarantined).",
		[]string{"country", "state"}, nil)
)

type storeCollector struct{ s *Service }

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- transfersDesc
	ch <- poolDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if counts, err := c.s.store.Counts(ctx); err == nil {
		for _, st := range []Status{StatusActive, StatusOngoing, StatusCompleted, StatusExpired} {
			ch <- prometheus.MustNewConstMetric(transfersDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	if pools, err := c.s.store.PoolStats(ctx, c.s.Now()); err == nil {
		for country, p := range pools {
			ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(p.Free), country, "free")
			ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(p.Leased), country, "leased")
			ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(p.Quarantined), country, "quarantined")
		}
	}
}
