package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

// reloadKeyNames are the keys a reload applies without a restart (and
// without dropping calls), named from the Config's fields. Every other
// changed key is reported as needing a restart.
type reloadKeyNames struct {
	credentials string // control.API.SetCredentials: atomic swap
	pools       string // transfer.Service.SetNumbers: leased numbers keep serving
	logLevel    string // slog.LevelVar
	sipTrace    string // the tracer's switch
	// webhooks are the keys of the webhook endpoints (credentials too): the
	// endpoint table is swapped; queued events go to the new endpoints.
	webhooks []string
	// admission are the sections of sip.Server.SetLimits (sip.limits.*,
	// sip.overload.*): counters and calls in progress are kept.
	admission []string
}

var reloadKeys = func() reloadKeyNames {
	var c Config
	k, w := keyNamesOf(&c), &c.Webhooks
	return reloadKeyNames{
		credentials: k.of(&c.Auth.Credentials),
		pools:       k.of(&c.Numbers.Pools),
		logLevel:    k.of(&c.Log.Level),
		sipTrace:    k.of(&c.Log.SIPTrace),
		webhooks: []string{k.of(&c.Auth.Credentials),
			k.of(&w.DefaultURL), k.of(&w.DefaultSecret), k.of(&w.DefaultSecretFile), k.of(&w.AllowInsecure)},
		admission: []string{k.of(&c.SIP.Limits), k.of(&c.SIP.Overload)},
	}
}()

// reloadable reports whether a reload applies key without a restart.
func (n reloadKeyNames) reloadable(key string) bool {
	return key == n.pools || key == n.logLevel || key == n.sipTrace || slices.Contains(n.webhooks, key) || n.isAdmission(key)
}

// isAdmission reports whether key is in one of the admission sections.
func (n reloadKeyNames) isAdmission(key string) bool {
	return slices.ContainsFunc(n.admission, func(section string) bool { return strings.HasPrefix(key, section+".") })
}

// changed reports whether any of keys is in applied.
func changed(applied []string, keys ...string) bool {
	return slices.ContainsFunc(applied, func(k string) bool { return slices.Contains(keys, k) })
}

// reloader re-reads the configuration (SIGHUP) and applies what it can.
type reloader struct {
	path      string
	lookupEnv func(string) (string, bool)
	log       *slog.Logger
	level     *slog.LevelVar
	tracer    *sipTracer
	api       *control.API
	svc       *transfer.Service
	webhooks  *webhookRouting
	sip       *sip.Server // nil until the SIP server has started

	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge

	mu  sync.Mutex
	cur Config // what runs: the start-up config plus the reloads applied
}

func newReloader(cfg Config, path string, lookupEnv func(string) (string, bool), log *slog.Logger, level *slog.LevelVar,
	tracer *sipTracer, api *control.API, svc *transfer.Service, webhooks *webhookRouting, reg prometheus.Registerer) (*reloader, error) {
	r := &reloader{
		path: path, lookupEnv: lookupEnv, log: log, level: level, tracer: tracer, api: api, svc: svc, webhooks: webhooks, cur: cfg,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_config_reloads_total",
			Help: "Configuration reloads (SIGHUP), by result (success, failure).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load (start-up or reload).",
		}),
	}
	r.reloads.WithLabelValues("success")
	r.reloads.WithLabelValues("failure")
	r.lastSuccess.SetToCurrentTime()
	for _, c := range []prometheus.Collector{r.reloads, r.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register reload metrics: %w", err)
		}
	}
	return r, nil
}

// reload loads the configuration again (file, environment, secret files),
// applies the reloadable keys that changed and warns about the others. An
// invalid configuration changes nothing.
func (r *reloader) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.apply(ctx)
	if err != nil {
		r.reloads.WithLabelValues("failure").Inc()
		r.log.Error("configuration reload failed; nothing changed", "source", r.source(), "err", err)
		return err
	}
	r.reloads.WithLabelValues("success").Inc()
	r.lastSuccess.SetToCurrentTime()
	return nil
}

func (r *reloader) source() string {
	if r.path == "" {
		return "built-in defaults"
	}
	return r.path
}

func (r *reloader) apply(ctx context.Context) error {
	next, err := Load(r.path, r.lookupEnv)
	if err != nil {
		return err
	}
	applied, restart := diffKeys(&r.cur, &next)

	// Pools first: the only step that can fail (the store), so a failure
	// leaves everything as it was.
	if changed(applied, reloadKeys.pools) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.svc.SetNumbers(sctx, next.Numbers.Pools)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", reloadKeys.pools, err)
		}
		r.cur.Numbers.Pools = next.Numbers.Pools
	}
	if changed(applied, reloadKeys.credentials) {
		if err := r.api.SetCredentials(next.apiCredentials()); err != nil {
			return fmt.Errorf("%s: %w", reloadKeys.credentials, err) // not reached: Load validated them
		}
		r.cur.Auth = next.Auth
		if next.UsesDevCredential() {
			r.log.Warn("auth.credentials includes the built-in development credential (id " + devCredentialID + ")")
		}
	}
	if changed(applied, reloadKeys.webhooks...) {
		r.webhooks.dir.Store(webhookDirectory(&next))
		w := &r.cur.Webhooks
		w.DefaultURL, w.DefaultSecret, w.DefaultSecretFile, w.AllowInsecure =
			next.Webhooks.DefaultURL, next.Webhooks.DefaultSecret, next.Webhooks.DefaultSecretFile, next.Webhooks.AllowInsecure
	}
	// The new log level takes effect after the lines about this reload, when
	// it is stricter, so they show whichever way the level moves.
	var newLevel slog.Level
	_ = newLevel.UnmarshalText([]byte(next.Log.Level)) // validated by Load
	if newLevel < r.level.Level() {
		r.level.Set(newLevel)
	}
	defer r.level.Set(newLevel)
	r.cur.Log.Level = next.Log.Level
	if slices.ContainsFunc(applied, reloadKeys.isAdmission) {
		r.cur.SIP.Limits, r.cur.SIP.Overload = next.SIP.Limits, next.SIP.Overload
		if r.sip != nil {
			r.sip.SetLimits(r.cur.SIP.admission())
		}
	}
	if changed(applied, reloadKeys.sipTrace) {
		r.tracer.on.Store(next.Log.SIPTrace)
		r.cur.Log.SIPTrace = next.Log.SIPTrace
	}

	ids := make([]string, 0, len(r.cur.Auth.Credentials))
	for _, c := range r.cur.Auth.Credentials {
		ids = append(ids, c.ID)
	}
	countries := make([]string, 0, len(r.cur.Numbers.Pools))
	for cc := range r.cur.Numbers.Pools {
		countries = append(countries, cc)
	}
	sort.Strings(countries)
	// Key names only: a credential's secret never reaches the log.
	r.log.Info("configuration reloaded",
		"source", r.source(),
		"applied", applied,
		"credential_ids", ids,
		"webhook_credentials", webhookCredentials(&r.cur),
		"pool_countries", countries,
		"log_level", r.cur.Log.Level,
		"sip_trace", r.cur.Log.SIPTrace,
	)
	if len(restart) > 0 {
		r.log.Warn("configuration changes need a restart to take effect; they are ignored until then",
			"keys", restart)
	}
	return nil
}

// setSIP hands the started SIP server to the reloader, with the admission
// limits of any reload that came before it.
func (r *reloader) setSIP(s *sip.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sip = s
	s.SetLimits(r.cur.SIP.admission())
}

// diffKeys lists the keys whose values differ between cur and next, split
// into those a reload applies and those that need a restart.
func diffKeys(cur, next *Config) (applied, restart []string) {
	nextKeys := configKeys(next)
	for i, k := range configKeys(cur) {
		if reflect.DeepEqual(k.field.Interface(), nextKeys[i].field.Interface()) {
			continue
		}
		if reloadKeys.reloadable(k.Key) {
			applied = append(applied, k.Key)
		} else {
			restart = append(restart, k.Key)
		}
	}
	return applied, restart
}
