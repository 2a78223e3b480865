package webhook

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Config tunes a Dispatcher. Zero fields take the defaults below.
type Config struct {
	// Node names this instance in the leases it takes (default "local").
	Node string
	// Workers bounds the deliveries in flight (default 4).
	Workers int
	// Timeout bounds one attempt, connect to response body (default 15s).
	Timeout time.Duration
	// MaxAge is how long an event is retried after it happened before it is
	// dropped (default 24h).
	MaxAge time.Duration
	// BackoffBase is the delay after the first failed attempt; it doubles
	// with each attempt up to BackoffMax (defaults 1s and 10m). Each delay is
	// jittered down by up to half.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Lease is how long a claim holds a transfer's events; another node
	// takes them over when a node dies. It must exceed Timeout (default
	// 2×Timeout + 5s).
	Lease time.Duration
	// PollInterval is how often the outbox is read when nothing woke the
	// dispatcher (default 1s): the latency for events another node enqueued.
	PollInterval time.Duration

	// Transport sends the requests (default: a clone of
	// http.DefaultTransport). Redirects are never followed, whatever it is.
	Transport http.RoundTripper
	// Clock tells the time (default time.Now); tests move it by hand.
	Clock func() time.Time
	// Jitter returns a number in [0, 1) (default math/rand/v2.Float64).
	Jitter func() float64
	// Logger receives the delivery log (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultWorkers      = 4
	DefaultTimeout      = 15 * time.Second
	DefaultMaxAge       = 24 * time.Hour
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 10 * time.Minute
	DefaultPollInterval = time.Second
)

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	setDefault(&c.Node, "local")
	setDefault(&c.Workers, DefaultWorkers)
	setDefault(&c.Timeout, DefaultTimeout)
	setDefault(&c.MaxAge, DefaultMaxAge)
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.Lease, 2*c.Timeout+5*time.Second)
	setDefault(&c.PollInterval, DefaultPollInterval)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	setDefault(&c.Logger, slog.Default())
	if c.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.Workers
		c.Transport = t
	}
	return c, c.check()
}

func (c Config) check() error {
	switch {
	case c.Workers < 0 || c.Timeout < 0 || c.MaxAge < 0 || c.BackoffBase < 0 || c.PollInterval < 0:
		return errors.New("webhooks: workers, timeout, max_age, backoff and poll interval must not be negative")
	case c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("webhooks: backoff max %s is below backoff base %s", c.BackoffMax, c.BackoffBase)
	case c.Lease <= c.Timeout:
		return fmt.Errorf("webhooks: lease %s must exceed timeout %s", c.Lease, c.Timeout)
	}
	return nil
}

// setDefault sets *p to def when *p is its zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
