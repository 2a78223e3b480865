package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/webhook/webhooktest"
)

// hookWaitLimit bounds waiting for webhooks that go through retries with
// backoff (1 s, 2 s, 4 s, ...); only a failing test waits this long.
const hookWaitLimit = 90 * time.Second

// hook is one request a hookReceiver got.
type hook struct {
	id, typ, transfer string
	data              []byte // the "data" member, as sent
	body              []byte
	header            http.Header
	at                time.Time
	status            int   // what the receiver answered
	err               error // the signature (checked by the Standard Webhooks library) or body did not verify
}

// hookReceiver is a webhook endpoint on loopback. It verifies every request
// with the Standard Webhooks reference library, not Handoff's signer, and
// records it.
type hookReceiver struct {
	t    *testing.T
	srv  *httptest.Server
	wh   *standardwebhooks.Webhook
	addr string // 127.0.0.1:port
	url  string // with a path and a query, as receivers have

	mu      sync.Mutex
	got     []hook       // answered, in the order answered
	pending map[int]hook // received, not answered yet
	seq     int
	respond func(h hook, w http.ResponseWriter) int // nil answers 204
}

// newHookReceiver serves at once on a free port.
func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	r := unstartedHookReceiver(t, secret, testenv.FreePort(t, false))
	r.start()
	return r
}

// unstartedHookReceiver has its URL on port but listens only once start
// is called: until then, connections to it are refused.
func unstartedHookReceiver(t *testing.T, secret string, port int) *hookReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, wh: wh, addr: fmt.Sprintf("127.0.0.1:%d", port), pending: map[int]hook{}}
	r.url = "http://" + r.addr + "/hooks/handoff?token=rcv-token"
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() { r.srv.Listener.Close() }) // the one start replaces, if it never runs
	return r
}

func (r *hookReceiver) start() {
	r.t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	r.t.Cleanup(r.srv.Close)
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	rec := webhooktest.Read(req, r.wh, true)
	h := hook{id: rec.ID, typ: rec.Type, transfer: rec.Transfer, data: rec.Data, body: rec.Body, header: rec.Header, at: time.Now(), err: rec.Err}
	r.mu.Lock()
	r.seq++
	n, respond := r.seq, r.respond
	r.pending[n] = h
	r.mu.Unlock()
	h.status = http.StatusNoContent
	if respond != nil {
		h.status = respond(h, w)
	} else {
		w.WriteHeader(h.status)
	}
	r.mu.Lock()
	delete(r.pending, n)
	r.got = append(r.got, h)
	r.mu.Unlock()
}

// inFlight lists the requests not answered yet.
func (r *hookReceiver) inFlight() []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hook
	for _, h := range r.pending {
		out = append(out, h)
	}
	return out
}

// setRespond decides the answers from now on: respond writes the header
// (and may block) and returns the status it wrote.
func (r *hookReceiver) setRespond(respond func(h hook, w http.ResponseWriter) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = respond
}

func (r *hookReceiver) hooks() []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hook(nil), r.got...)
}

// waitFor polls the answered requests until cond holds and returns them.
func (r *hookReceiver) waitFor(what string, cond func([]hook) bool) []hook {
	r.t.Helper()
	var got []hook
	waitLong(r.t, what, func() bool {
		got = r.hooks()
		return cond(got)
	})
	return got
}

// waitLong polls cond every 20 ms until it holds, for up to hookWaitLimit.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Poll(t, hookWaitLimit, 20*time.Millisecond, what, cond)
}

// delivered keeps the requests answered 2xx, in arrival order.
func delivered(hs []hook) []hook {
	var out []hook
	for _, h := range hs {
		if h.status/100 == 2 {
			out = append(out, h)
		}
	}
	return out
}

// typesOf lists the event types of transfer id in hs, in order.
func typesOf(hs []hook, id string) string {
	var s []string
	for _, h := range hs {
		if h.transfer == id {
			s = append(s, h.typ)
		}
	}
	return strings.Join(s, " ")
}

// checkVerified fails on any request whose signature or body did not verify.
func checkVerified(t *testing.T, hs []hook) {
	t.Helper()
	for _, h := range hs {
		if h.err != nil {
			t.Errorf("%s %s (%s): %v", h.typ, h.transfer, h.id, h.err)
		}
	}
}

func describe(hs []hook) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "\n  %s %s %s -> %d", h.id, h.transfer, h.typ, h.status)
	}
	return b.String()
}

// webhookLine is an auth.credentials entry with a webhook endpoint.
func webhookLine(c cred, url, secret string) string {
	return fmt.Sprintf("    - {id: %s, secret: %s, webhook_url: %q, webhook_secret: %s}", c.id, c.secret, url, secret)
}

// getRaw is GET's body as sent, less its final newline.
func (p *proc) getRaw(c cred, id string) []byte {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+transfersPath+"/"+id, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("asapp-api-id", c.id)
	req.Header.Set("asapp-api-secret", c.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: %d %s", id, resp.StatusCode, raw)
	}
	return bytes.TrimSuffix(raw, []byte("\n"))
}

// waitMetric waits until /metrics has this exact sample line.
func (p *proc) waitMetric(line string) {
	p.t.Helper()
	waitLong(p.t, "/metrics to show "+line, func() bool { return p.metric(line) })
}
