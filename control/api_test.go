package control_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/transfer"
)

func TestCreateAndGetPhoneNumber(t *testing.T) {
	e := newEnv(t)
	id := newID("pn")
	before := time.Now().UTC().Truncate(time.Second)
	r := e.create(credA, phoneBody(id, "US"))
	expect(t, r, 200, "")
	if r.str("id") != id || r.str("externalConversationId") != "conv-"+id || r.str("type") != "PHONE_NUMBER" || r.str("status") != "ACTIVE" {
		t.Fatalf("unexpected body %s", r.raw)
	}
	num := r.str("phoneNumber.transferNumber")
	if !regexp.MustCompile(`^\+1999555010[0-9]$`).MatchString(num) || r.str("phoneNumber.country") != "US" {
		t.Fatalf("bad phoneNumber %s", r.raw)
	}
	exp, err := time.Parse(time.RFC3339, r.str("phoneNumber.expiresAt"))
	if err != nil || !strings.HasSuffix(r.str("phoneNumber.expiresAt"), "Z") {
		t.Fatalf("expiresAt %q: %v", r.str("phoneNumber.expiresAt"), err)
	}
	if exp.Before(before.Add(ttl)) || exp.After(time.Now().Add(ttl)) {
		t.Fatalf("expiresAt %v not about now+%v", exp, ttl)
	}
	if r.get("sip") != nil || r.get("createdAt") != nil || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("POST response has extra fields: %s", r.raw)
	}
	if r.str("inputContext.taskName") != "Welcome" || r.str("inputContext.inputVariables.name") != "Ada" {
		t.Fatalf("inputContext not echoed: %s", r.raw)
	}

	g := e.fetch(credA, id)
	expect(t, g, 200, "")
	if g.str("phoneNumber.transferNumber") != num || g.str("status") != "ACTIVE" || g.str("createdAt") == "" {
		t.Fatalf("GET body %s", g.raw)
	}
	for _, f := range []string{"callReceivedAt", "completedAt", "outputContext", "endReason"} {
		if g.get(f) != nil {
			t.Errorf("GET of a fresh transfer has %s: %s", f, g.raw)
		}
	}
}

func TestCreateSIPDefaultsToBye(t *testing.T) {
	e := newEnv(t)
	for _, body := range []map[string]any{
		sipBody(newID("sip"), nil),
		sipBody(newID("sip"), map[string]any{}),
		sipBody(newID("sip"), map[string]any{"returnTransferType": nil}),
	} {
		id := body["id"].(string)
		r := e.create(credA, body)
		expect(t, r, 200, "")
		if r.str("sip.returnTransferType") != "BYE" || r.str("sip.transferUri") != "sip:"+id+"@handoff.test:5060" || r.str("sip.expiresAt") == "" {
			t.Fatalf("body %s", r.raw)
		}
		if r.get("phoneNumber") != nil || r.get("sip.returnUri") != nil {
			t.Fatalf("unexpected fields: %s", r.raw)
		}
	}
}

func TestSIPPasswordNeverReturnedNorLogged(t *testing.T) {
	e := newEnv(t)
	const password = "pa55-W0rd-never-shown"
	id := newID("inv")
	body := sipBody(id, map[string]any{
		"returnTransferType": "INVITE",
		"returnUri":          "sips:queue@pbx.example.com:5061;transport=tls",
		"returnInviteAuthentication": map[string]any{
			"username": "sip_user", "password": password,
		},
	})
	for i, want := range []string{"", "true"} {
		r := e.create(credA, body)
		expect(t, r, 200, "")
		if got := r.header.Get("Idempotent-Replayed"); got != want {
			t.Fatalf("attempt %d: Idempotent-Replayed %q, want %q", i, got, want)
		}
		if r.str("sip.returnTransferType") != "INVITE" || r.str("sip.returnUri") != "sips:queue@pbx.example.com:5061;transport=tls" ||
			r.str("sip.returnInviteAuthentication.username") != "sip_user" {
			t.Fatalf("body %s", r.raw)
		}
		if strings.Contains(string(r.raw), password) || strings.Contains(string(r.raw), "password") {
			t.Fatalf("response leaks the password: %s", r.raw)
		}
	}
	g := e.fetch(credA, id)
	expect(t, g, 200, "")
	if strings.Contains(string(g.raw), password) || strings.Contains(string(g.raw), "password") {
		t.Fatalf("GET leaks the password: %s", g.raw)
	}
	// A password problem must not echo the password either.
	bad := sipBody(newID("inv"), map[string]any{"returnTransferType": "INVITE", "returnUri": "sip:a@b",
		"returnInviteAuthentication": map[string]any{"username": "u", "password": password + "\n"}})
	r := e.create(credA, bad)
	expect(t, r, 400, "400-04")
	if strings.Contains(string(r.raw), password) {
		t.Fatalf("error leaks the password: %s", r.raw)
	}
	// The stored record keeps it (the INVITE return needs it).
	st, err := e.svc.Get(context.Background(), credA.ID, id)
	if err != nil || st.SIP.Auth == nil || st.SIP.Auth.Password != password {
		t.Fatalf("stored auth %+v, %v", st.SIP, err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, id) {
		t.Fatalf("expected request logs, got %q", logs)
	}
	for _, secret := range []string{password, credA.Secret} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain a secret %q:\n%s", secret, logs)
		}
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	longID := strings.Repeat("a", 129)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"empty body", "", 400, "400-01", "request body is empty"},
		{"not JSON", "{id:", 400, "400-01", "not valid JSON"},
		{"trailing data", `{"id":"x"} {}`, 400, "400-01", "not valid JSON"},
		{"array", `[1,2]`, 400, "400-01", "must be a JSON object, got an array"},
		{"null", `null`, 400, "400-01", "must be a JSON object, got null"},
		{"string", `"hi"`, 400, "400-01", "must be a JSON object, got a string"},
		{"missing id", map[string]any{"externalConversationId": "c", "type": "SIP"}, 400, "400-02", "id is required"},
		{"null id", map[string]any{"id": nil, "externalConversationId": "c", "type": "SIP"}, 400, "400-02", "id is required"},
		{"numeric id", map[string]any{"id": 42, "externalConversationId": "c", "type": "SIP"}, 400, "400-03", "id must be a string, got a number"},
		{"id charset", map[string]any{"id": "a b", "externalConversationId": "c", "type": "SIP"}, 400, "400-04", "id must be 1-128 characters"},
		{"id with @", map[string]any{"id": "a@b", "externalConversationId": "c", "type": "SIP"}, 400, "400-04", "id must be"},
		{"empty id", map[string]any{"id": "", "externalConversationId": "c", "type": "SIP"}, 400, "400-04", "id must be"},
		{"id too long", map[string]any{"id": longID, "externalConversationId": "c", "type": "SIP"}, 400, "400-04", "id must be 1-128"},
		{"missing conversation", map[string]any{"id": "x1", "type": "SIP"}, 400, "400-02", "externalConversationId is required"},
		{"empty conversation", map[string]any{"id": "x1", "externalConversationId": "", "type": "SIP"}, 400, "400-04", "externalConversationId must not be empty"},
		{"conversation control char", map[string]any{"id": "x1", "externalConversationId": "a\nb", "type": "SIP"}, 400, "400-04", "externalConversationId must not contain control characters"},
		{"conversation too long", map[string]any{"id": "x1", "externalConversationId": strings.Repeat("c", 257), "type": "SIP"}, 400, "400-04", "at most 256"},
		{"missing type", map[string]any{"id": "x1", "externalConversationId": "c"}, 400, "400-02", "type is required"},
		{"bad type", map[string]any{"id": "x1", "externalConversationId": "c", "type": "FAX"}, 400, "400-04", "type must be one of PHONE_NUMBER, SIP"},
		{"type as bool", map[string]any{"id": "x1", "externalConversationId": "c", "type": true}, 400, "400-03", "type must be a string, got a boolean"},
		{"phone without phoneNumber", map[string]any{"id": "x1", "externalConversationId": "c", "type": "PHONE_NUMBER"}, 400, "400-02", "phoneNumber is required when type is PHONE_NUMBER"},
		{"phone without country", map[string]any{"id": "x1", "externalConversationId": "c", "type": "PHONE_NUMBER", "phoneNumber": map[string]any{}}, 400, "400-02", "phoneNumber.country is required when type is PHONE_NUMBER"},
		{"phoneNumber as string", map[string]any{"id": "x1", "externalConversationId": "c", "type": "PHONE_NUMBER", "phoneNumber": "US"}, 400, "400-03", "phoneNumber must be an object, got a string"},
		{"country as number", map[string]any{"id": "x1", "externalConversationId": "c", "type": "PHONE_NUMBER", "phoneNumber": map[string]any{"country": 1}}, 400, "400-03", "phoneNumber.country must be a string"},
		{"country shape", map[string]any{"id": "x1", "externalConversationId": "c", "type": "PHONE_NUMBER", "phoneNumber": map[string]any{"country": "USA"}}, 400, "400-04", "ISO 3166 alpha-2"},
		{"country digits", map[string]any{"id": "x1", "externalConversationId": "c", "type": "PHONE_NUMBER", "phoneNumber": map[string]any{"country": "1A"}}, 400, "400-04", "ISO 3166 alpha-2"},
		{"sip as array", map[string]any{"id": "x1", "externalConversationId": "c", "type": "SIP", "sip": []any{}}, 400, "400-03", "sip must be an object, got an array"},
		{"bad return type", sipBody("x1", map[string]any{"returnTransferType": "HANGUP"}), 400, "400-04", "sip.returnTransferType must be one of BYE, REFER, INVITE"},
		{"refer without uri", sipBody("x1", map[string]any{"returnTransferType": "REFER"}), 400, "400-02", "sip.returnUri is required when sip.returnTransferType is REFER"},
		{"invite without uri", sipBody("x1", map[string]any{"returnTransferType": "INVITE"}), 400, "400-02", "sip.returnUri is required when sip.returnTransferType is INVITE"},
		{"uri as number", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": 5060}), 400, "400-03", "sip.returnUri must be a string, got a number"},
		{"auth as string", sipBody("x1", map[string]any{"returnTransferType": "INVITE", "returnUri": "sip:a@b", "returnInviteAuthentication": "u:p"}), 400, "400-03", "sip.returnInviteAuthentication must be an object"},
		{"password without username", sipBody("x1", map[string]any{"returnTransferType": "INVITE", "returnUri": "sip:a@b", "returnInviteAuthentication": map[string]any{"password": "p"}}), 400, "400-02", "sip.returnInviteAuthentication.username is required"},
		{"username control char", sipBody("x1", map[string]any{"returnTransferType": "INVITE", "returnUri": "sip:a@b", "returnInviteAuthentication": map[string]any{"username": "u\r\nX-Evil: 1"}}), 400, "400-04", "sip.returnInviteAuthentication.username must not contain control characters"},
		{"inputContext as array", map[string]any{"id": "x1", "externalConversationId": "c", "type": "SIP", "inputContext": []any{}}, 400, "400-03", "inputContext must be an object, got an array"},
		{"taskName as number", map[string]any{"id": "x1", "externalConversationId": "c", "type": "SIP", "inputContext": map[string]any{"taskName": 3}}, 400, "400-03", "inputContext.taskName must be a string"},
		{"inputVariables number", map[string]any{"id": "x1", "externalConversationId": "c", "type": "SIP", "inputContext": map[string]any{"inputVariables": map[string]any{"name": "n", "age": 42}}}, 400, "400-03", `inputContext.inputVariables["age"] must be a string, got a number`},
		{"inputVariables nested", map[string]any{"id": "x1", "externalConversationId": "c", "type": "SIP", "inputContext": map[string]any{"inputVariables": map[string]any{"o": map[string]any{}}}}, 400, "400-03", `inputContext.inputVariables["o"] must be a string, got an object`},
		{"inputVariables as list", map[string]any{"id": "x1", "externalConversationId": "c", "type": "SIP", "inputContext": map[string]any{"inputVariables": []any{"a"}}}, 400, "400-03", "inputContext.inputVariables must be an object, got an array"},
		{"uri garbage", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": "not a uri"}), 422, "422-02", "sip.returnUri must not contain whitespace"},
		{"uri http", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": "https://example.com/x"}), 422, "422-02", "sip.returnUri must use the sip: or sips: scheme"},
		{"uri no host", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": "sip:user@"}), 422, "422-02", "sip.returnUri must name a host"},
		{"uri bad port", sipBody("x1", map[string]any{"returnTransferType": "INVITE", "returnUri": "sip:user@host:port"}), 422, "422-02", "sip.returnUri is not a valid SIP URI"},
		{"uri CRLF", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": "sip:a@b\r\nX-Evil: 1"}), 422, "422-02", "control characters"},
		{"uri no scheme", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": "pbx.example.com"}), 422, "422-02", "not a valid SIP URI"},
		{"uri empty", sipBody("x1", map[string]any{"returnTransferType": "REFER", "returnUri": ""}), 422, "422-02", "sip.returnUri must not be empty"},
		{"unknown country", phoneBody("x1", "ZZ"), 422, "422-01", "no transfer numbers are configured for country ZZ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.create(credA, c.body)
			expect(t, r, c.status, c.code)
			if msg := r.str("error.message"); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q does not contain %q", msg, c.msg)
			}
		})
	}
	// Nothing above was stored.
	expect(t, e.fetch(credA, "x1"), 404, "404-01")
}

func TestTolerance(t *testing.T) {
	e := newEnv(t)
	// Unknown fields, a sip object on PHONE_NUMBER and phoneNumber on SIP are ignored;
	// the country is case-insensitive; any content type is parsed as JSON.
	id := newID("tol")
	body := phoneBody(id, "us")
	body["futureField"] = map[string]any{"x": 1}
	body["sip"] = "ignored even though it is not an object"
	r := e.do(http.MethodPost, pathCreate, body, hdr{"asapp-api-id": credA.ID, "asapp-api-secret": credA.Secret, "Content-Type": "text/plain"})
	expect(t, r, 200, "")
	if r.str("phoneNumber.country") != "US" || r.get("sip") != nil {
		t.Fatalf("body %s", r.raw)
	}
	// Same request with the country upper-cased is a replay.
	r2 := e.create(credA, phoneBody(id, "US"))
	expect(t, r2, 200, "")
	if r2.header.Get("Idempotent-Replayed") != "true" || r2.str("phoneNumber.transferNumber") != r.str("phoneNumber.transferNumber") {
		t.Fatalf("not a replay: %s", r2.raw)
	}

	s := sipBody(newID("tol"), map[string]any{"returnTransferType": "BYE", "returnUri": "sip:ivr@example.com"})
	s["phoneNumber"] = map[string]any{"country": 7}
	s["inputContext"] = map[string]any{"inputVariables": map[string]any{}}
	r = e.create(credA, s)
	expect(t, r, 200, "")
	if r.get("phoneNumber") != nil || r.str("sip.returnUri") != "sip:ivr@example.com" || r.get("inputContext") != nil {
		t.Fatalf("body %s", r.raw)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	id := newID("auth")
	cases := []hdr{
		{},
		{"asapp-api-id": credA.ID},
		{"asapp-api-secret": credA.Secret},
		{"asapp-api-id": credA.ID, "asapp-api-secret": credB.Secret},
		{"asapp-api-id": credA.ID, "asapp-api-secret": credA.Secret + "x"},
		{"asapp-api-id": "nobody", "asapp-api-secret": credA.Secret},
	}
	for i, h := range cases {
		r := e.do(http.MethodPost, pathCreate, phoneBody(id, "US"), h)
		expect(t, r, 401, "401-01")
		g := e.do(http.MethodGet, pathCreate+"/"+id, nil, h)
		expect(t, g, 401, "401-01")
		if i > 0 && strings.Contains(string(r.raw), credA.Secret) {
			t.Fatalf("401 echoes the secret: %s", r.raw)
		}
	}
	// Rejected requests stored nothing.
	expect(t, e.fetch(credA, id), 404, "404-01")
	if strings.Contains(e.logs.String(), credA.Secret) {
		t.Fatal("logs contain an API secret")
	}
}

func TestReadOnlyCredentialForbidden(t *testing.T) {
	e := newEnv(t)
	r := e.create(credRO, phoneBody(newID("ro"), "US"))
	expect(t, r, 403, "403-01")
	if !strings.Contains(r.str("error.message"), "read-only") {
		t.Fatalf("message %q", r.str("error.message"))
	}
	// It may still read (its own transfers: it has none).
	expect(t, e.fetch(credRO, "anything"), 404, "404-01")
}

func TestOwnershipAndNotFound(t *testing.T) {
	e := newEnv(t)
	id := newID("own")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")
	expect(t, e.fetch(credA, id), 200, "")
	r := e.fetch(credB, id)
	expect(t, r, 404, "404-01")
	expect(t, e.fetch(credA, "never-created"), 404, "404-01")
	expect(t, e.fetch(credA, "bad%20id"), 404, "404-01")
	expect(t, e.fetch(credA, strings.Repeat("z", 200)), 404, "404-01")
	// Unknown endpoints answer the envelope too.
	expect(t, e.do(http.MethodGet, "/generativeagent/v1/other", nil, auth(credA)), 404, "404-01")
	expect(t, e.do(http.MethodGet, pathCreate+"/a/b", nil, auth(credA)), 404, "404-01")
}

func TestIdempotencyReplayAndConflict(t *testing.T) {
	e := newEnv(t)
	id := newID("idem")
	first := e.create(credA, phoneBody(id, "US"))
	expect(t, first, 200, "")
	replay := e.create(credA, phoneBody(id, "US"))
	expect(t, replay, 200, "")
	if replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not flagged")
	}
	if string(replay.raw) != string(first.raw) {
		t.Fatalf("replay differs:\n%s\n%s", first.raw, replay.raw)
	}
	changed := phoneBody(id, "US")
	changed["externalConversationId"] = "another"
	r := e.create(credA, changed)
	expect(t, r, 409, "409-01")
	if !strings.Contains(r.str("error.message"), id) {
		t.Fatalf("message %q", r.str("error.message"))
	}
	// Ids are global: another credential reusing it conflicts too.
	expect(t, e.create(credB, phoneBody(id, "US")), 409, "409-01")
	// A SIP transfer whose explicit BYE equals the default replays.
	sid := newID("idem")
	expect(t, e.create(credA, sipBody(sid, nil)), 200, "")
	r = e.create(credA, sipBody(sid, map[string]any{"returnTransferType": "BYE"}))
	expect(t, r, 200, "")
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("explicit default not treated as a replay")
	}
	// Only one number was leased.
	stats, err := e.store.PoolStats(context.Background(), e.svc.Now())
	if err != nil || stats["US"].Leased != 1 {
		t.Fatalf("pool %+v, %v", stats, err)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.cfg.MaxBodyBytes = 1024 })
	body := phoneBody(newID("big"), "US")
	body["inputContext"] = map[string]any{"inputVariables": map[string]any{"blob": strings.Repeat("x", 2048)}}
	r := e.create(credA, body)
	expect(t, r, 413, "413-01")
	if !strings.Contains(r.str("error.message"), "1024 bytes") {
		t.Fatalf("message %q", r.str("error.message"))
	}
	// Just under the limit is fine.
	small := phoneBody(newID("big"), "US")
	small["inputContext"] = map[string]any{"inputVariables": map[string]any{"blob": strings.Repeat("x", 800)}}
	expect(t, e.create(credA, small), 200, "")
}

func TestDefaultBodyLimitIs64KiB(t *testing.T) {
	e := newEnv(t)
	body := sipBody(newID("big"), nil)
	body["inputContext"] = map[string]any{"inputVariables": map[string]any{"blob": strings.Repeat("x", 64<<10)}}
	expect(t, e.create(credA, body), 413, "413-01")
	body["inputContext"] = map[string]any{"inputVariables": map[string]any{"blob": strings.Repeat("x", 60<<10)}}
	expect(t, e.create(credA, body), 200, "")
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.cfg.RateLimit = 0.5; c.cfg.RateBurst = 3 })
	for i := 0; i < 3; i++ {
		expect(t, e.fetch(credA, "none"), 404, "404-01")
	}
	r := e.fetch(credA, "none")
	expect(t, r, 429, "429-01")
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	expect(t, e.create(credA, sipBody(newID("rl"), nil)), 429, "429-01")
	// Per credential: B still has its burst.
	expect(t, e.create(credB, sipBody(newID("rl"), nil)), 200, "")
}

func TestDrain(t *testing.T) {
	e := newEnv(t)
	id := newID("drain")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")
	expect(t, e.do(http.MethodGet, "/readyz", nil, nil), 200, "")

	e.api.SetDraining(true)
	r := e.create(credA, sipBody(newID("drain"), nil))
	expect(t, r, 503, "503-01")
	if r.header.Get("Retry-After") != "3" || !strings.Contains(r.str("error.message"), "draining") {
		t.Fatalf("Retry-After %q, message %q", r.header.Get("Retry-After"), r.str("error.message"))
	}
	expect(t, e.fetch(credA, id), 200, "")
	expect(t, e.do(http.MethodGet, "/readyz", nil, nil), 503, "503-01")
	expect(t, e.do(http.MethodGet, "/healthz", nil, nil), 200, "")

	e.api.SetDraining(false)
	expect(t, e.do(http.MethodGet, "/readyz", nil, nil), 200, "")
	expect(t, e.create(credA, sipBody(newID("drain"), nil)), 200, "")
}

func TestNoFreeNumber(t *testing.T) {
	e := newEnv(t)
	expect(t, e.create(credA, phoneBody(newID("gb"), "GB")), 200, "")
	r := e.create(credA, phoneBody(newID("gb"), "GB"))
	expect(t, r, 503, "503-01")
	if r.header.Get("Retry-After") != "3" || !strings.Contains(r.str("error.message"), "no free transfer number for country GB") {
		t.Fatalf("Retry-After %q message %q", r.header.Get("Retry-After"), r.str("error.message"))
	}
}

func TestInternalErrorIsLoggedWithRequestID(t *testing.T) {
	e := newEnv(t)
	id := newID("ok")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")

	e.store.mode.Store("error")
	r := e.create(credA, sipBody(newID("boom"), nil))
	expect(t, r, 500, "500-01")
	rid := r.header.Get("X-Request-Id")
	if strings.Contains(r.str("error.message"), errInjected.Error()) || !strings.Contains(r.str("error.message"), rid) {
		t.Fatalf("500 message %q should quote the request id and hide the cause", r.str("error.message"))
	}
	g := e.fetch(credA, id)
	expect(t, g, 500, "500-01")
	expect(t, e.do(http.MethodGet, "/readyz", nil, nil), 503, "503-01")
	logs := e.logs.String()
	found := false
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, `"request_id":"`+rid+`"`) && strings.Contains(line, errInjected.Error()) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no error log line with request id %s:\n%s", rid, logs)
	}

	e.store.mode.Store("panic")
	r = e.fetch(credA, id)
	expect(t, r, 500, "500-01")
	if !strings.Contains(e.logs.String(), "injected store panic") {
		t.Fatal("panic not logged")
	}

	e.store.mode.Store("")
	expect(t, e.fetch(credA, id), 200, "")
	expect(t, e.do(http.MethodGet, "/readyz", nil, nil), 200, "")
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	r := e.fetch(credA, "missing")
	if !uuid.MatchString(r.header.Get("X-Request-Id")) || r.str("error.requestId") != r.header.Get("X-Request-Id") {
		t.Fatalf("generated id %q / body %q", r.header.Get("X-Request-Id"), r.str("error.requestId"))
	}
	r2 := e.fetch(credA, "missing")
	if r2.header.Get("X-Request-Id") == r.header.Get("X-Request-Id") {
		t.Fatal("request ids repeat")
	}

	h := auth(credA)
	h["X-Request-Id"] = "ivr-call-42/attempt:1"
	r = e.do(http.MethodGet, pathCreate+"/missing", nil, h)
	if r.header.Get("X-Request-Id") != "ivr-call-42/attempt:1" || r.str("error.requestId") != "ivr-call-42/attempt:1" {
		t.Fatalf("caller id not echoed: %q %s", r.header.Get("X-Request-Id"), r.raw)
	}
	for _, bad := range []string{strings.Repeat("r", 129), "has space", "tab\there", "ünïcode"} {
		h["X-Request-Id"] = bad
		r = e.do(http.MethodGet, pathCreate+"/missing", nil, h)
		if !uuid.MatchString(r.header.Get("X-Request-Id")) {
			t.Fatalf("bad caller id %q was not replaced: %q", bad, r.header.Get("X-Request-Id"))
		}
	}
	// Success responses carry it too.
	h["X-Request-Id"] = "ok-1"
	r = e.do(http.MethodPost, pathCreate, sipBody(newID("rid"), nil), h)
	expect(t, r, 200, "")
	if r.header.Get("X-Request-Id") != "ok-1" {
		t.Fatal("no request id on 200")
	}
	if !strings.Contains(e.logs.String(), `"request_id":"ok-1"`) {
		t.Fatal("request id not logged")
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodGet, pathCreate, nil, auth(credA))
	expect(t, r, 405, "405-01")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	r = e.do(http.MethodDelete, pathCreate+"/x", nil, auth(credA))
	expect(t, r, 405, "405-01")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
}

func TestStatusLifecycleRendering(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// Expiry shows before any sweeper runs.
	pid := newID("exp")
	expect(t, e.create(credA, phoneBody(pid, "US")), 200, "")
	e.offset.Store(int64(ttl + time.Second))
	g := e.fetch(credA, pid)
	expect(t, g, 200, "")
	if g.str("status") != "EXPIRED" {
		t.Fatalf("status %q, want EXPIRED", g.str("status"))
	}
	e.offset.Store(0)

	// A SIP call that arrives and completes.
	sid := newID("done")
	expect(t, e.create(credA, sipBody(sid, map[string]any{"returnTransferType": "REFER", "returnUri": "sip:back@ivr.example.com"})), 200, "")
	if _, err := e.svc.Claim(ctx, sid, "call-1", "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Answer(ctx, sid, "call-1"); err != nil {
		t.Fatal(err)
	}
	g = e.fetch(credA, sid)
	if g.str("status") != "ONGOING" || g.str("callReceivedAt") == "" || g.get("completedAt") != nil {
		t.Fatalf("ongoing body %s", g.raw)
	}
	out := &transfer.OutputContext{TransferType: "SYSTEM", CurrentTaskName: "Billing",
		ReferenceVariables: map[string]string{"case": "123"}, TransferVariables: map[string]string{"intent": "pay"}}
	if _, err := e.svc.Complete(ctx, sid, transfer.EndAgentFinished, out, nil); err != nil {
		t.Fatal(err)
	}
	g = e.fetch(credA, sid)
	expect(t, g, 200, "")
	if g.str("status") != "COMPLETED" || g.str("completedAt") == "" || g.str("endReason") != "agent_finished" ||
		g.str("outputContext.transferType") != "SYSTEM" || g.str("outputContext.currentTaskName") != "Billing" ||
		g.str("outputContext.referenceVariables.case") != "123" || g.str("outputContext.transferVariables.intent") != "pay" {
		t.Fatalf("completed body %s", g.raw)
	}
	for _, f := range []string{"createdAt", "callReceivedAt", "completedAt"} {
		if _, err := time.Parse(time.RFC3339, g.str(f)); err != nil || !strings.HasSuffix(g.str(f), "Z") {
			t.Errorf("%s = %q is not RFC 3339 UTC", f, g.str(f))
		}
	}

	// The return, handed back from a SIP agent leg (the contract transport
	// checks the shape against the document).
	if _, err := e.svc.Amend(ctx, sid, func(tr *transfer.Transfer) {
		tr.Return = &transfer.ReturnResult{Method: transfer.ReturnRefer, Result: transfer.ReturnSucceeded, SIPCode: 200,
			StartedAt: e.svc.Now(), EndedAt: e.svc.Now(),
			AgentLeg: &transfer.AgentLeg{URI: "sip:bot@agent.example", CallID: "agent-call-1", Ending: "refer"}}
	}); err != nil {
		t.Fatal(err)
	}
	g = e.fetch(credA, sid)
	expect(t, g, 200, "")
	if g.str("returnResult.agentLeg.uri") != "sip:bot@agent.example" || g.str("returnResult.agentLeg.callId") != "agent-call-1" ||
		g.str("returnResult.agentLeg.ending") != "refer" {
		t.Fatalf("returnResult %s", g.raw)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t)
	expect(t, e.do(http.MethodGet, "/healthz", nil, nil), 200, "")
	r := e.do(http.MethodGet, "/openapi.yaml", nil, nil)
	expect(t, r, 200, "")
	if string(r.raw) != string(control.OpenAPIDocument) {
		t.Fatal("served document differs from the embedded one")
	}
	id := newID("m")
	expect(t, e.create(credA, sipBody(id, nil)), 200, "")
	expect(t, e.fetch(credA, id), 200, "")
	expect(t, e.fetch(credA, "nope"), 404, "")
	m := e.do(http.MethodGet, "/metrics", nil, nil)
	expect(t, m, 200, "")
	text := string(m.raw)
	for _, want := range []string{
		`handoff_http_requests_total{code="200",method="POST",route="/generativeagent/v1/call-transfers"} 1`,
		`handoff_http_requests_total{code="404",method="GET",route="/generativeagent/v1/call-transfers/{callTransferId}"} 1`,
		`handoff_http_request_duration_seconds_bucket{method="GET",route="/generativeagent/v1/call-transfers/{callTransferId}",le="+Inf"} 2`,
		`handoff_transfers_created_total{type="SIP"} 1`,
		`handoff_number_pool_numbers{country="US",state="free"} 10`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, id) || strings.Contains(text, "nope") {
		t.Error("raw paths leak into metric labels")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	svc := transfer.NewService(nil, transfer.ServiceConfig{})
	uri := func(id string) string { return "sip:" + id + "@h" }
	for name, cfg := range map[string]control.Config{
		"no uri builder": {Credentials: []control.Credential{credA}},
		"empty secret":   {Credentials: []control.Credential{{ID: "x"}}, SIPTransferURI: uri},
		"duplicate id":   {Credentials: []control.Credential{credA, credA}, SIPTransferURI: uri},
	} {
		if _, err := control.New(cfg, svc, nil, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := control.New(control.Config{SIPTransferURI: uri}, nil, nil, nil); err == nil {
		t.Error("nil service accepted")
	}
}

// TestConcurrentCreatesLeaseDistinctNumbers: 100 creates race for 20 numbers;
// exactly 20 win distinct numbers, the rest get 503-01 with Retry-After.
func TestConcurrentCreatesLeaseDistinctNumbers(t *testing.T) {
	e := newEnv(t, func(c *envConfig) {
		c.pools = map[string][]string{"FR": {"+33100000000-+33100000019"}}
		c.cfg.RateLimit = -1
	})
	const n = 100
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		numbers = map[string]string{}
		busy    int
		other   []string
	)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			creds := []control.Credential{credA, credB}
			r := e.create(creds[i%2], phoneBody(fmt.Sprintf("race-%03d", i), "FR"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.status == 200:
				num := r.str("phoneNumber.transferNumber")
				if prev, dup := numbers[num]; dup {
					other = append(other, fmt.Sprintf("number %s leased twice (%s)", num, prev))
				}
				numbers[num] = r.str("id")
			case r.status == 503 && r.errCode() == "503-01" && r.header.Get("Retry-After") != "":
				busy++
			default:
				other = append(other, fmt.Sprintf("%d %s", r.status, r.raw))
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("unexpected outcomes: %v", other)
	}
	if len(numbers) != 20 || busy != n-20 {
		t.Fatalf("%d leased, %d busy; want 20 and %d", len(numbers), busy, n-20)
	}
}

// Draining the body is the server's job; make sure a slow client reading
// nothing does not matter for an oversized body (no hang).
func TestOversizedBodyDoesNotHang(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.cfg.MaxBodyBytes = 10 })
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"`))
		pw.Close()
	}()
	r := e.do(http.MethodPost, pathCreate, pr, auth(credA))
	expect(t, r, 413, "413-01")
}
