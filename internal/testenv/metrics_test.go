package testenv

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// A scrape of the text format reads as the registry it came from, and a
// sample named as the text format writes it splits into name and labels.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msgs_total"}, []string{"direction", "type"})
	reg.MustRegister(msgs)
	msgs.WithLabelValues("in", "media").Add(3)
	msgs.WithLabelValues("out", "media").Add(0)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	g := Scrape(t, srv.Client(), srv.URL)
	msgs.WithLabelValues("in", "media").Add(1) // after the scrape: not in it
	name, labels := SplitSample(`msgs_total{direction="in",type="media"}`)
	if name != "msgs_total" || len(labels) != 2 || labels[0] != "direction=in" || labels[1] != "type=media" {
		t.Fatalf("SplitSample: %q %q", name, labels)
	}
	if v, n := MetricSeries(t, g, name, labels...); v != 3 || n != 1 {
		t.Errorf("scraped %v in %d series, want 3 in 1", v, n)
	}
	if v, n := MetricSeries(t, g, "msgs_total", "direction=out"); v != 0 || n != 1 {
		t.Errorf("a zero series: %v in %d, want 0 in 1", v, n)
	}
	if _, n := MetricSeries(t, g, "msgs_total", "direction=sideways"); n != 0 {
		t.Errorf("%d series for an absent label value", n)
	}
	if name, labels := SplitSample("up"); name != "up" || labels != nil {
		t.Errorf("SplitSample(up): %q %q", name, labels)
	}
}
