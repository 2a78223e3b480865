package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, maxD := time.Second, 8*time.Second
	nominal := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, n := range nominal {
		n *= time.Second
		lo, hi := backoff(i+1, base, maxD, 0), backoff(i+1, base, maxD, 0.999999)
		if lo != n/2 || hi > n || hi < n-time.Millisecond {
			t.Errorf("attempt %d: delay in [%s, %s], want [%s, %s]", i+1, lo, hi, n/2, n)
		}
	}
	if d := backoff(1000, base, maxD, 0.5); d > maxD {
		t.Errorf("attempt 1000: %s, above max %s", d, maxD)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999", maxRetryAfter, true},
		{"-5", 0, false},
		{"soon", 0, false},
	} {
		h := http.Header{}
		if c.v != "" {
			h.Set("Retry-After", c.v)
		}
		if d, ok := retryAfter(h, now); d != c.want || ok != c.ok {
			t.Errorf("Retry-After %q = %s, %v; want %s, %v", c.v, d, ok, c.want, c.ok)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []Config{
		{Workers: -1},
		{BackoffBase: time.Minute, BackoffMax: time.Second},
		{Timeout: 10 * time.Second, Lease: 5 * time.Second},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	c, err := Config{}.withDefaults()
	if err != nil || c.Workers != DefaultWorkers || c.MaxAge != DefaultMaxAge || c.Lease <= c.Timeout {
		t.Errorf("defaults %+v, %v", c, err)
	}
}
