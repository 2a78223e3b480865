package control_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/handoff/handoff/control"
)

// SetCredentials swaps the credential set: a removed id gets 401, a new one
// works, a kept id keeps its transfers even with a new secret; a bad set
// changes nothing.
func TestSetCredentials(t *testing.T) {
	e := newEnv(t)
	id := newID("cred")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")

	credA2 := control.Credential{ID: credA.ID, Secret: "rotated-secret-a-987654"}
	credC := control.Credential{ID: "ivr-c", Secret: "secret-c-0123456789"}
	if err := e.api.SetCredentials([]control.Credential{credA2, credC}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.fetch(credA, id), 401, "401-01") // old secret
	expect(t, e.fetch(credB, id), 401, "401-01") // removed id
	expect(t, e.fetch(credA2, id), 200, "")      // same id, new secret: same owner
	expect(t, e.fetch(credC, id), 404, "404-01") // new id: not its transfer
	expect(t, e.create(credC, sipBody(newID("cred"), nil)), 200, "")

	for _, bad := range [][]control.Credential{
		{credA2, {ID: credA2.ID, Secret: "x"}}, // duplicate id
		{{ID: "", Secret: "x"}},
		{{ID: "x", Secret: ""}},
	} {
		if err := e.api.SetCredentials(bad); err == nil {
			t.Errorf("SetCredentials(%v) accepted", bad)
		}
	}
	expect(t, e.fetch(credA2, id), 200, "") // unchanged after the refusals
	expect(t, e.fetch(credC, id), 404, "404-01")
}

// Requests racing a credential swap see the old set or the new one (run
// with -race).
func TestSetCredentialsConcurrent(t *testing.T) {
	e := newEnv(t)
	id := newID("race")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if r := e.fetch(credA, id); r.status != 200 {
					t.Errorf("GET during swaps: %d", r.status)
					return
				}
			}
		})
	}
	for i := range 50 {
		set := []control.Credential{credA, credB}
		if i%2 == 1 {
			set = []control.Credential{credA, credRO}
		}
		if err := e.api.SetCredentials(set); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// handoff_draining follows SetDraining; handoff_store_up follows the store.
func TestDrainingAndStoreUpGauges(t *testing.T) {
	e := newEnv(t)
	scrape := func() string {
		r := e.do(http.MethodGet, "/metrics", nil, nil)
		if r.status != 200 {
			t.Fatalf("/metrics: %d", r.status)
		}
		return string(r.raw)
	}
	has := func(body, line string) {
		t.Helper()
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	body := scrape()
	has(body, "handoff_draining 0")
	has(body, "handoff_store_up 1")

	e.api.SetDraining(true)
	e.store.mode.Store("error")
	body = scrape()
	has(body, "handoff_draining 1")
	has(body, "handoff_store_up 0")
	e.store.mode.Store("")
	e.api.SetDraining(false)
	has(scrape(), "handoff_draining 0")
}
