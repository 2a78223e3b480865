package main

// Subprocess tests of lifecycle webhooks: the real binary posting to real
// HTTP receivers on loopback, which check every signature with the
// Standard Webhooks library.

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
)

// The life of a SIP transfer with a call, returned by REFER: created,
// ongoing and completed arrive in that order, each carrying what GET
// showed at that moment, byte for byte, signed.
func TestWebhooksFollowASIPCall(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, hookSecretA)
	path := filepath.Join(t.TempDir(), "handoff.yaml")
	callConfig{logLevel: "debug", rtpPorts: "47000-47099", creds: []string{webhookLine(ivr, rcv.url, hookSecretA)}}.write(t, path)
	p := startHandoff(t, "", nil, "-config", path)

	created := p.create(ivr, sipTransfer("hook-call", map[string]any{
		"returnTransferType": "REFER", "returnUri": "sip:ivr-return@127.0.0.1:5999"}))
	want := map[string][]byte{"transfer.created": p.getRaw(ivr, "hook-call")}
	phone := siptest.NewPhone(t, "127.0.0.1")
	refers := make(chan *sip.Request, 1)
	phone.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		refers <- req
	})
	call := phone.MustAnswer(str(created, "sip.transferUri"), phone.Offer("0 101")) // with telephone-event
	exchangeAudio(call, 5)
	waitLong(t, "ONGOING", func() bool { _, out := p.get(ivr, "hook-call"); return str(out, "status") == "ONGOING" })
	want["transfer.ongoing"] = p.getRaw(ivr, "hook-call")
	call.SendDTMF('#')
	siptest.Receive(t, refers, "the REFER return")
	call.Notify("SIP/2.0 200 OK", "terminated;reason=noresource")
	phone.WaitBye()

	got := rcv.waitFor("three events", func(hs []hook) bool { return len(delivered(hs)) == 3 })
	want["transfer.completed"] = p.getRaw(ivr, "hook-call")
	if !bytes.Contains(want["transfer.completed"], []byte(`"returnResult":{"method":"REFER","result":"succeeded"`)) {
		t.Fatalf("GET after the return: %s", want["transfer.completed"])
	}
	checkVerified(t, got)
	if s := typesOf(got, "hook-call"); s != "transfer.created transfer.ongoing transfer.completed" {
		t.Fatalf("events %q, want created, ongoing, completed", s)
	}
	for _, h := range got {
		if !bytes.Equal(h.data, want[h.typ]) {
			t.Errorf("%s data:\n%s\nGET then:\n%s", h.typ, h.data, want[h.typ])
		}
		if h.header.Get("User-Agent") != "Handoff-Webhooks/1" || !strings.HasPrefix(h.id, "evt_") {
			t.Errorf("%s: id %q, User-Agent %q", h.typ, h.id, h.header.Get("User-Agent"))
		}
	}
	p.waitMetric(`handoff_webhook_deliveries_total{result="delivered",type="transfer.completed"} 1`)
	p.waitMetric("handoff_webhook_events_pending 0")
	if strings.Contains(p.logs.String(), hookSecretA) || strings.Contains(p.logs.String(), "rcv-token") {
		t.Error("the webhook secret or the URL's token is in the logs")
	}
}

// The receiver is down (connections refused) while events happen; once it
// is up, every event arrives, in order per transfer.
func TestWebhooksWaitForTheReceiver(t *testing.T) {
	t.Parallel()
	rcv := unstartedHookReceiver(t, hookSecretA, testenv.FreePort(t, false))
	path := filepath.Join(t.TempDir(), "handoff.yaml")
	callConfig{logLevel: "debug", rtpPorts: "47100-47199", creds: []string{webhookLine(ivr, rcv.url, hookSecretA)}, extra: "numbers:\n  ttl: 2s\n"}.write(t, path)
	p := startHandoff(t, "", nil, "-config", path)
	ids := []string{"down-1", "down-2", "down-3"}
	for _, id := range ids {
		p.create(ivr, sipTransfer(id, nil))
	}
	// Each transfer expires: six events wait, the heads retried.
	p.waitMetric("handoff_webhook_events_pending 6")
	p.waitLog("webhook attempt failed, will retry")
	rcv.start()

	got := rcv.waitFor("six events", func(hs []hook) bool { return len(delivered(hs)) == 6 })
	checkVerified(t, got)
	for _, id := range ids {
		if s := typesOf(got, id); s != "transfer.created transfer.expired" {
			t.Errorf("%s: %q, want created then expired", id, s)
		}
	}
	p.waitMetric("handoff_webhook_events_pending 0")
	if p.metric(`handoff_webhook_retries_total{reason="connection"} 0`) {
		t.Error("no retry counted for the refused connections")
	}
}

// SIGKILL with events undelivered (one attempt in flight per transfer, the
// rest queued behind it): after the restart every event arrives, and a
// duplicate repeats the webhook-id and the body.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, hookSecretA)
	release := make(chan struct{})
	rcv.setRespond(func(h hook, w http.ResponseWriter) int {
		<-release // the first attempts hang until the process is dead
		w.WriteHeader(http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "handoff.yaml")
	cfg := callConfig{logLevel: "debug", rtpPorts: "47200-47299", creds: []string{webhookLine(ivr, rcv.url, hookSecretA)},
		extra: "numbers:\n  ttl: 2s\nwebhooks:\n  timeout: 60s\n"}
	cfg.write(t, path)
	p := startHandoff(t, "", nil, "-config", path)
	ids := []string{"kill-1", "kill-2", "kill-3"}
	for _, id := range ids {
		p.create(ivr, sipTransfer(id, nil))
	}
	p.waitMetric("handoff_webhook_events_pending 6")
	waitLong(t, "the three attempts in flight", func() bool { return len(rcv.inFlight()) == 3 })
	p.kill()
	first := rcv.inFlight()
	rcv.setRespond(nil)
	close(release)

	cfg.write(t, path) // a new SIP port: the dead process's may linger
	p = startHandoff(t, "", nil, "-config", path)
	got := delivered(rcv.waitFor("six events", func(hs []hook) bool { return len(delivered(hs)) == 6 }))
	checkVerified(t, got)
	for _, id := range ids {
		if s := typesOf(got, id); s != "transfer.created transfer.expired" {
			t.Errorf("%s: %q, want created then expired", id, s)
		}
	}
	for _, f := range first {
		var again *hook
		for i := range got {
			if got[i].transfer == f.transfer && got[i].typ == f.typ {
				again = &got[i]
			}
		}
		if again == nil || again.id != f.id || !bytes.Equal(again.body, f.body) {
			t.Errorf("%s %s: first sent as %s, after the restart as %v: a duplicate must repeat the id and body", f.transfer, f.typ, f.id, again)
		}
	}
	p.waitMetric("handoff_webhook_events_pending 0")
}

// A receiver that answers 410 gets no retry (the transfer's next event
// still comes); one that answers 503 with Retry-After is retried no sooner.
func TestWebhooksGoneAndRetryAfter(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, hookSecretA)
	rcv.setRespond(func(h hook, w http.ResponseWriter) int {
		switch {
		case h.transfer == "gone" && h.typ == "transfer.created":
			w.WriteHeader(http.StatusGone)
			return http.StatusGone
		case h.transfer == "busy" && h.typ == "transfer.created" && len(rcv.requestsOf(h.id)) == 0:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	path := filepath.Join(t.TempDir(), "handoff.yaml")
	callConfig{logLevel: "debug", rtpPorts: "47300-47399", creds: []string{webhookLine(ivr, rcv.url, hookSecretA)}, extra: "numbers:\n  ttl: 2s\n"}.write(t, path)
	p := startHandoff(t, "", nil, "-config", path)
	p.create(ivr, sipTransfer("gone", nil))
	p.create(ivr, sipTransfer("busy", nil))

	got := rcv.waitFor("the expiries of both", func(hs []hook) bool {
		return strings.Contains(typesOf(delivered(hs), "gone"), "expired") && typesOf(delivered(hs), "busy") == "transfer.created transfer.expired"
	})
	checkVerified(t, got)
	if s := typesOf(got, "gone"); s != "transfer.created transfer.expired" {
		t.Errorf("gone: %q, want created once (410: not retried), then expired", s)
	}
	busy := rcv.requestsOf(got[indexOf(got, "busy", "transfer.created")].id)
	if len(busy) != 2 || busy[0].status != 503 || busy[1].status != 200 {
		t.Fatalf("busy's created: %v, want 503 then 200 under one id", describe(busy))
	}
	if gap := busy[1].at.Sub(busy[0].at); gap < 3*time.Second {
		t.Errorf("retried %s after a 503 with Retry-After: 3", gap)
	}
	p.waitMetric(`handoff_webhook_deliveries_total{result="failed",type="transfer.created"} 1`)
	p.waitMetric(`handoff_webhook_retries_total{reason="http_5xx"} 1`)
}

// Each credential's transfers go to its own endpoint only (a credential
// without one gets none), headers-mode transfers to the default endpoint;
// a reload moves a credential to another endpoint.
func TestWebhooksGoToTheirCredentialOnly(t *testing.T) {
	t.Parallel()
	rcvA, rcvB, rcvD := newHookReceiver(t, hookSecretA), newHookReceiver(t, hookSecretB), newHookReceiver(t, hookSecretB)
	quiet := cred{"quiet", "quiet-secret-7g8h9i"}
	path := filepath.Join(t.TempDir(), "handoff.yaml")
	cfg := callConfig{logLevel: "debug", rtpPorts: "47400-47499", sip: fmt.Sprintf("  headers_mode: {enabled: true, owner: %s}", ivr.id),
		extra: fmt.Sprintf("webhooks:\n  default_url: %q\n  default_secret: %s\n", rcvD.url, hookSecretB)}
	creds := func(ivrURL, ivrSecret string) []string {
		return []string{webhookLine(ivr, ivrURL, ivrSecret), webhookLine(other, rcvB.url, hookSecretB),
			credLine(quiet)}
	}
	cfg.creds = creds(rcvA.url, hookSecretA)
	cfg.sipPort = cfg.write(t, path)
	p := startHandoff(t, "", nil, "-config", path)
	p.create(ivr, sipTransfer("mine", nil))
	p.create(other, sipTransfer("theirs", nil))
	p.create(quiet, sipTransfer("silent", nil))
	phone := siptest.NewPhone(t, "127.0.0.1")
	call := phone.MustAnswer(fmt.Sprintf("sip:agent@127.0.0.1:%d", cfg.sipPort), phone.Offer("0"), sip.NewHeader("X-Handoff-Transfer-Id", "by-headers"))
	exchangeAudio(call, 5)
	rcvD.waitFor("the headers-mode call's ongoing", func(hs []hook) bool { return strings.Contains(typesOf(hs, "by-headers"), "ongoing") })
	call.Hangup()

	gotD := rcvD.waitFor("the headers-mode call's events", func(hs []hook) bool { return len(delivered(hs)) == 3 })
	gotA := rcvA.waitFor("mine", func(hs []hook) bool { return len(hs) == 1 })
	gotB := rcvB.waitFor("theirs", func(hs []hook) bool { return len(hs) == 1 })
	for name, c := range map[string]struct {
		got  []hook
		want string
	}{"A": {gotA, "mine"}, "B": {gotB, "theirs"}, "default": {gotD, "by-headers"}} {
		checkVerified(t, c.got)
		for _, h := range c.got {
			if h.transfer != c.want {
				t.Errorf("endpoint %s got %s's %s", name, h.transfer, h.typ)
			}
		}
	}
	if s := typesOf(gotD, "by-headers"); s != "transfer.created transfer.ongoing transfer.completed" {
		t.Errorf("headers-mode events %q", s)
	}

	// The reload points ivr at B, signed with B's secret.
	cfg.creds = creds(rcvB.url, hookSecretB)
	cfg.write(t, path)
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded")
	p.create(ivr, sipTransfer("mine-after", nil))
	checkVerified(t, rcvB.waitFor("mine-after at B", func(hs []hook) bool { return strings.Contains(typesOf(hs, "mine-after"), "created") }))
	if s := typesOf(rcvA.hooks(), "mine-after"); s != "" {
		t.Errorf("the old endpoint got %q after the reload", s)
	}
	if logs := p.logs.String(); strings.Contains(logs, hookSecretA) || strings.Contains(logs, hookSecretB) {
		t.Error("a webhook secret is in the logs")
	}
}

// requestsOf lists the answered requests of one webhook-id.
func (r *hookReceiver) requestsOf(id string) []hook {
	var out []hook
	for _, h := range r.hooks() {
		if h.id == id {
			out = append(out, h)
		}
	}
	return out
}

func indexOf(hs []hook, transfer, typ string) int {
	for i, h := range hs {
		if h.transfer == transfer && h.typ == typ {
			return i
		}
	}
	return -1
}
