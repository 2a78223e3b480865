package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxResponseBody is how much of a response is read (and discarded), so a
// huge or endless body cannot hold a worker.
const maxResponseBody = 4 << 10

// userAgent identifies Handoff's requests.
const userAgent = "Handoff-Webhooks/1"

// Reasons for a retry: the reason label of handoff_webhook_retries_total.
const (
	retryTimeout    = "timeout"
	retryConnection = "connection"
	retry408        = "http_408"
	retry429        = "http_429"
	retry5xx        = "http_5xx"
)

var retryReasons = []string{retryTimeout, retryConnection, retry408, retry429, retry5xx}

// outcome is what one attempt came to.
type outcome struct {
	result     Result // delivered or failed; "" when the attempt is to be retried
	retry      string // the retry reason when result is ""
	status     int    // HTTP status, 0 when none came
	err        string // what went wrong, for the log and the outbox
	retryAfter time.Duration
}

// newClient never follows redirects: a 3xx is the endpoint's answer.
func newClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// post makes one signed attempt. at is the attempt's webhook-timestamp.
func (d *Dispatcher) post(ctx context.Context, ep *Endpoint, ev Event, at time.Time) outcome {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(ev.Body))
	if err != nil { // the URL was validated: this cannot happen
		return outcome{result: ResultFailed, err: "building the request failed"}
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set("webhook-id", ev.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", ep.secret.Sign(ev.ID, at, ev.Body))
	resp, err := d.client.Do(req)
	if err != nil {
		return transportFailure(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	return classify(resp, d.cfg.Clock())
}

// classify maps a response to an outcome: 2xx delivered; 408, 429 and 5xx
// retried (honouring Retry-After); anything else (3xx, other 4xx) failed.
func classify(resp *http.Response, now time.Time) outcome {
	o := outcome{status: resp.StatusCode, err: "HTTP " + strconv.Itoa(resp.StatusCode)}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return outcome{result: ResultDelivered, status: c}
	case c == http.StatusRequestTimeout:
		o.retry = retry408
	case c == http.StatusTooManyRequests:
		o.retry = retry429
	case c >= 500:
		o.retry = retry5xx
	default:
		o.result = ResultFailed
		return o
	}
	o.retryAfter, _ = retryAfter(resp.Header, now)
	return o
}

// transportFailure describes an attempt that got no response. The
// *url.Error wrapper is removed: it quotes the URL, which may hold a token.
func transportFailure(err error) outcome {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return outcome{retry: retryTimeout, err: "timeout"}
	}
	return outcome{retry: retryConnection, err: err.Error()}
}
