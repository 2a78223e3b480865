// Package webhook delivers Handoff's lifecycle events to HTTP endpoints as
// Standard Webhooks (https://www.standardwebhooks.com): signed with
// HMAC-SHA256, retried with exponential backoff and jitter, at least once and
// in order per transfer.
//
// The pieces:
//   - Event and NewEvent: one lifecycle event, its envelope built once so
//     every retry sends the same bytes under the same webhook-id.
//   - Secret and Endpoint: where an event goes and how it is signed,
//     validated when the configuration loads.
//   - Outbox: the durable queue the transfer stores implement, written in the
//     same transaction as the state change; per-transfer leases keep order and
//     let another node take over the events of a dead one.
//   - Dispatcher: bounded workers that claim due events, post them and record
//     the outcome.
//
// The package knows nothing of transfers, HTTP APIs or SIP: the caller hands
// it the payload bytes and a function that names the endpoint.
package webhook
