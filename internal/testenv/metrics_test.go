package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricValue(t *testing.T) {
	reg := prometheus.NewRegistry()
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msgs_total"}, []string{"direction", "type"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds"})
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "up"})
	reg.MustRegister(msgs, lat, up)
	msgs.WithLabelValues("in", "media").Add(3)
	msgs.WithLabelValues("in", "mark").Add(2)
	msgs.WithLabelValues("out", "media").Add(7)
	lat.Observe(0.1)
	lat.Observe(0.2)
	up.Set(1)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"msgs_total", nil, 12},
		{"msgs_total", []string{"direction=in"}, 5},
		{"msgs_total", []string{"direction=in", "type=mark"}, 2},
		{"msgs_total", []string{"direction=sideways"}, 0},
		{"latency_seconds", nil, 2},
		{"up", nil, 1},
		{"absent_total", nil, 0},
	} {
		if got := MetricValue(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s %v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := Value(msgs.WithLabelValues("out", "media")); got != 7 {
		t.Errorf("Value of one series = %v, want 7", got)
	}
}
