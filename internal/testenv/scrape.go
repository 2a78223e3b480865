package testenv

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape reads the /metrics page at url (the text format) once and returns
// that snapshot of a running process as a Gatherer for MetricValue and
// MetricSeries.
func Scrape(t testing.TB, c *http.Client, url string) prometheus.Gatherer {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		mfs = append(mfs, mf)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil })
}

// SplitSample splits a sample named as the text format writes it,
// name{label="value",...}, into the metric's name and MetricValue's
// labels ("label=value"). Values holding a comma or a quote are not read.
func SplitSample(sample string) (name string, labels []string) {
	name, rest, ok := strings.Cut(sample, "{")
	if !ok {
		return sample, nil
	}
	for _, pair := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		if k, v, ok := strings.Cut(pair, "="); ok {
			labels = append(labels, k+"="+strings.Trim(v, `"`))
		}
	}
	return name, labels
}
