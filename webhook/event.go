package webhook

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EventType names a lifecycle event. The names are part of the public
// contract (docs/webhooks.md): never rename one.
type EventType string

// The lifecycle events of a transfer.
const (
	// TransferCreated: the transfer was registered (POST, or an INVITE in
	// headers mode).
	TransferCreated EventType = "transfer.created"
	// TransferOngoing: the call was received and answered (status ONGOING).
	TransferOngoing EventType = "transfer.ongoing"
	// TransferCompleted: the call ended and the return has finished
	// (outputContext, endReason, returnResult set).
	TransferCompleted EventType = "transfer.completed"
	// TransferExpired: no call claimed the transfer before expiresAt.
	TransferExpired EventType = "transfer.expired"
	// TransferReturnFailed: the return failed and the fallback ran; a
	// transfer.completed follows.
	TransferReturnFailed EventType = "transfer.return_failed"
)

// EventTypes lists every event type, in lifecycle order.
var EventTypes = []EventType{TransferCreated, TransferOngoing, TransferReturnFailed, TransferCompleted, TransferExpired}

// Known reports whether t is one of EventTypes.
func (t EventType) Known() bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return false
}

// Event is one lifecycle event as the outbox stores it. Body is the signed
// request body, built once by NewEvent: retries send it byte for byte.
type Event struct {
	// ID is the webhook-id header: the receiver's idempotency key.
	ID string `json:"id"`
	// Type is the event type, also inside Body.
	Type EventType `json:"type"`
	// TransferID is the ordering key: a transfer's events are delivered one
	// after the other, in the order they were enqueued.
	TransferID string `json:"transferId"`
	// Credential is the API credential that created the transfer, or empty
	// for a transfer created in headers mode; it selects the endpoint.
	Credential string `json:"credential,omitempty"`
	// CreatedAt is when the event happened; max age counts from it.
	CreatedAt time.Time `json:"createdAt"`
	// Body is the JSON envelope {"type","timestamp","data"}.
	Body []byte `json:"body"`
}

// envelope is the request body, the Standard Webhooks payload structure.
type envelope struct {
	Type      EventType       `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// NewEvent builds an event with a fresh id. data is the transfer as the
// API's GET shows it at that moment (a JSON object).
func NewEvent(typ EventType, transferID, credential string, at time.Time, data []byte) (Event, error) {
	if !typ.Known() {
		return Event{}, fmt.Errorf("webhook: unknown event type %q", typ)
	}
	if transferID == "" {
		return Event{}, errors.New("webhook: event without a transfer id")
	}
	if !json.Valid(data) {
		return Event{}, errors.New("webhook: event data is not valid JSON")
	}
	at = at.UTC()
	body, err := json.Marshal(envelope{Type: typ, Timestamp: at.Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return Event{}, fmt.Errorf("webhook: encoding the envelope: %w", err)
	}
	return Event{ID: NewEventID(), Type: typ, TransferID: transferID, Credential: credential, CreatedAt: at, Body: body}, nil
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewEventID returns a random event id, "evt_" and 26 characters of
// lower-case base32 (128 random bits). It never holds a '.', which the
// signature scheme uses as a separator.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "evt_" + idEncoding.EncodeToString(b[:])
}
