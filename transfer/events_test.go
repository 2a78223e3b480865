package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// webhookStore opens a store of kind name with webhooks w; reopen opens it
// again (same file or Redis prefix).
type webhookStore struct {
	name string
	open func(t *testing.T) func(w *Webhooks) Store
}

var webhookStores = []webhookStore{
	{"bolt", func(t *testing.T) func(*Webhooks) Store {
		path := filepath.Join(t.TempDir(), "handoff.db")
		return func(w *Webhooks) Store {
			st, err := OpenBolt(path, BoltOptions{Quarantine: time.Minute, Webhooks: w})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}},
	{"redis", func(t *testing.T) func(*Webhooks) Store {
		url := testRedis(t).URL()
		prefix := "events:" + t.Name() + ":"
		return func(w *Webhooks) Store {
			st, err := OpenRedis(context.Background(), url, RedisOptions{Prefix: prefix, Quarantine: time.Minute, Webhooks: w})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}},
}

// forEachWebhookStore runs test on each store kind; open opens the test's
// store (again: the same file or Redis prefix) writing events with w.
func forEachWebhookStore(t *testing.T, w *Webhooks, test func(t *testing.T, open func() Store)) {
	for _, k := range webhookStores {
		t.Run(k.name, func(t *testing.T) {
			reopen := k.open(t)
			test(t, func() Store { return reopen(w) })
		})
	}
}

// testPayload stands for the API's view (control.EventPayload, tested
// there): the fields these tests read.
func testPayload(t *Transfer, now time.Time) ([]byte, error) {
	v := map[string]any{"id": t.ID, "status": t.StatusAt(now), "endReason": t.EndReason}
	if t.PhoneNumber != nil {
		v["transferNumber"] = t.PhoneNumber.TransferNumber
	}
	if t.Return != nil {
		v["return"] = t.Return.Result + " " + t.Return.Reason
	}
	return json.Marshal(v)
}

// eventService is a service on a store that writes events, and its clock.
func eventService(t *testing.T, st Store) (*Service, *clock) {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	clk := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	svc := NewService(st, ServiceConfig{TTL: time.Minute, Clock: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err := svc.SetNumbers(context.Background(), map[string][]string{"US": {"+19995550100"}}); err != nil {
		t.Fatal(err)
	}
	return svc, clk
}

// sent is an event as a receiver sees it.
type sent struct {
	typ, credential string
	data            map[string]any
}

// drainOutbox delivers every event of ob, in order, by transfer.
func drainOutbox(t *testing.T, ob webhook.Outbox) map[string][]sent {
	t.Helper()
	ctx := context.Background()
	out := map[string][]sent{}
	for range 100 {
		ds, err := ob.Claim(ctx, "test", time.Now().Add(time.Hour), time.Minute, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return out
		}
		for _, d := range ds {
			var env struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(d.Body, &env); err != nil || env.Type != string(d.Type) {
				t.Fatalf("event %s: body %s: %v", d.ID, d.Body, err)
			}
			out[d.TransferID] = append(out[d.TransferID], sent{env.Type, d.Credential, env.Data})
			if err := ob.Done(ctx, d.Lease, webhook.ResultDelivered); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("the outbox never drained")
	return nil
}

func types(evs []sent) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.typ)
	}
	return strings.Join(s, " ")
}

func answer(t *testing.T, svc *Service, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.Claim(ctx, id, "call-"+id, "node-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Answer(ctx, id, "call-"+id); err != nil {
		t.Fatal(err)
	}
}

func sipReq(id string) CreateRequest {
	return CreateRequest{ID: id, ExternalConversationID: "c-" + id, Type: TypeSIP, SIP: &SIPReturn{ReturnTransferType: ReturnRefer, ReturnURI: "sip:ivr@127.0.0.1"}}
}

// Every change writes its events in its own transaction, with the
// transfer as it then is; the life-cycle's events come out in order.
func TestEventsWrittenWithTheirChange(t *testing.T) {
	forEachWebhookStore(t, &Webhooks{Payload: testPayload}, func(t *testing.T, open func() Store) {
		st := open()
		svc, clk := eventService(t, st)
		ctx := context.Background()
		pn, _, err := svc.Create(ctx, "ivr", phoneReq("pn"))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"hangup", "refer", "exp"} {
			if _, _, err := svc.Create(ctx, "ivr", sipReq(id)); err != nil {
				t.Fatal(err)
			}
		}
		headers := sipReq("hdr")
		headers.HeadersMode = true
		if _, _, err := svc.Create(ctx, "ivr", headers); err != nil {
			t.Fatal(err)
		}
		answer(t, svc, "hangup")
		if _, err := svc.Complete(ctx, "hangup", EndCallerHangup, nil, nil); err != nil {
			t.Fatal(err)
		}
		answer(t, svc, "refer")
		if _, err := svc.Complete(ctx, "refer", EndAgentFinished, &OutputContext{TransferType: "SYSTEM"}, nil); err != nil {
			t.Fatal(err)
		}
		got := drainOutbox(t, st.(webhook.Outbox))
		if types(got["refer"]) != "transfer.created transfer.ongoing" {
			t.Fatalf("refer before its return is recorded: %s, want created, ongoing (completed waits for the return)", types(got["refer"]))
		}
		ret := &ReturnResult{Method: ReturnRefer, Result: ReturnFailed, Reason: "refer rejected", Fallback: ReturnBye}
		if _, err := svc.Amend(ctx, "refer", func(t *Transfer) { t.Return = ret }); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Amend(ctx, "refer", func(t *Transfer) { t.Return.BridgeEndedAt = clk.Now() }); err != nil {
			t.Fatal(err)
		}
		// A change that fails writes nothing.
		if _, err := svc.Answer(ctx, "exp", "no-such-call"); err == nil {
			t.Fatal("answer without a claim succeeded")
		}
		clk.Add(2 * time.Minute)
		if n, err := svc.SweepExpired(ctx); err != nil || n != 3 {
			t.Fatalf("sweep: %d %v, want 3 (pn, exp, hdr)", n, err)
		}

		for id, evs := range drainOutbox(t, st.(webhook.Outbox)) {
			got[id] = append(got[id], evs...)
		}
		want := map[string]string{
			"pn":     "transfer.created transfer.expired",
			"hangup": "transfer.created transfer.ongoing transfer.completed",
			"refer":  "transfer.created transfer.ongoing transfer.return_failed transfer.completed",
			"exp":    "transfer.created transfer.expired",
			"hdr":    "transfer.created transfer.expired",
		}
		for id, w := range want {
			if types(got[id]) != w {
				t.Errorf("%s: events %q, want %q", id, types(got[id]), w)
			}
		}
		if c := got["pn"][0]; c.data["transferNumber"] != pn.PhoneNumber.TransferNumber || c.credential != "ivr" {
			t.Errorf("pn created: %v (credential %q), want number %s, credential ivr", c.data, c.credential, pn.PhoneNumber.TransferNumber)
		}
		if c := got["hdr"][0]; c.credential != "" {
			t.Errorf("headers-mode transfer's credential %q, want none (the default endpoint)", c.credential)
		}
		for _, e := range got["refer"][2:] {
			if e.data["status"] != "COMPLETED" || e.data["return"] != "failed refer rejected" {
				t.Errorf("refer %s: data %v, want COMPLETED with the failed return", e.typ, e.data)
			}
		}
		if e := got["hangup"][2]; e.data["endReason"] != "caller_hangup" {
			t.Errorf("hangup completed: %v", e.data)
		}
	})
}

// A transfer whose creator has no endpoint writes no events; one whose
// payload cannot be rendered does not change.
func TestEventsWantedAndPayloadFailure(t *testing.T) {
	broken := errors.New("render failed")
	w := &Webhooks{
		Payload: func(tr *Transfer, now time.Time) ([]byte, error) {
			if tr.ID == "broken" {
				return nil, broken
			}
			return testPayload(tr, now)
		},
		Wants: func(credential string) bool { return credential == "ivr" },
	}
	forEachWebhookStore(t, w, func(t *testing.T, open func() Store) {
		st := open()
		svc, _ := eventService(t, st)
		ctx := context.Background()
		for _, owner := range []string{"ivr", "quiet"} {
			if _, _, err := svc.Create(ctx, owner, sipReq(owner+"-t")); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := svc.Create(ctx, "ivr", sipReq("broken")); !errors.Is(err, broken) {
			t.Fatalf("create with a failing payload: %v, want %v", err, broken)
		}
		if _, err := svc.Lookup(ctx, "broken"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the transfer whose event failed was stored: %v", err)
		}
		got := drainOutbox(t, st.(webhook.Outbox))
		if len(got) != 1 || types(got["ivr-t"]) != "transfer.created" {
			t.Fatalf("events %v, want only ivr-t's created", got)
		}
	})
}

// A node that dies while handing a call back leaves the transfer
// COMPLETED without a returnResult; its restart (or another node) records
// the return as interrupted, and transfer.completed still goes out.
func TestReturnInterruptedByRestart(t *testing.T) {
	forEachWebhookStore(t, &Webhooks{Payload: testPayload}, func(t *testing.T, open func() Store) {
		st := open()
		svc, _ := eventService(t, st)
		ctx := context.Background()
		for _, id := range []string{"talking", "returning"} {
			if _, _, err := svc.Create(ctx, "ivr", sipReq(id)); err != nil {
				t.Fatal(err)
			}
			answer(t, svc, id)
		}
		if _, err := svc.Complete(ctx, "returning", EndAgentFinished, &OutputContext{TransferType: "SYSTEM"}, nil); err != nil {
			t.Fatal(err)
		}
		drainOutbox(t, st.(webhook.Outbox))
		ids, err := st.(ongoingLister).OngoingOn(ctx, "node-a", 10)
		slices.Sort(ids)
		if err != nil || fmt.Sprint(ids) != "[returning talking]" {
			t.Fatalf("OngoingOn: %v %v, want both (one ONGOING, one returning)", ids, err)
		}
		st.Close()

		st = open()
		svc, _ = eventService(t, st)
		if n, err := svc.EndOrphans(ctx, "node-a"); err != nil || n != 2 {
			t.Fatalf("EndOrphans: %d %v, want 2", n, err)
		}
		tr, _ := svc.Lookup(ctx, "returning")
		if tr.Return == nil || tr.Return.Result != ReturnFailed || tr.Return.Reason != "interrupted: node_restarted" || tr.EndReason != EndAgentFinished {
			t.Fatalf("returning after the restart: %+v %+v", tr, tr.Return)
		}
		got := drainOutbox(t, st.(webhook.Outbox))
		if types(got["returning"]) != "transfer.return_failed transfer.completed" || types(got["talking"]) != "transfer.completed" {
			t.Fatalf("events after the restart: returning %q, talking %q", types(got["returning"]), types(got["talking"]))
		}
		if ids, _ := st.(ongoingLister).OngoingOn(ctx, "node-a", 10); len(ids) != 0 {
			t.Fatalf("still owed after EndOrphans: %v", ids)
		}
	})
}

// Undelivered events survive closing the store, and a claim made before
// the close does not hold them after it.
func TestOutboxSurvivesReopen(t *testing.T) {
	forEachWebhookStore(t, &Webhooks{Payload: testPayload}, func(t *testing.T, open func() Store) {
		st := open()
		svc, _ := eventService(t, st)
		ctx := context.Background()
		if _, _, err := svc.Create(ctx, "ivr", sipReq("kept")); err != nil {
			t.Fatal(err)
		}
		ds, err := st.(webhook.Outbox).Claim(ctx, "dead", time.Now(), time.Second, 10)
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %v %v", ds, err)
		}
		st.Close()
		st = open()
		defer st.Close()
		// The dead claim's lease runs out (Redis) or died with the
		// process (bolt): the event is offered again, the same one.
		again, err := st.(webhook.Outbox).Claim(ctx, "alive", time.Now().Add(time.Second), time.Minute, 10)
		if err != nil || len(again) != 1 || again[0].ID != ds[0].ID || string(again[0].Body) != string(ds[0].Body) {
			t.Fatalf("after reopening: %v %v, want %s again", again, err, ds[0].ID)
		}
	})
}
