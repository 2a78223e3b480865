package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
	"github.com/handoff/handoff/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	pathCreate = "/generativeagent/v1/call-transfers"
	ttl        = 10 * time.Minute
)

var (
	credA  = control.Credential{ID: "ivr-a", Secret: "secret-a-0123456789"}
	credB  = control.Credential{ID: "ivr-b", Secret: "secret-b-0123456789"}
	credRO = control.Credential{ID: "ivr-ro", Secret: "secret-ro-0123456789", ReadOnly: true}
)

// faultyStore is the real bolt store with failures injected on demand.
type faultyStore struct {
	transfer.Store
	mode atomic.Value // "", "error", "panic"
}

var errInjected = errors.New("injected store failure")

func (f *faultyStore) fail() error {
	switch f.mode.Load() {
	case "error":
		return errInjected
	case "panic":
		panic("injected store panic")
	case "unavailable":
		return errUnreachable
	}
	return nil
}

// errUnreachable is what a shared store returns when its server is away.
var errUnreachable = fmt.Errorf("%w: dial tcp 127.0.0.1:6379: connect: connection refused", transfer.ErrUnavailable)

func (f *faultyStore) Create(ctx context.Context, t *transfer.Transfer, now time.Time) (*transfer.Transfer, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Store.Create(ctx, t, now)
}

func (f *faultyStore) Get(ctx context.Context, id string) (*transfer.Transfer, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, id)
}

func (f *faultyStore) Ping(ctx context.Context) error {
	switch f.mode.Load() {
	case "error":
		return errInjected
	case "unavailable":
		return errUnreachable
	}
	return f.Store.Ping(ctx)
}

type env struct {
	t      testing.TB
	srv    *httptest.Server
	api    *control.API
	svc    *transfer.Service
	store  *faultyStore
	reg    *prometheus.Registry
	outbox webhook.Outbox // the bolt store's, written when envConfig.webhooks is set
	client *http.Client
	logs   *testenv.Buffer // log output of concurrent handlers
	offset atomic.Int64    // added to the service clock
}

type envConfig struct {
	cfg   control.Config
	pools map[string][]string
	log   io.Writer
	plain bool // no contract checking (benchmarks)
	// webhooks, when set, has the store write webhook events rendered by
	// control.EventPayload (its Payload is filled in).
	webhooks *transfer.Webhooks
}

// newEnv serves the API over real HTTP on loopback, on the real Service and
// the real bolt store in a temporary directory.
func newEnv(t testing.TB, opts ...func(*envConfig)) *env {
	t.Helper()
	ec := &envConfig{
		cfg: control.Config{
			Credentials: []control.Credential{credA, credB, credRO},
			SIPTransferURI: func(id string) string {
				return "sip:" + id + "@handoff.test:5060"
			},
			RetryAfter: 3 * time.Second,
		},
		pools: map[string][]string{"US": {"+19995550100-+19995550109"}, "GB": {"+447700900001"}},
	}
	for _, o := range opts {
		o(ec)
	}
	e := &env{t: t, logs: &testenv.Buffer{}, reg: prometheus.NewRegistry()}
	var w io.Writer = e.logs
	if ec.log != nil {
		w = ec.log
	}
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))

	if ec.webhooks != nil {
		ec.webhooks.Payload = control.EventPayload(ec.cfg.SIPTransferURI)
	}
	bolt, err := transfer.OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute, Webhooks: ec.webhooks})
	if err != nil {
		t.Fatal(err)
	}
	e.outbox = bolt
	e.store = &faultyStore{Store: bolt}
	e.store.mode.Store("")
	e.svc = transfer.NewService(e.store, transfer.ServiceConfig{
		TTL:    ttl,
		Clock:  func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) },
		Logger: logger,
	})
	if err := e.svc.SetNumbers(context.Background(), ec.pools); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Register(e.reg); err != nil {
		t.Fatal(err)
	}
	e.api, err = control.New(ec.cfg, e.svc, e.reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.api.Handler())
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	var rt http.RoundTripper = tr
	if !ec.plain {
		rt = newContractTransport(t, tr, e.srv.URL)
	}
	e.client = &http.Client{Transport: rt, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		e.srv.Close()
		tr.CloseIdleConnections()
		bolt.Close()
	})
	return e
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r *response) errCode() string { return r.str("error.code") }

// str digs a dotted path out of the JSON body ("" when absent).
func (r *response) str(path string) string {
	v := r.get(path)
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func (r *response) get(path string) any {
	var v any = r.body
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

type hdr map[string]string

func auth(c control.Credential) hdr {
	return hdr{"asapp-api-id": c.ID, "asapp-api-secret": c.Secret}
}

// do sends body (a string is sent verbatim, anything else as JSON).
func (e *env) do(method, path string, body any, h hdr) *response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return r
}

func (e *env) create(c control.Credential, body any) *response {
	e.t.Helper()
	return e.do(http.MethodPost, pathCreate, body, auth(c))
}

func (e *env) fetch(c control.Credential, id string) *response {
	e.t.Helper()
	return e.do(http.MethodGet, pathCreate+"/"+id, nil, auth(c))
}

// expect fails unless r has this status and (for errors) this code.
func expect(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.errCode() != code) {
		t.Fatalf("got %d %s, want %d %s; body %s", r.status, r.errCode(), status, code, r.raw)
	}
}

var idSeq atomic.Int64

func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), idSeq.Add(1))
}

func phoneBody(id, country string) map[string]any {
	return map[string]any{
		"id": id, "externalConversationId": "conv-" + id, "type": "PHONE_NUMBER",
		"phoneNumber":  map[string]any{"country": country},
		"inputContext": map[string]any{"taskName": "Welcome", "inputVariables": map[string]any{"name": "Ada"}},
	}
}

func sipBody(id string, sip map[string]any) map[string]any {
	b := map[string]any{"id": id, "externalConversationId": "conv-" + id, "type": "SIP"}
	if sip != nil {
		b["sip"] = sip
	}
	return b
}
