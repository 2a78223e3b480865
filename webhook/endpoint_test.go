package webhook_test

import (
	"strings"
	"testing"

	"github.com/handoff/handoff/webhook"
)

func TestValidateURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		insecure bool
		want     string // "" for accepted, else part of the error
	}{
		{"https://hooks.example.com/handoff", false, ""},
		{"https://hooks.example.com:8443/h?token=x", false, ""},
		{"http://127.0.0.1:8080/h", false, ""},
		{"http://127.9.9.9/h", false, ""},
		{"http://[::1]:9000/h", false, ""},
		{"http://localhost:9000/h", false, ""},
		{"http://hooks.example.com/h", false, "must be https"},
		{"http://192.0.2.10/h", false, "must be https"},
		{"http://localhost.example.com/h", false, "must be https"},
		{"http://hooks.example.com/h", true, ""},
		{"ftp://hooks.example.com/h", true, "scheme must be https"},
		{"https://user:pass@hooks.example.com/h", false, "user:password"},
		{"/relative/path", false, "absolute"},
		{"https:///nohost", false, "absolute"},
		{"https://exa mple.com/\x7f", false, "does not parse"},
	} {
		_, err := webhook.ValidateURL(c.url, c.insecure)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("ValidateURL(%q, %v) = %v, want accepted", c.url, c.insecure, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("ValidateURL(%q, %v) = %v, want an error with %q", c.url, c.insecure, err, c.want)
		case err != nil && strings.Contains(c.url, "pass") && strings.Contains(err.Error(), "pass@"):
			t.Errorf("error quotes the credentials: %v", err)
		}
	}
}

func TestNewEndpointChecksBoth(t *testing.T) {
	if _, err := webhook.NewEndpoint("http://192.0.2.10/h", secretA, false); err == nil {
		t.Error("insecure non-loopback endpoint accepted")
	}
	if _, err := webhook.NewEndpoint("https://hooks.example.com/h", "whsec_short", false); err == nil {
		t.Error("malformed secret accepted")
	}
	ep, err := webhook.NewEndpoint("https://hooks.example.com:8443/h?token=t", secretA, false)
	if err != nil || ep.Host() != "hooks.example.com:8443" {
		t.Errorf("NewEndpoint: %v, host %q", err, ep.Host())
	}
}

func TestDirectory(t *testing.T) {
	a, _ := webhook.NewEndpoint("https://a.example.com/h", secretA, false)
	def, _ := webhook.NewEndpoint("https://default.example.com/h", secretB, false)
	d := &webhook.Directory{ByCredential: map[string]*webhook.Endpoint{"a": a}, Default: def}
	for cred, want := range map[string]*webhook.Endpoint{"a": a, "b": nil, "": def} {
		if got := d.Resolve(webhook.Event{Credential: cred}); got != want {
			t.Errorf("Resolve(credential %q) = %v, want %v", cred, got, want)
		}
	}
	var none *webhook.Directory
	if none.Resolve(webhook.Event{}) != nil {
		t.Error("a nil directory resolves an endpoint")
	}
}
