package control_test

import (
	"net/http"
	"testing"
)

// A shared store (Redis) that cannot be reached is a 503-01 with
// Retry-After on POST and GET, not a 500: the request may succeed later.
func TestStoreUnavailableIs503(t *testing.T) {
	e := newEnv(t)
	id := newID("ok")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")

	e.store.mode.Store("unavailable")
	for _, r := range []*response{
		e.create(credA, sipBody(newID("down"), nil)),
		e.fetch(credA, id),
		e.do(http.MethodGet, "/readyz", nil, nil),
	} {
		expect(t, r, 503, "503-01")
		if r.header.Get("Retry-After") != "3" {
			t.Fatalf("Retry-After %q, want the configured 3", r.header.Get("Retry-After"))
		}
	}

	e.store.mode.Store("")
	expect(t, e.fetch(credA, id), 200, "")
	expect(t, e.do(http.MethodGet, "/readyz", nil, nil), 200, "")
}
