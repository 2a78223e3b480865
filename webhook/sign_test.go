package webhook_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/handoff/handoff/webhook"
)

// Handoff's signature is checked by the Standard Webhooks reference
// library (an independent implementation), and equals the one it makes.
func TestSignatureVerifiesWithReferenceLibrary(t *testing.T) {
	for _, raw := range []string{secretA, secretB} {
		s, err := webhook.ParseSecret(raw)
		if err != nil {
			t.Fatal(err)
		}
		ev := newEvent(t, webhook.TransferCompleted, "tr-1", "ivr", time.Now(), 3)
		now := time.Now()
		h := http.Header{}
		h.Set("webhook-id", ev.ID)
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", s.Sign(ev.ID, now, ev.Body))

		lib, err := standardwebhooks.NewWebhook(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := lib.Verify(ev.Body, h); err != nil {
			t.Fatalf("reference library rejects Handoff's signature: %v", err)
		}
		if want, _ := lib.Sign(ev.ID, now, ev.Body); h.Get("webhook-signature") != want {
			t.Errorf("signature %s, reference library signs %s", h.Get("webhook-signature"), want)
		}
		tampered := []byte(strings.Replace(string(ev.Body), `"seq":3`, `"seq":4`, 1))
		if lib.Verify(tampered, h) == nil {
			t.Error("reference library accepts a tampered body")
		}
	}
}

func TestParseSecretRefusesMalformed(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `must start with "whsec_"`},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", `must start with "whsec_"`},
		{"whsec_not base64!", "not standard base64"},
		{"whsec_c2hvcnQ=", "decodes to 5 bytes, want 24 to 64"},
		{"whsec_" + strings.Repeat("QUFB", 22), "decodes to 66 bytes"},
	} {
		_, err := webhook.ParseSecret(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSecret(%q) = %v, want an error with %q", c.in, err, c.want)
		}
		if err != nil && len(c.in) > len("whsec_") && strings.Contains(err.Error(), c.in[len("whsec_"):]) {
			t.Errorf("ParseSecret's error quotes the secret: %v", err)
		}
	}
}

// However a secret or an endpoint is printed or logged, the key stays out.
func TestSecretRedacted(t *testing.T) {
	s, _ := webhook.ParseSecret(secretA)
	ep, err := webhook.NewEndpoint("https://hooks.example.test/h", secretA, false)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s, "endpoint", ep)
	js, _ := json.Marshal(map[string]any{"s": s})
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", s, s, s, s, ep, ep, *ep) + logged.String() + string(js)
	if key := secretA[len("whsec_"):]; strings.Contains(out, key) || strings.Contains(out, fmt.Sprint([]byte(key)[:4])) {
		t.Fatalf("secret leaked: %s", out)
	}
	if !strings.Contains(out, "whsec_[redacted]") {
		t.Errorf("no redaction marker in %s", out)
	}
}

func TestNewEventEnvelope(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CET", 3600))
	ev, err := webhook.NewEvent(webhook.TransferExpired, "tr-9", "ivr", at, []byte(`{ "id": "tr-9", "status": "EXPIRED" }`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"transfer.expired","timestamp":"2026-05-06T06:08:09.123456789Z","data":{"id":"tr-9","status":"EXPIRED"}}`
	if string(ev.Body) != want {
		t.Errorf("body %s\nwant %s", ev.Body, want)
	}
	if !strings.HasPrefix(ev.ID, "evt_") || len(ev.ID) != 30 || strings.Contains(ev.ID, ".") {
		t.Errorf("id %q: want evt_ and 26 base32 characters", ev.ID)
	}
	if other, _ := webhook.NewEvent(webhook.TransferExpired, "tr-9", "ivr", at, []byte(`{}`)); other.ID == ev.ID {
		t.Error("two events share an id")
	}
	for _, bad := range []struct {
		typ  webhook.EventType
		tr   string
		data string
	}{{"transfer.deleted", "tr", "{}"}, {webhook.TransferCreated, "", "{}"}, {webhook.TransferCreated, "tr", "{"}} {
		if _, err := webhook.NewEvent(bad.typ, bad.tr, "", at, []byte(bad.data)); err == nil {
			t.Errorf("NewEvent(%q, %q, %q) accepted", bad.typ, bad.tr, bad.data)
		}
	}
}
