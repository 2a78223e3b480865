// Command handoff runs the Handoff B2BUA: the call-transfer control API, the
// number pool and the embedded store, and the SIP server (see sip.go).
//
//	handoff                      # built-in defaults: loopback only, store under ./data
//	handoff -config handoff.yaml # YAML config, overridden by HANDOFF_* variables
//	handoff -config handoff.yaml -check
//
// SIGTERM or SIGINT drains: the API refuses new transfers and /readyz
// answers 503, SIP answers new INVITEs and OPTIONS with 503, calls in
// progress may run on for drain.timeout, then the HTTP server stops and the
// store is closed; the exit status is 0. A second signal cuts the drain short.
//
// SIGHUP reloads what can change without dropping calls (reload.go): API
// credentials (and their webhook endpoints), number pools, the default
// webhook endpoint, log.level and log.sip_trace.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // could not start, or failed while running
	exitUsage   = 2 // bad flags or configuration
)

// sweepInterval is how often ACTIVE transfers past their expiry are stored as
// EXPIRED (reads show EXPIRED from expiresAt on, whatever the sweeper does).
const sweepInterval = time.Second

// httpShutdownTimeout bounds the HTTP server's graceful shutdown once calls
// have drained.
const httpShutdownTimeout = 5 * time.Second

func main() {
	tuneProcs(os.LookupEnv) // the process's, not run's: tests call run in theirs
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("handoff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (built-in defaults when empty; HANDOFF_* variables override either)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: handoff [-config FILE] [-check]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nKeys, defaults and HANDOFF_* overrides: docs/configuration.md\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "handoff: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return exitUsage
	}
	cfg, err := Load(*configPath, lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "handoff: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	if *check {
		fmt.Fprintln(stdout, "configuration OK")
		return exitOK
	}
	out := newLogBuffer(stderr)
	defer out.Close()
	log, level := newLogger(cfg.Log, out)
	if err := serve(cfg, *configPath, lookupEnv, log, level); err != nil {
		log.Error("handoff failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// newLogger builds the process logger, writing to w in batches (logbuf.go);
// level changes it at run time (reload).
func newLogger(c LogConfig, w *logBuffer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	_ = level.UnmarshalText([]byte(c.Level)) // validated by Load
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(flushingHandler{h, w}), level
}

// serve runs the process until a signal has been handled or something fails.
func serve(cfg Config, configPath string, lookupEnv func(string) (string, bool), log *slog.Logger, level *slog.LevelVar) (err error) {
	logConfig(cfg, configPath, log)

	// Signals first, so a SIGTERM during start-up is not lost (and a SIGHUP
	// does not kill the process). SIGHUP has its own channel: it must never
	// count as the second signal that cuts a drain short.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	// sipgo's message hook is process-wide and read unsynchronised: install
	// it before any SIP socket exists; log.sip_trace switches its output.
	tracer := installSIPTracer(log, cfg.Log.SIPTrace)
	// So are sipgo's transaction timers.
	linger := sip.SetTransactionLinger(cfg.SIP.TransactionLinger)

	hooks := newWebhookRouting(&cfg)
	store, storeWhere, err := openStore(cfg, hooks.storeWebhooks(&cfg))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
		} else {
			log.Info("store closed", storeWhere...)
		}
	}()
	log.Info("store opened", storeWhere...)

	svc := transfer.NewService(store, transfer.ServiceConfig{TTL: cfg.Numbers.TTL, Retention: cfg.Store.Retention, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := svc.SetNumbers(ctx, cfg.Numbers.Pools); err != nil {
		return fmt.Errorf("numbers.pools: %w", err)
	}
	// Calls this node had in progress died with its previous process: end
	// their transfers now, so IVRs polling them get an answer.
	if n, err := svc.EndOrphans(ctx, cfg.Node.ID); err != nil {
		log.Warn("could not end the calls left by the previous process", "err", err)
	} else if n > 0 {
		log.Warn("ended the calls left by the previous process", "count", n, "end_reason", transfer.EndNodeRestarted)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	if err := svc.Register(reg); err != nil {
		return fmt.Errorf("register transfer metrics: %w", err)
	}
	dispatcher, err := hooks.newDispatcher(&cfg, store, reg, log)
	if err != nil {
		return err
	}

	var rl *reloader // the API's reload endpoint calls it once it exists
	api, err := control.New(control.Config{
		Credentials:    cfg.apiCredentials(),
		Reload:         func(ctx context.Context) error { return rl.reload(ctx) },
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		RateLimit:      cfg.HTTP.RateLimit,
		RateBurst:      cfg.HTTP.RateBurst,
		SIPTransferURI: cfg.TransferURI,
	}, svc, reg, log)
	if err != nil {
		return err
	}

	rl, err = newReloader(cfg, configPath, lookupEnv, log, level, tracer, api, svc, hooks, reg)
	if err != nil {
		return err
	}
	twilio, err := newTwilioAPI(cfg.Agent.TwilioAPI, log)
	if err != nil {
		return fmt.Errorf("agent.twilio_api: %w", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, so it runs first)
	defer cancel()
	wg.Go(func() { svc.RunSweeper(ctx, sweepInterval) })
	wg.Go(func() { svc.RunNode(ctx, nodeConfig(cfg)) }) // heartbeat, node_lost (shared store only)
	// Webhooks go out while the process drains; at exit the attempts in
	// flight finish, and the rest wait in the store.
	wg.Go(func() { dispatcher.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hups:
				_ = rl.reload(ctx)
			}
		}
	})

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           httpHandler(api, twilio),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	tlsConf, err := serverTLS("http.tls", cfg.HTTP.TLS)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if tlsConf != nil {
		srv.TLSConfig = tlsConf
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	log.Info("http listening", "addr", ln.Addr().String())

	sipSrv, err := startSIP(ctx, cfg, svc, reg, log, twilio)
	if err != nil {
		_ = srv.Close()
		<-serveErr
		return fmt.Errorf("start SIP: %w", err)
	}
	rl.setSIP(sipSrv) // sip.limits and sip.overload reload
	log.Info("handoff started", "gomaxprocs", runtime.GOMAXPROCS(0), "transaction_linger", linger.String())

	var runErr error
	select {
	case sig := <-sigs:
		log.Info("signal received: draining", "signal", sig.String(),
			"drain_delay", cfg.Drain.Delay.String(), "drain_timeout", cfg.Drain.Timeout.String())
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
		log.Error("http server stopped unexpectedly; shutting down", "err", err)
		serveErr <- err // for the shutdown below
	}

	// Drain: refuse new transfers and calls, report not ready (/readyz and
	// SIP OPTIONS answer 503), give load balancers and SBCs drain.delay to
	// notice, then let calls finish within drain.timeout. A second signal
	// cuts all of that short.
	api.SetDraining(true)
	sipSrv.SetDraining(true)
	drainCtx, drainCancel := context.WithCancel(context.Background())
	defer drainCancel()
	go func() {
		select {
		case sig := <-sigs:
			log.Warn("second signal: cutting the drain short", "signal", sig.String())
			drainCancel()
		case <-drainCtx.Done():
		}
	}()
	if cfg.Drain.Delay > 0 && runErr == nil {
		select {
		case <-time.After(cfg.Drain.Delay):
		case <-drainCtx.Done():
		}
	}
	sipCtx, sipCancel := context.WithTimeout(drainCtx, cfg.Drain.Timeout)
	start := time.Now()
	if err := sipSrv.Shutdown(sipCtx); err != nil {
		log.Warn("calls did not drain in time; ended them", "err", err)
	} else {
		log.Info("calls drained", "took", time.Since(start).Round(time.Millisecond).String())
	}
	sipCancel()

	httpCtx, httpCancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer httpCancel()
	if err := srv.Shutdown(httpCtx); err != nil {
		log.Warn("http shutdown timed out; closing connections", "err", err)
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("http server: %w", err)
	}
	log.Info("http server stopped")
	drainCancel()
	return runErr
}

// httpHandler is the HTTP server's handler: the control API, and the
// Twilio-compatible hang-up endpoint when it is configured (it checks its
// own basic credentials, agent.twilio_api).
func httpHandler(api *control.API, twilio *agent.TwilioAPI) http.Handler {
	if twilio == nil {
		return api.Handler()
	}
	mux := http.NewServeMux()
	mux.Handle("/", api.Handler())
	mux.Handle(agent.TwilioAPIPath, twilio)
	return mux
}

// logConfig logs what the process runs with; never secrets.
func logConfig(cfg Config, configPath string, log *slog.Logger) {
	source := configPath
	if source == "" {
		source = "built-in defaults"
	}
	ids := make([]string, 0, len(cfg.Auth.Credentials))
	for _, c := range cfg.Auth.Credentials {
		ids = append(ids, c.ID)
	}
	countries := make([]string, 0, len(cfg.Numbers.Pools))
	for cc := range cfg.Numbers.Pools {
		countries = append(countries, cc)
	}
	sort.Strings(countries)
	log.Info("configuration loaded",
		"source", source,
		"http_listen", cfg.HTTP.Listen,
		"store_path", cfg.Store.Path,
		"store_redis_url", redactedURL(cfg.Store.RedisURL),
		"node_id", cfg.Node.ID,
		"credential_ids", ids,
		"number_ttl", cfg.Numbers.TTL.String(),
		"number_quarantine", cfg.Numbers.Quarantine.String(),
		"pool_countries", countries,
		"sip_listen", cfg.SIP.Listen,
		"sip_external_host", cfg.SIP.ExternalHost,
		"sip_digest", len(cfg.SIP.Digest.Users) > 0,
		"agent_mode", cfg.Agent.Mode,
		"agent_sip_uri", cfg.Agent.SIP.URI,
		"agent_twilio_api", cfg.Agent.TwilioAPI.Enabled(),
		"webhook_credentials", webhookCredentials(&cfg),
		"webhook_default", cfg.Webhooks.DefaultURL != "",
	)
	if cfg.UsesDevCredential() {
		log.Warn("auth.credentials includes the built-in development credential (id " + devCredentialID +
			"); configure your own credentials before exposing this service")
	}
	if configPath == "" {
		log.Warn("no -config given: running on built-in defaults (loopback only, store under ./data)")
	}
}
