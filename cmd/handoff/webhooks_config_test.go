package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/webhook"
)

// Test webhook secrets: whsec_ + base64 of 24 and 32 bytes.
const (
	hookSecretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hookSecretB = "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGhlLXNlY29uZC1lbmQ="
)

func TestWebhooksConfigLoads(t *testing.T) {
	secretFile := writeFile(t, "hook-secret", hookSecretB+"\n")
	path := writeFile(t, "handoff.yaml", `
auth:
  credentials:
    - {id: ivr, secret: ivr-secret, webhook_url: "https://ivr.example.com/hooks?token=t0k", webhook_secret: `+hookSecretA+`}
    - {id: ops, secret: ops-secret, webhook_url: "http://127.0.0.1:9/hooks", webhook_secret_file: `+secretFile+`}
    - {id: quiet, secret: quiet-secret}
webhooks:
  default_url: http://[::1]:8081/headers
  default_secret: `+hookSecretA+`
  workers: 8
  timeout: 5s
  max_age: 1h
`)
	cfg, err := Load(path, envMap(map[string]string{"HANDOFF_WEBHOOKS_WORKERS": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Webhooks; w.Workers != 2 || w.Timeout != 5*time.Second || w.MaxAge != time.Hour || w.AllowInsecure {
		t.Errorf("webhooks = %+v", w)
	}
	if got := cfg.Auth.Credentials[1].WebhookSecret; got != hookSecretB {
		t.Errorf("webhook_secret_file not read: %q", got)
	}
	dir := webhookDirectory(&cfg)
	if len(dir.ByCredential) != 2 || dir.ByCredential["quiet"] != nil || dir.Default == nil {
		t.Fatalf("directory %+v", dir)
	}
	if h := dir.Resolve(webhook.Event{Credential: "ivr"}).Host(); h != "ivr.example.com" {
		t.Errorf("ivr's endpoint host %q", h)
	}
	if got := webhookCredentials(&cfg); strings.Join(got, ",") != "ivr,ops" {
		t.Errorf("webhookCredentials = %v", got)
	}
	d, _ := Load("", noEnv)
	if d.Webhooks != (WebhooksConfig{Workers: 4, Timeout: 15 * time.Second, MaxAge: 24 * time.Hour}) {
		t.Errorf("defaults %+v", d.Webhooks)
	}
}

// Bad endpoints are refused with the key named and the secret (and the
// URL's path and query) never quoted.
func TestWebhooksConfigErrors(t *testing.T) {
	badSecret := "whsec_not-base64!!-do-not-print-me"
	short := "whsec_c2hvcnQ=" // 5 bytes
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"plain http to a remote host", "auth:\n  credentials: [{id: a, secret: s, webhook_url: \"http://ivr.example.com/h?token=tok-do-not-print\", webhook_secret: " + hookSecretA + "}]\n",
			[]string{"auth.credentials[0]", `"a"`, "webhook_url", "https", "ivr.example.com"}},
		{"no secret", "auth:\n  credentials: [{id: a, secret: s, webhook_url: \"https://ivr.example.com/h\"}]\n",
			[]string{"auth.credentials[0]", "webhook_url needs webhook_secret"}},
		{"secret without URL", "auth:\n  credentials: [{id: a, secret: s, webhook_secret: " + hookSecretA + "}]\n",
			[]string{"webhook_secret is set without webhook_url"}},
		{"secret not base64", "auth:\n  credentials: [{id: a, secret: s, webhook_url: \"https://h.example/\", webhook_secret: \"" + badSecret + "\"}]\n",
			[]string{"webhook_secret", "base64"}},
		{"secret too short", "webhooks:\n  default_url: https://h.example/\n  default_secret: " + short + "\n",
			[]string{"webhooks.default_url", "default_secret", "24 to 64"}},
		{"secret without prefix", "webhooks:\n  default_url: https://h.example/\n  default_secret: c2hvcnQ=\n",
			[]string{"default_secret", "whsec_"}},
		{"user in URL", "webhooks:\n  default_url: \"https://u:pw-do-not-print@h.example/\"\n  default_secret: " + hookSecretA + "\n",
			[]string{"default_url", "user:password"}},
		{"bad scheme", "webhooks:\n  default_url: ftp://h.example/\n  default_secret: " + hookSecretA + "\n", []string{"default_url", "ftp"}},
		{"both secret and file", "webhooks:\n  default_secret: " + hookSecretA + "\n  default_secret_file: /nope\n", []string{"webhooks", "not both"}},
		{"zero workers", "webhooks:\n  workers: 0\n", []string{"webhooks.workers", "at least 1"}},
		{"zero timeout and max age", "webhooks:\n  timeout: 0s\n  max_age: 0s\n", []string{"webhooks.timeout", "webhooks.max_age"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", c.yaml)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"-config", path, "-check"}, noEnv, &stdout, &stderr); code != exitUsage {
				t.Fatalf("-check exit %d, want %d: %s", code, exitUsage, stderr.String())
			}
			msg := stderr.String()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			for _, secret := range []string{hookSecretA, badSecret, short, "do-not-print"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q quotes a secret or a URL's token", msg)
				}
			}
		})
	}
}

// http to a loopback host is accepted; to another one only with
// allow_insecure.
func TestWebhooksAllowInsecure(t *testing.T) {
	yaml := "auth:\n  credentials: [{id: a, secret: s, webhook_url: \"http://10.0.0.5:8080/h\", webhook_secret: " + hookSecretA + "}]\n"
	if _, err := Load(writeFile(t, "a.yaml", yaml), noEnv); err == nil {
		t.Fatal("plain http to 10.0.0.5 accepted without allow_insecure")
	}
	if _, err := Load(writeFile(t, "b.yaml", yaml+"webhooks:\n  allow_insecure: true\n"), noEnv); err != nil {
		t.Fatalf("with allow_insecure: %v", err)
	}
}
