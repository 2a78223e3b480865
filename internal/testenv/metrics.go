package testenv

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricValue sums, over the series of metric name in g whose labels
// include every "label=value" given, each series' counter or gauge value,
// or its histogram's or summary's sample count. No labels: every series.
func MetricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	total, _ := MetricSeries(t, g, name, labels...)
	return total
}

// MetricSeries is MetricValue that also counts the series it added up, for
// a test that must tell a zero from a series that is not there.
func MetricSeries(t testing.TB, g prometheus.Gatherer, name string, labels ...string) (total float64, n int) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				total += value(m)
				n++
			}
		}
	}
	return total, n
}

// Value reads one series: a counter's or gauge's value, or a histogram's or
// summary's sample count.
func Value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err) // only a broken collector fails to write
	}
	return value(&d)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		name, want, _ := strings.Cut(l, "=")
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == name && lp.GetValue() == want {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
