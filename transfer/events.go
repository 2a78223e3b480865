package transfer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/handoff/handoff/webhook"
)

// Webhooks is what a store needs to write a transfer's webhook events in
// the transaction of the change that causes them (both stores are
// webhook.Outboxes: the transactional outbox). A nil *Webhooks, or one
// without Payload, writes no events.
type Webhooks struct {
	// Payload renders a transfer as the API's GET shows it at now: the
	// data of its events. The control package provides it
	// (control.EventPayload); this package knows nothing of the API's
	// shapes. It must not fail for a valid transfer: its error fails the
	// change.
	Payload func(t *Transfer, now time.Time) ([]byte, error)
	// Wants reports whether the events of a transfer created by credential
	// ("" for headers mode) have an endpoint now; an event nobody would
	// receive is not written. Nil wants every event.
	Wants func(credential string) bool
	// Notify, when set, is called after a commit that wrote events
	// (webhook.Dispatcher.Notify), so they go out at once.
	Notify func()
}

// EventCredential is the API credential whose endpoint receives t's
// events: the owner that created it, or "" for a transfer created in
// headers mode (the default endpoint's).
func (t *Transfer) EventCredential() string {
	if t.HeadersMode {
		return ""
	}
	return t.Owner
}

// eventTypes lists, in order, the events the change from old (nil for a
// create) to t causes:
//
//   - a create: transfer.created
//   - ACTIVE to ONGOING: transfer.ongoing
//   - ACTIVE to EXPIRED: transfer.expired
//   - the transfer becomes finished (COMPLETED, and not Returning: a call
//     the agent finished is finished once its return is recorded, by the
//     write that records it): transfer.return_failed first if the return
//     failed, then transfer.completed.
func eventTypes(old, t *Transfer) []webhook.EventType {
	if old == nil {
		return []webhook.EventType{webhook.TransferCreated}
	}
	var out []webhook.EventType
	if old.Status != StatusOngoing && t.Status == StatusOngoing {
		out = append(out, webhook.TransferOngoing)
	}
	if old.Status != StatusExpired && t.Status == StatusExpired {
		out = append(out, webhook.TransferExpired)
	}
	if !finished(old) && finished(t) {
		if t.Return != nil && t.Return.Result == ReturnFailed {
			out = append(out, webhook.TransferReturnFailed)
		}
		out = append(out, webhook.TransferCompleted)
	}
	return out
}

// finished: COMPLETED with nothing left to record.
func finished(t *Transfer) bool { return t.Status == StatusCompleted && !t.Returning() }

// outboxEvent is an event a change writes to the outbox.
type outboxEvent struct {
	webhook.Event
	// NumberAt, when not -1, is where the number that the same transaction
	// leases goes into Body: a PHONE_NUMBER create's transfer.created
	// shows a number the store picks only inside the transaction.
	NumberAt int
}

// withNumber is the event's body with number in its place.
func (e outboxEvent) withNumber(number string) webhook.Event {
	ev := e.Event
	if e.NumberAt >= 0 {
		ev.Body = slices.Concat(ev.Body[:e.NumberAt], []byte(number), ev.Body[e.NumberAt:])
	}
	return ev
}

// events renders the events of the change from old (nil for a create) to
// t at now. A create that leases a number renders a random placeholder in
// its place and cuts it out (NumberAt), so no value in the transfer can be
// mistaken for it.
func (w *Webhooks) events(old, t *Transfer, now time.Time) ([]outboxEvent, error) {
	if w == nil || w.Payload == nil {
		return nil, nil
	}
	types := eventTypes(old, t)
	cred := t.EventCredential()
	if len(types) == 0 || (w.Wants != nil && !w.Wants(cred)) {
		return nil, nil
	}
	view, placeholder := t, ""
	if t.PhoneNumber != nil && t.PhoneNumber.TransferNumber == "" {
		placeholder = numberPlaceholder()
		view = t.Clone()
		view.PhoneNumber.TransferNumber = placeholder
	}
	data, err := w.Payload(view, now)
	if err != nil {
		return nil, fmt.Errorf("webhook payload of %s: %w", t.ID, err)
	}
	out := make([]outboxEvent, 0, len(types))
	for _, typ := range types {
		ev, err := webhook.NewEvent(typ, t.ID, cred, now, data)
		if err != nil {
			return nil, err
		}
		oe := outboxEvent{Event: ev, NumberAt: -1}
		if placeholder != "" {
			if oe.NumberAt, err = cutPlaceholder(&oe.Body, placeholder); err != nil {
				return nil, fmt.Errorf("webhook payload of %s: %w", t.ID, err)
			}
		}
		out = append(out, oe)
	}
	return out, nil
}

// numberPlaceholder is 128 random bits in hex: no transfer holds it.
func numberPlaceholder() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "number-" + hex.EncodeToString(b)
}

// cutPlaceholder removes placeholder from *body and returns where it was,
// -1 if the payload does not show the number.
func cutPlaceholder(body *[]byte, placeholder string) (int, error) {
	b := *body
	switch bytes.Count(b, []byte(placeholder)) {
	case 0:
		return -1, nil
	case 1:
	default:
		return 0, fmt.Errorf("the number placeholder appears more than once")
	}
	i := bytes.Index(b, []byte(placeholder))
	*body = slices.Concat(b[:i], b[i+len(placeholder):])
	return i, nil
}

// notify tells the dispatcher that n events were committed.
func (w *Webhooks) notify(n int) {
	if n > 0 && w != nil && w.Notify != nil {
		w.Notify()
	}
}
