package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// storeUpTimeout bounds the store ping behind handoff_store_up at scrape time.
const storeUpTimeout = time.Second

func newHTTPMetrics(reg prometheus.Registerer, a *API) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "handoff_http_request_duration_seconds",
			Help:    "HTTP request latency, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	draining := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "handoff_draining",
		Help: "1 while this instance drains (SIGTERM received: not ready, new transfers and calls refused), else 0.",
	}, func() float64 {
		if a.draining.Load() {
			return 1
		}
		return 0
	})
	storeUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "handoff_store_up",
		Help: "1 if the transfer store answered a ping at scrape time (what /readyz checks), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), storeUpTimeout)
		defer cancel()
		if a.svc.Ready(ctx) != nil {
			return 0
		}
		return 1
	})
	for _, c := range []prometheus.Collector{m.requests, m.duration, draining, storeUp} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// reqState is per-request data shared between the middleware and handlers.
type reqState struct {
	id         string
	credential string
}

type ctxKey struct{}

func requestID(ctx context.Context) string {
	if s, ok := ctx.Value(ctxKey{}).(*reqState); ok {
		return s.id
	}
	return ""
}

func setCredentialID(ctx context.Context, id string) {
	if s, ok := ctx.Value(ctxKey{}).(*reqState); ok {
		s.credential = id
	}
}

// validRequestID accepts a caller's X-Request-Id of 1-128 visible ASCII characters.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument assigns the request id (echoed in X-Request-Id), recovers
// panics into 500-01, records metrics and logs one line per request.
func (a *API) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{id: r.Header.Get(headerRequestID)}
		if !validRequestID(st.id) {
			st.id = newRequestID()
		}
		w.Header().Set(headerRequestID, st.id)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, st))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("panic serving request", "request_id", st.id, "panic", p)
				if !sw.wrote {
					writeError(sw, r, errorf(http.StatusInternalServerError, codeInternal,
						"internal error; quote request id %s when reporting it", st.id))
				}
			}
			if !sw.wrote {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			route, method := routeLabel(r.Pattern), methodLabel(r.Method)
			a.metrics.requests.WithLabelValues(route, method, strconv.Itoa(sw.status)).Inc()
			a.metrics.duration.WithLabelValues(route, method).Observe(d.Seconds())
			attrs := []any{"request_id", st.id, "method", method, "route", route,
				"status", sw.status, "duration_ms", float64(d.Microseconds()) / 1000}
			if st.credential != "" {
				attrs = append(attrs, "api_id", st.credential)
			}
			level := slog.LevelInfo
			if !strings.HasPrefix(route, "/generativeagent/") {
				level = slog.LevelDebug // probes and scrapes would drown the log
			}
			a.log.Log(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}
