// Package control is Handoff's HTTP control plane: the call-transfer REST
// API (routing, auth, validation, the error envelope and the JSON shapes),
// health endpoints, metrics and the OpenAPI document. It speaks no SIP; all
// state lives behind transfer.Service.
package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/handoff/handoff/transfer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultRateLimit    = 50.0
	DefaultRateBurst    = 100
	DefaultRetryAfter   = 5 * time.Second
)

// Credential is one API client: the asapp-api-id / asapp-api-secret pair it
// authenticates with. Transfers belong to the credential (by ID) that created them.
type Credential struct {
	ID     string
	Secret string
	// ReadOnly credentials may read transfers but not create them: their
	// POST gets 403-01.
	ReadOnly bool
	// Admin credentials may also call the operator endpoints
	// (POST /admin/v1/reload); others get 403-01 there.
	Admin bool
}

// Config tunes the API.
type Config struct {
	// Credentials that may call the API. IDs must be unique and non-empty,
	// secrets non-empty.
	Credentials []Credential
	// MaxBodyBytes bounds a request body; larger bodies get 413-01.
	// Default 64 KiB.
	MaxBodyBytes int64
	// RateLimit is the sustained requests per second allowed per credential
	// (token bucket of RateBurst); excess requests get 429-01. Default 50;
	// negative disables the limit.
	RateLimit float64
	// RateBurst is the token-bucket size. Default 100.
	RateBurst int
	// SIPTransferURI builds the SIP URI that identifies a SIP transfer (where
	// the IVR sends the call), e.g. sip:<id>@host:port. Required.
	SIPTransferURI func(id string) string
	// Reload re-reads the configuration for POST /admin/v1/reload (nil: the
	// endpoint answers 404-01). It must change nothing when it fails.
	Reload func(ctx context.Context) error
	// RetryAfter is advertised with 503-01 (no free number, draining).
	// Default 5s. 429-01 computes its own from the rate limiter.
	RetryAfter time.Duration
	// Gatherer is what /metrics serves. When nil, the Registerer passed to
	// New is used if it is also a Gatherer (a *prometheus.Registry is),
	// else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
}

// API is the HTTP control plane. Create it with New and serve Handler.
type API struct {
	cfg      Config
	svc      *transfer.Service
	clock    func() time.Time // what views render StatusAt at: svc.Now
	log      *slog.Logger
	creds    atomic.Pointer[[]credential] // swapped whole by SetCredentials
	draining atomic.Bool
	handler  http.Handler
	metrics  *httpMetrics
}

type credential struct {
	id       string
	idHash   [32]byte
	secHash  [32]byte
	readOnly bool
	admin    bool
	limiter  *rate.Limiter
}

// New builds the API on svc. It registers the HTTP metrics on reg (a fresh
// private registry when reg is nil). It does not register svc's own
// metrics: whoever wires the process calls svc.Register.
func New(cfg Config, svc *transfer.Service, reg prometheus.Registerer, log *slog.Logger) (*API, error) {
	if svc == nil {
		return nil, errors.New("control: nil transfer service")
	}
	if cfg.SIPTransferURI == nil {
		return nil, errors.New("control: Config.SIPTransferURI is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if log == nil {
		log = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.Gatherer == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			cfg.Gatherer = g
		} else {
			cfg.Gatherer = prometheus.DefaultGatherer
		}
	}
	a := &API{cfg: cfg, svc: svc, clock: svc.Now, log: log}
	if err := a.SetCredentials(cfg.Credentials); err != nil {
		return nil, err
	}
	m, err := newHTTPMetrics(reg, a)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	a.handler = a.routes()
	return a, nil
}

// Handler serves the whole API: the call-transfer operations, /healthz,
// /readyz, /metrics and /openapi.yaml.
func (a *API) Handler() http.Handler { return a.handler }

// SetCredentials replaces the credentials that may call the API, atomically:
// a request authenticates against either the old set or the new one, never a
// mix. A credential whose id is kept keeps its rate limiter (and so its
// spent budget); new ids get a fresh one. Transfers belong to credential ids,
// so a kept id keeps its transfers whatever its new secret. On error (an
// empty id or secret, a duplicate id) nothing changes.
func (a *API) SetCredentials(creds []Credential) error {
	old := map[string]*rate.Limiter{}
	if cur := a.creds.Load(); cur != nil {
		for _, c := range *cur {
			old[c.id] = c.limiter
		}
	}
	limit := rate.Limit(a.cfg.RateLimit)
	if a.cfg.RateLimit < 0 {
		limit = rate.Inf
	}
	next := make([]credential, 0, len(creds))
	seen := map[string]bool{}
	for i, c := range creds {
		if c.ID == "" || c.Secret == "" {
			return fmt.Errorf("control: credential %d: id and secret must be non-empty", i)
		}
		if seen[c.ID] {
			return fmt.Errorf("control: credential id %q configured twice", c.ID)
		}
		seen[c.ID] = true
		limiter := old[c.ID]
		if limiter == nil {
			limiter = rate.NewLimiter(limit, a.cfg.RateBurst)
		}
		next = append(next, credential{
			id:       c.ID,
			idHash:   sha256.Sum256([]byte(c.ID)),
			secHash:  sha256.Sum256([]byte(c.Secret)),
			readOnly: c.ReadOnly,
			admin:    c.Admin,
			limiter:  limiter,
		})
	}
	a.creds.Store(&next)
	return nil
}

// SetDraining makes new transfers (POST) fail with 503-01 and /readyz report
// 503, while reads keep working; used during graceful shutdown.
func (a *API) SetDraining(on bool) { a.draining.Store(on) }

const (
	routeCollection = "/generativeagent/v1/call-transfers"
	routeItem       = "/generativeagent/v1/call-transfers/{callTransferId}"
	routeReload     = "/admin/v1/reload"
)

// reload re-reads the configuration (like SIGHUP) for an admin credential.
func (a *API) reload(w http.ResponseWriter, r *http.Request, c *credential) *apiError {
	if !c.admin {
		return errorf(http.StatusForbidden, codeForbidden, "credential %q may not reload the configuration (not an admin credential)", c.id)
	}
	if a.cfg.Reload == nil {
		return errorf(http.StatusNotFound, codeNotFound, "configuration reload is not available in this process")
	}
	if err := a.cfg.Reload(r.Context()); err != nil {
		return errorf(http.StatusUnprocessableEntity, codeConfig, "configuration not reloaded, nothing changed: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	return nil
}

func (a *API) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+routeCollection, a.authed(a.create))
	mux.Handle("GET "+routeItem, a.authed(a.get))
	mux.Handle("POST "+routeReload, a.authed(a.reload))
	mux.HandleFunc(routeReload, methodNotAllowed("POST"))
	mux.HandleFunc(routeCollection, methodNotAllowed("POST"))
	mux.HandleFunc(routeItem, methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.yaml", serveOpenAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorf(http.StatusNotFound, codeNotFound, "no such endpoint: %s", r.URL.Path))
	})
	return a.instrument(mux)
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := errorf(http.StatusMethodNotAllowed, codeMethod, "method %s is not allowed here; use %s", r.Method, allow)
		e.allow = allow
		writeError(w, r, e)
	}
}

// authedHandler is an API operation, run for an authenticated credential.
// It returns the error to render, or nil once it has written a response.
type authedHandler func(w http.ResponseWriter, r *http.Request, c *credential) *apiError

// authed checks the asapp-api-id / asapp-api-secret headers and the
// credential's rate limit before running h, and renders h's error.
func (a *API) authed(h authedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, e := a.authenticate(r)
		if e == nil {
			setCredentialID(r.Context(), c.id)
			e = a.limit(c)
		}
		if e == nil {
			e = h(w, r, c)
		}
		if e != nil {
			writeError(w, r, e)
		}
	})
}

func (a *API) authenticate(r *http.Request) (*credential, *apiError) {
	id, secret := r.Header.Get("asapp-api-id"), r.Header.Get("asapp-api-secret")
	if id == "" || secret == "" {
		return nil, errorf(http.StatusUnauthorized, codeUnauthorized,
			"missing credentials: send the asapp-api-id and asapp-api-secret headers")
	}
	// Compare SHA-256 digests in constant time against every credential, so
	// neither the lengths nor which credential matched leak through timing.
	idHash, secHash := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(secret))
	creds := *a.creds.Load()
	match := -1
	for i := range creds {
		ok := subtle.ConstantTimeCompare(idHash[:], creds[i].idHash[:]) &
			subtle.ConstantTimeCompare(secHash[:], creds[i].secHash[:])
		match = subtle.ConstantTimeSelect(ok, i, match)
	}
	if match < 0 {
		return nil, errorf(http.StatusUnauthorized, codeUnauthorized, "invalid credentials: unknown asapp-api-id or wrong asapp-api-secret")
	}
	return &creds[match], nil
}

func (a *API) limit(c *credential) *apiError {
	now := time.Now()
	res := c.limiter.ReserveN(now, 1)
	if !res.OK() {
		// Only possible with a zero burst, which New does not allow.
		return &apiError{status: http.StatusTooManyRequests, code: codeRateLimited,
			message: "rate limit exceeded", retryAfter: time.Second}
	}
	delay := res.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	res.CancelAt(now)
	return &apiError{
		status:     http.StatusTooManyRequests,
		code:       codeRateLimited,
		message:    fmt.Sprintf("rate limit exceeded for credential %s: at most %g requests per second (burst %d)", c.id, a.cfg.RateLimit, a.cfg.RateBurst),
		retryAfter: delay,
	}
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeError(w, r, &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message: "draining: this instance is shutting down", retryAfter: a.cfg.RetryAfter})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.svc.Ready(ctx); err != nil {
		a.log.Warn("readiness check failed", "request_id", requestID(r.Context()), "err", err)
		writeError(w, r, &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message: "store unavailable", retryAfter: a.cfg.RetryAfter})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// internal logs err at error level with the request id and returns the
// opaque 500 the client sees, or 503-01 with Retry-After when the store is
// unreachable (a shared store such as Redis), since a retry may then succeed.
func (a *API) internal(r *http.Request, what string, err error) *apiError {
	if errors.Is(err, transfer.ErrUnavailable) {
		a.log.Warn("store unavailable", "request_id", requestID(r.Context()), "op", what, "err", err)
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message:    "the transfer store is unavailable right now; retry later",
			retryAfter: a.cfg.RetryAfter}
	}
	a.log.Error("internal error", "request_id", requestID(r.Context()), "op", what, "err", err)
	return errorf(http.StatusInternalServerError, codeInternal,
		"internal error; quote request id %s when reporting it", requestID(r.Context()))
}

// methodLabel bounds the method label to the methods we know.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// routeLabel is the matched pattern without its method: bounded, never the raw path.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return pattern[i+1:]
	}
	return pattern
}
