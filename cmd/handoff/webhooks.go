package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/transfer"
	"github.com/handoff/handoff/webhook"
)

// WebhooksConfig is the delivery of lifecycle webhooks (docs/webhooks.md).
// Each credential's endpoint is auth.credentials[].webhook_url and
// webhook_secret; the default endpoint here serves headers-mode transfers.
type WebhooksConfig struct {
	DefaultURL        string        `yaml:"default_url"`
	DefaultSecret     string        `yaml:"default_secret,omitempty"`
	DefaultSecretFile string        `yaml:"default_secret_file,omitempty"`
	Workers           int           `yaml:"workers"`
	Timeout           time.Duration `yaml:"timeout"`
	MaxAge            time.Duration `yaml:"max_age"`
	AllowInsecure     bool          `yaml:"allow_insecure"`
}

func defaultWebhooks() WebhooksConfig {
	return WebhooksConfig{Workers: webhook.DefaultWorkers, Timeout: webhook.DefaultTimeout, MaxAge: webhook.DefaultMaxAge}
}

func (w *WebhooksConfig) validate(v *validation, auth *AuthConfig) {
	if w.Workers < 1 {
		v.bad(&w.Workers, "must be at least 1, got %d", w.Workers)
	}
	v.positive(&w.Timeout)
	v.positive(&w.MaxAge)
	if _, err := endpoint(w.DefaultURL, w.DefaultSecret, w.AllowInsecure, "default_url", "default_secret"); err != nil {
		v.bad(&w.DefaultURL, "%v", err)
	}
	for i, cr := range auth.Credentials {
		if _, err := endpoint(cr.WebhookURL, cr.WebhookSecret, w.AllowInsecure, "webhook_url", "webhook_secret"); err != nil {
			v.badAt(&auth.Credentials, i, "credential %q: %v", cr.ID, err)
		}
	}
}

// endpoint validates a URL and secret pair (nil, nil when neither is set).
// Its errors name the keys, never the secret, nor the URL's path or query.
func endpoint(url, secret string, allowInsecure bool, urlKey, secretKey string) (*webhook.Endpoint, error) {
	switch {
	case url == "" && secret == "":
		return nil, nil
	case url == "":
		return nil, fmt.Errorf("%s is set without %s", secretKey, urlKey)
	case secret == "":
		return nil, fmt.Errorf("%s needs %s (whsec_ and base64 of 24 to 64 random bytes)", urlKey, secretKey)
	}
	if _, err := webhook.ValidateURL(url, allowInsecure); err != nil {
		return nil, fmt.Errorf("%s: %w", urlKey, err)
	}
	ep, err := webhook.NewEndpoint(url, secret, allowInsecure)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", secretKey, err)
	}
	return ep, nil
}

// webhookDirectory is the endpoint table of a validated configuration.
func webhookDirectory(c *Config) *webhook.Directory {
	d := &webhook.Directory{ByCredential: map[string]*webhook.Endpoint{}}
	w := &c.Webhooks
	d.Default, _ = endpoint(w.DefaultURL, w.DefaultSecret, w.AllowInsecure, "", "")
	for _, cr := range c.Auth.Credentials {
		if ep, _ := endpoint(cr.WebhookURL, cr.WebhookSecret, w.AllowInsecure, "", ""); ep != nil {
			d.ByCredential[cr.ID] = ep
		}
	}
	return d
}

// webhookCredentials lists the credentials that have an endpoint (for the
// log: ids only).
func webhookCredentials(c *Config) []string {
	var ids []string
	for _, cr := range c.Auth.Credentials {
		if cr.WebhookURL != "" {
			ids = append(ids, cr.ID)
		}
	}
	return ids
}

// webhookRouting is the running process's endpoint table, swapped whole on
// reload, and its dispatcher once started.
type webhookRouting struct {
	dir        atomic.Pointer[webhook.Directory]
	dispatcher atomic.Pointer[webhook.Dispatcher]
}

func newWebhookRouting(c *Config) *webhookRouting {
	r := &webhookRouting{}
	r.dir.Store(webhookDirectory(c))
	return r
}

// resolve is the dispatcher's webhook.EndpointResolver.
func (r *webhookRouting) resolve(ev webhook.Event) *webhook.Endpoint { return r.dir.Load().Resolve(ev) }

// wants reports whether events of credential's transfers go anywhere now.
func (r *webhookRouting) wants(credential string) bool {
	return r.resolve(webhook.Event{Credential: credential}) != nil
}

// notify wakes the dispatcher after a commit that wrote events.
func (r *webhookRouting) notify() {
	if d := r.dispatcher.Load(); d != nil {
		d.Notify()
	}
}

// storeWebhooks is what the store needs to write the events.
func (r *webhookRouting) storeWebhooks(c *Config) *transfer.Webhooks {
	return &transfer.Webhooks{Payload: control.EventPayload(c.TransferURI), Wants: r.wants, Notify: r.notify}
}

// newDispatcher builds the dispatcher on the store's outbox and registers
// its metrics; the caller runs it.
func (r *webhookRouting) newDispatcher(c *Config, store transfer.Store, reg prometheus.Registerer, log *slog.Logger) (*webhook.Dispatcher, error) {
	ob, ok := store.(webhook.Outbox)
	if !ok {
		return nil, errors.New("webhooks: the store has no outbox")
	}
	d, err := webhook.New(webhook.Config{Node: c.Node.ID, Workers: c.Webhooks.Workers, Timeout: c.Webhooks.Timeout,
		MaxAge: c.Webhooks.MaxAge, Logger: log}, ob, r.resolve)
	if err != nil {
		return nil, err
	}
	if err := d.Register(reg); err != nil {
		return nil, fmt.Errorf("register webhook metrics: %w", err)
	}
	r.dispatcher.Store(d)
	return d, nil
}
