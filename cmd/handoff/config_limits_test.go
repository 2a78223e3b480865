package main

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/sip"
)

func TestLimitsFromFileAndEnv(t *testing.T) {
	path := writeFile(t, "handoff.yaml", `
sip:
  limits:
    max_calls: 500
    max_cps: 50
    per_source_max_calls: 100
    trunks:
      carrier-a: [203.0.113.0/28, 198.51.100.7/32]
  overload:
    max_latency: 0s
    max_queue_delay: 0s
`)
	cfg, err := Load(path, envMap(map[string]string{
		"HANDOFF_SIP_LIMITS_PER_SOURCE_MAX_CPS": "2.5",
		"HANDOFF_SIP_LIMITS_TRUNKS":             "carrier-b=192.0.2.10/32,192.0.2.20/31",
		"HANDOFF_SIP_OVERLOAD_MAX_PENDING":      "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	limits, overload := cfg.SIP.admission()
	want := sip.Limits{MaxCalls: 500, MaxCPS: 50, PerSourceMaxCalls: 100, PerSourceMaxCPS: 2.5,
		Trunks: map[string][]netip.Prefix{"carrier-b": {
			netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.20/31"),
		}}, RetryAfter: time.Second}
	if !reflect.DeepEqual(limits, want) {
		t.Errorf("limits %+v, want %+v", limits, want)
	}
	if overload != (sip.OverloadConfig{}) {
		t.Errorf("overload %+v, want all off", overload)
	}
	defaults, _ := Load("", noEnv)
	if _, o := defaults.SIP.admission(); o.MaxPending != sip.DefaultMaxPending || o.MaxLatency != sip.DefaultMaxLatency ||
		o.MaxQueueDelay != sip.DefaultMaxQueueDelay {
		t.Errorf("default overload %+v", o)
	}
}

func TestLimitsValidation(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"negative max_calls", "sip:\n  limits:\n    max_calls: -1\n", "sip.limits.max_calls"},
		{"negative per-source cps", "sip:\n  limits:\n    per_source_max_cps: -0.5\n", "sip.limits.per_source_max_cps"},
		{"negative max_pending", "sip:\n  overload:\n    max_pending: -3\n", "sip.overload.max_pending"},
		{"negative max_latency", "sip:\n  overload:\n    max_latency: -1s\n", "sip.overload.max_latency"},
		{"short retry_after", "sip:\n  limits:\n    retry_after: 500ms\n", "sip.limits.retry_after"},
		{"bad trunk CIDR", "sip:\n  limits:\n    trunks:\n      a: [10.0.0.0/33]\n", "not a CIDR"},
		{"empty trunk", "sip:\n  limits:\n    trunks:\n      a: []\n", "has no CIDR"},
		{"trunks overlap", "sip:\n  limits:\n    trunks:\n      a: [10.0.0.0/8]\n      b: [10.1.0.0/16]\n", "overlaps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", c.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}
