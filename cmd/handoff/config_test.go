package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/media"
)

func noEnv(string) (string, bool) { return "", false }

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// wantLoadError checks that loading the YAML doc fails with an error that
// mentions want.
func wantLoadError(t *testing.T, doc, want string) {
	t.Helper()
	_, err := Load(writeFile(t, "handoff.yaml", doc), noEnv)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: error %v, want one mentioning %q", doc, err, want)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsLoad(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Store.Path != "data/handoff.db" {
		t.Errorf("http.listen %q, store.path %q", cfg.HTTP.Listen, cfg.Store.Path)
	}
	if cfg.Numbers.TTL != 10*time.Minute || cfg.Numbers.Quarantine != 5*time.Minute {
		t.Errorf("numbers.ttl %s, numbers.quarantine %s", cfg.Numbers.TTL, cfg.Numbers.Quarantine)
	}
	if cfg.SIP.ExternalHost != "127.0.0.1:5060" {
		t.Errorf("derived sip.external_host = %q, want 127.0.0.1:5060", cfg.SIP.ExternalHost)
	}
	if got := cfg.TransferURI("abc-1"); got != "sip:abc-1@127.0.0.1:5060" {
		t.Errorf("TransferURI = %q", got)
	}
	if !cfg.UsesDevCredential() {
		t.Error("defaults should use the dev credential")
	}
	if first, last := cfg.RTPPortRange(); first != 20000 || last != 20999 {
		t.Errorf("RTPPortRange = %d-%d", first, last)
	}
	if got := cfg.SIPListeners(); len(got) != 2 || got[0] != (SIPListen{"udp", "127.0.0.1:5060"}) || got[1] != (SIPListen{"tcp", "127.0.0.1:5060"}) {
		t.Errorf("SIPListeners = %v", got)
	}
	if got := cfg.TrustedPrefixes(); len(got) != 2 || got[0].String() != "127.0.0.0/8" || got[1].String() != "::1/128" {
		t.Errorf("TrustedPrefixes = %v", got)
	}
}

// configs/handoff.yaml documents the defaults: it must load with every key
// known and equal the built-in configuration.
func TestExampleConfigEqualsDefaults(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "handoff.yaml")
	fromFile, err := Load(path, noEnv)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	defaults, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, defaults) {
		t.Errorf("%s differs from the built-in defaults:\nfile:     %+v\ndefaults: %+v", path, fromFile, defaults)
	}
	// And it mentions every key, so the file stays the reference.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range configKeys(&defaults) {
		leaf := k.Key[strings.LastIndex(k.Key, ".")+1:]
		if !strings.Contains(string(raw), leaf+":") {
			t.Errorf("%s does not document %s", path, k.Key)
		}
	}
}

func TestConfigDocListsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	for _, k := range configKeys(&cfg) {
		if !strings.Contains(string(raw), "`"+k.Key+"`") || !strings.Contains(string(raw), "`"+k.Env+"`") {
			t.Errorf("docs/configuration.md lacks %s or %s", k.Key, k.Env)
		}
	}
}

func TestLoadFile(t *testing.T) {
	secret := writeFile(t, "secret", "s3cret-from-file\n")
	path := writeFile(t, "handoff.yaml", `
http:
  listen: 127.0.0.1:0
auth:
  credentials:
    - id: ivr
      secret: ivr-secret
    - id: ops
      secret_file: `+secret+`
      read_only: true
numbers:
  ttl: 2s
  quarantine: 1h
  pools:
    GB: ["+447700900000-+447700900002", "+447700900009"]
store:
  path: /tmp/x/handoff.db
sip:
  listen: [udp://0.0.0.0:5070]
  external_host: sbc.example.com
  digest:
    realm: handoff
    users:
      - {username: carrier, password: pw}
`)
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []Credential{{ID: "ivr", Secret: "ivr-secret"}, {ID: "ops", Secret: "s3cret-from-file", SecretFile: secret, ReadOnly: true}}
	if !reflect.DeepEqual(cfg.Auth.Credentials, want) {
		t.Errorf("credentials = %+v", cfg.Auth.Credentials)
	}
	if cfg.UsesDevCredential() {
		t.Error("dev credential reported while not configured")
	}
	if cfg.Numbers.TTL != 2*time.Second || cfg.Numbers.Quarantine != time.Hour {
		t.Errorf("ttl %s quarantine %s", cfg.Numbers.TTL, cfg.Numbers.Quarantine)
	}
	// The file's pools replace the default US pool.
	if want := map[string][]string{"GB": {"+447700900000-+447700900002", "+447700900009"}}; !reflect.DeepEqual(cfg.Numbers.Pools, want) {
		t.Errorf("pools = %v", cfg.Numbers.Pools)
	}
	if cfg.SIP.ExternalHost != "sbc.example.com:5070" {
		t.Errorf("external_host = %q, want the first listen port added", cfg.SIP.ExternalHost)
	}
	// Keys the file leaves out keep their defaults.
	if cfg.SIP.TransferHeader != "X-Call-Transfer-Id" || cfg.Drain.Timeout != 30*time.Second || cfg.Log.Format != "json" {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Load(writeFile(t, "empty.yaml", "# nothing\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	def, _ := Load("", noEnv)
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("empty file differs from defaults")
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	for _, doc := range []string{
		"http:\n  listn: 127.0.0.1:1\n",
		"numbers:\n  tll: 1m\n",
		"auth:\n  credentials:\n    - id: a\n      secert: b\n",
		"colour: blue\n",
	} {
		wantLoadError(t, doc, "not found") // an unknown-field error
	}
}

func TestEnvOverrides(t *testing.T) {
	path := writeFile(t, "c.yaml", "http:\n  listen: 127.0.0.1:1\nstore:\n  path: from-file.db\n")
	cfg, err := Load(path, envMap(map[string]string{
		"HANDOFF_HTTP_LISTEN":          "127.0.0.1:9999",
		"HANDOFF_HTTP_RATE_LIMIT":      "-1",
		"HANDOFF_HTTP_MAX_BODY_BYTES":  "1024",
		"HANDOFF_STORE_PATH":           "  ", // empty values are ignored
		"HANDOFF_NUMBERS_TTL":          "90s",
		"HANDOFF_NUMBERS_POOLS":        "US=+12025550100-+12025550101,+12025550109; GB=+447700900000",
		"HANDOFF_AUTH_CREDENTIALS":     "a:sa, b:s:b",
		"HANDOFF_SIP_LISTEN":           "udp://127.0.0.1:5080,tcp://127.0.0.1:5080",
		"HANDOFF_SIP_TRUSTED_CIDRS":    "10.0.0.0/8",
		"HANDOFF_SIP_DIGEST_REALM":     "r",
		"HANDOFF_SIP_DIGEST_USERS":     "u:p",
		"HANDOFF_SIP_TRANSFER_HEADER":  "X-Id",
		"HANDOFF_MEDIA_RTP_PORTS":      "30000-30099",
		"HANDOFF_MEDIA_CODECS":         "pcma, G722",
		"HANDOFF_MEDIA_COMFORT_NOISE":  "false",
		"HANDOFF_AGENT_MODE":           "websocket",
		"HANDOFF_AGENT_URL":            "wss://agent.example/ws",
		"HANDOFF_LOG_LEVEL":            "debug",
		"HANDOFF_DRAIN_TIMEOUT":        "1m",
		"HANDOFF_UNRELATED_IS_IGNORED": "x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"http.listen", cfg.HTTP.Listen, "127.0.0.1:9999"},
		{"http.rate_limit", cfg.HTTP.RateLimit, -1.0},
		{"http.max_body_bytes", cfg.HTTP.MaxBodyBytes, int64(1024)},
		{"store.path", cfg.Store.Path, "from-file.db"},
		{"numbers.ttl", cfg.Numbers.TTL, 90 * time.Second},
		{"numbers.pools", cfg.Numbers.Pools, map[string][]string{"US": {"+12025550100-+12025550101", "+12025550109"}, "GB": {"+447700900000"}}},
		{"auth.credentials", cfg.Auth.Credentials, []Credential{{ID: "a", Secret: "sa"}, {ID: "b", Secret: "s:b"}}},
		{"sip.listen", cfg.SIP.Listen, []string{"udp://127.0.0.1:5080", "tcp://127.0.0.1:5080"}},
		{"sip.external_host", cfg.SIP.ExternalHost, "127.0.0.1:5080"},
		{"sip.trusted_cidrs", cfg.SIP.TrustedCIDRs, []string{"10.0.0.0/8"}},
		{"sip.digest", cfg.SIP.Digest, DigestConfig{Realm: "r", Users: []DigestUser{{Username: "u", Password: "p"}}}},
		{"sip.transfer_header", cfg.SIP.TransferHeader, "X-Id"},
		{"media.rtp_ports", cfg.Media.RTPPorts, "30000-30099"},
		{"media.codecs", cfg.Media.codecs(), []media.Codec{media.PCMA, media.G722}},
		{"media.comfort_noise", cfg.Media.ComfortNoise, false},
		{"agent.mode", cfg.Agent.Mode, "websocket"},
		{"agent.url", cfg.Agent.URL, "wss://agent.example/ws"},
		{"log.level", cfg.Log.Level, "debug"},
		{"drain.timeout", cfg.Drain.Timeout, time.Minute},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestEveryKeyHasAnEnvFormat(t *testing.T) {
	cfg := Defaults()
	keys := configKeys(&cfg)
	if len(keys) < 20 {
		t.Fatalf("only %d keys found", len(keys))
	}
	for _, k := range keys {
		if err := setFromEnv(k.field, "1"); err != nil && strings.Contains(err.Error(), "no environment format") {
			t.Errorf("%s: %v", k.Env, err)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{name: "bad duration in file", yaml: "numbers:\n  ttl: ten minutes\n", want: []string{"time.Duration"}},
		{name: "bad duration in env", env: map[string]string{"HANDOFF_NUMBERS_TTL": "10x"}, want: []string{"HANDOFF_NUMBERS_TTL", "not a duration"}},
		{name: "zero ttl", yaml: "numbers:\n  ttl: 0s\n", want: []string{"numbers.ttl", "positive"}},
		{name: "bad CIDR", yaml: "sip:\n  trusted_cidrs: [10.0.0.0/33]\n", want: []string{"sip.trusted_cidrs[0]", "CIDR"}},
		{name: "bad range", yaml: "numbers:\n  pools:\n    US: [\"+12025550199-+12025550100\"]\n", want: []string{"numbers.pools", "backwards"}},
		{name: "bad number", yaml: "numbers:\n  pools:\n    US: [\"555-CALL\"]\n", want: []string{"numbers.pools"}},
		{name: "bad country", yaml: "numbers:\n  pools:\n    usa: [\"+12025550100\"]\n", want: []string{"numbers.pools", "alpha-2"}},
		{name: "empty credentials", yaml: "auth:\n  credentials: []\n", want: []string{"auth.credentials", "at least one"}},
		{name: "credential without secret", yaml: "auth:\n  credentials: [{id: a}]\n", want: []string{"auth.credentials[0]", "no secret"}},
		{name: "duplicate credential", yaml: "auth:\n  credentials: [{id: a, secret: x}, {id: a, secret: y}]\n", want: []string{"configured twice"}},
		{name: "secret and secret_file", yaml: "auth:\n  credentials: [{id: a, secret: x, secret_file: /nope}]\n", want: []string{"not both"}},
		{name: "missing secret_file", yaml: "auth:\n  credentials: [{id: a, secret_file: /does/not/exist}]\n", want: []string{"secret_file"}},
		{name: "bad env credentials", env: map[string]string{"HANDOFF_AUTH_CREDENTIALS": "nocolon"}, want: []string{"id:secret"}},
		{name: "bad listen", yaml: "http:\n  listen: localhost\n", want: []string{"http.listen"}},
		{name: "bad sip listen", yaml: "sip:\n  listen: [\"sctp://127.0.0.1:5060\"]\n", want: []string{"sip.listen[0]"}},
		{name: "digest without realm", yaml: "sip:\n  digest:\n    users: [{username: u, password: p}]\n", want: []string{"sip.digest.realm"}},
		{name: "nobody allowed", yaml: "sip:\n  trusted_cidrs: []\n", want: []string{"no INVITE could ever be accepted"}},
		{name: "bad rtp ports", yaml: "media:\n  rtp_ports: \"30000\"\n", want: []string{"media.rtp_ports"}},
		{name: "low rtp ports", yaml: "media:\n  rtp_ports: \"100-200\"\n", want: []string{"media.rtp_ports", "1024"}},
		{name: "bad bind", yaml: "media:\n  bind: everywhere\n", want: []string{"media.bind"}},
		{name: "unknown codec", yaml: "media:\n  codecs: [G722, opus]\n", want: []string{"media.codecs", `"opus"`}},
		{name: "codec twice", env: map[string]string{"HANDOFF_MEDIA_CODECS": "PCMU,pcmu"}, want: []string{"media.codecs", "twice"}},
		{name: "no codec", yaml: "media:\n  codecs: []\n", want: []string{"media.codecs"}},
		{name: "websocket without url", yaml: "agent:\n  mode: websocket\n", want: []string{"agent.url"}},
		{name: "bad agent mode", yaml: "agent:\n  mode: gpt\n", want: []string{"agent.mode"}},
		{name: "bad log", yaml: "log:\n  level: loud\n  format: xml\n", want: []string{"log.level", "log.format"}},
		{name: "bad header", yaml: "sip:\n  transfer_header: \"X Id\"\n", want: []string{"sip.transfer_header"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.yaml != "" {
				path = writeFile(t, "c.yaml", c.yaml)
			}
			_, err := Load(path, envMap(c.env))
			if err == nil {
				t.Fatal("Load accepted it")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), noEnv); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestExternalHostDerivation(t *testing.T) {
	for listen, want := range map[string]string{
		"udp://[::1]:5062":    "[::1]:5062",
		"tcp://10.1.2.3:5070": "10.1.2.3:5070",
	} {
		cfg, err := Load("", envMap(map[string]string{"HANDOFF_SIP_LISTEN": listen}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.SIP.ExternalHost != want {
			t.Errorf("%s: external_host %q, want %q", listen, cfg.SIP.ExternalHost, want)
		}
	}
	// An unspecified address is not advertised as such.
	cfg, err := Load("", envMap(map[string]string{"HANDOFF_SIP_LISTEN": "udp://0.0.0.0:5060"}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.SIP.ExternalHost, "0.0.0.0") {
		t.Errorf("external_host %q advertises the unspecified address", cfg.SIP.ExternalHost)
	}
	// An IPv6 host without a port gets brackets and the listen port.
	cfg, err = Load("", envMap(map[string]string{"HANDOFF_SIP_EXTERNAL_HOST": "2001:db8::1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SIP.ExternalHost != "[2001:db8::1]:5060" {
		t.Errorf("external_host %q", cfg.SIP.ExternalHost)
	}
}

// A file's media.codecs replaces the default list rather than adding to it.
func TestCodecsFromFile(t *testing.T) {
	cfg, err := Load(writeFile(t, "c.yaml", "media:\n  codecs: [PCMU]\n  comfort_noise: false\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Media.codecs(); !reflect.DeepEqual(got, []media.Codec{media.PCMU}) || cfg.Media.ComfortNoise {
		t.Fatalf("codecs %v, comfort noise %v", got, cfg.Media.ComfortNoise)
	}
}

// The keys a reload applies, named from the Config's fields, are the ones
// docs/operations.md#reload lists; every other key needs a restart.
func TestReloadableKeys(t *testing.T) {
	want := []string{"auth.credentials", "numbers.pools", "log.level", "log.sip_trace",
		"webhooks.default_url", "webhooks.default_secret", "webhooks.default_secret_file", "webhooks.allow_insecure",
		"sip.limits.max_calls", "sip.limits.max_cps", "sip.limits.per_source_max_calls", "sip.limits.per_source_max_cps",
		"sip.limits.trunks", "sip.limits.retry_after", "sip.overload.max_pending", "sip.overload.max_latency",
		"sip.overload.max_queue_delay"}
	var got []string
	for _, k := range configKeys(&Config{}) {
		if reloadKeys.reloadable(k.Key) {
			got = append(got, k.Key)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("reloadable keys %v, want %v", got, want)
	}
}
