package control_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/handoff/handoff/control"
)

func TestAdminReload(t *testing.T) {
	admin := control.Credential{ID: "ops", Secret: "secret-ops-0123456789", Admin: true}
	var calls atomic.Int32
	var fail atomic.Bool
	e := newEnv(t, func(ec *envConfig) {
		ec.cfg.Credentials = append(ec.cfg.Credentials, admin)
		ec.cfg.Reload = func(context.Context) error {
			calls.Add(1)
			if fail.Load() {
				return errors.New("numbers.pools.US: \"+1\" is not an E.164 number")
			}
			return nil
		}
	})
	r := e.do(http.MethodPost, "/admin/v1/reload", nil, auth(admin))
	expect(t, r, 200, "")
	if r.str("status") != "reloaded" || calls.Load() != 1 {
		t.Fatalf("reload: %s, %d calls", r.raw, calls.Load())
	}
	expect(t, e.do(http.MethodPost, "/admin/v1/reload", nil, auth(credA)), 403, "403-01")
	expect(t, e.do(http.MethodPost, "/admin/v1/reload", nil, nil), 401, "401-01")
	expect(t, e.do(http.MethodGet, "/admin/v1/reload", nil, auth(admin)), 405, "405-01")
	fail.Store(true)
	r = e.do(http.MethodPost, "/admin/v1/reload", nil, auth(admin))
	expect(t, r, 422, "422-03")
	if !strings.Contains(r.str("error.message"), "nothing changed") {
		t.Fatalf("message %q", r.str("error.message"))
	}
	if calls.Load() != 2 {
		t.Fatalf("%d reload calls, want 2 (only admins reach it)", calls.Load())
	}
}

func TestReloadUnavailableWithoutAHook(t *testing.T) {
	admin := control.Credential{ID: "ops", Secret: "secret-ops-0123456789", Admin: true}
	e := newEnv(t, func(ec *envConfig) { ec.cfg.Credentials = append(ec.cfg.Credentials, admin) })
	expect(t, e.do(http.MethodPost, "/admin/v1/reload", nil, auth(admin)), 404, "404-01")
}
