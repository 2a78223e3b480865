package main

// Subprocess tests of the operational behaviour: SIGHUP reload, and a call
// that survives the start of a SIGTERM drain.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
)

// logLines returns the process's JSON log records with this msg.
func (p *proc) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLog waits until the process has logged a line with msg and returns it.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(startLimit)
	for {
		if recs := p.logLines(msg); len(recs) > 0 {
			return recs[len(recs)-1]
		}
		select {
		case <-p.done:
			p.t.Fatalf("handoff exited before logging %q:\n%s", msg, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("handoff never logged %q:\n%s", msg, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// metric reports whether /metrics has this sample line, as the text
// format writes it: name{label="value",...} value.
func (p *proc) metric(line string) bool {
	p.t.Helper()
	sample, value, _ := strings.Cut(line, " ")
	want, err := strconv.ParseFloat(value, 64)
	if err != nil {
		p.t.Fatalf("sample line %q: %v", line, err)
	}
	name, labels := testenv.SplitSample(sample)
	got, n := testenv.MetricSeries(p.t, testenv.Scrape(p.t, http.DefaultClient, p.base+"/metrics"), name, labels...)
	return n == 1 && got == want
}

func writeReloadConfig(t *testing.T, path, dir, creds, pools, level, ackTimeout string) {
	t.Helper()
	cfg := fmt.Sprintf(`
http:
  listen: 127.0.0.1:0
auth:
  credentials:
%s
numbers:
  pools:
%s
store:
  path: %s
sip:
  listen: [udp://127.0.0.1:0]
  external_host: 127.0.0.1:5999
  ack_timeout: %s
log:
  level: %s
`, creds, pools, filepath.Join(dir, "data", "handoff.db"), ackTimeout, level)
	// Write then rename, as configuration management does, so the process
	// never reads a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP applies new credentials (the old ones get 401, a rotated secret
// read from secret_file works), new number pools (a new country serves) and
// the log level, warns about keys that need a restart, and a broken file
// changes nothing.
func TestSIGHUPReloadsCredentialsPoolsAndLevel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "handoff.yaml")
	writeReloadConfig(t, path, dir,
		credLine(ivr)+"\n"+credLine(other),
		`    US: ["+19995550100-+19995550104"]`, "info", "32s")
	p := startHandoff(t, "", nil, "-config", path)
	p.create(ivr, phoneTransfer("hup-1"))
	gb := phoneTransfer("hup-gb")
	gb["phoneNumber"] = map[string]any{"country": "GB"}
	if status, out := p.call(http.MethodPost, transfersPath, ivr, gb); status != http.StatusUnprocessableEntity {
		t.Fatalf("GB before the reload: %d %v, want 422 (no pool)", status, out)
	}

	// ivr's secret is rotated (now from a file), other is removed, fresh is new.
	rotated := cred{ivr.id, "ivr-rotated-secret-5c6d"}
	fresh := cred{"fresh", "fresh-secret-8e9f0a"}
	secretFile := filepath.Join(dir, "ivr.secret")
	if err := os.WriteFile(secretFile, []byte(rotated.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeReloadConfig(t, path, dir,
		fmt.Sprintf("    - {id: %s, secret_file: %s}\n    - {id: %s, secret: %s}", ivr.id, secretFile, fresh.id, fresh.secret),
		"    US: [\"+19995550100-+19995550104\"]\n    GB: [\"+447700900100-+447700900101\"]", "warn", "10s")
	p.signal(syscall.SIGHUP)
	rec := p.waitLog("configuration reloaded")
	if applied := fmt.Sprint(rec["applied"]); applied != "[auth.credentials numbers.pools log.level]" {
		t.Errorf("applied = %s", applied)
	}
	if keys := fmt.Sprint(p.waitLog("configuration changes need a restart to take effect; they are ignored until then")["keys"]); keys != "[sip.ack_timeout]" {
		t.Errorf("restart keys = %s", keys)
	}

	if status, out := p.get(ivr, "hup-1"); status != http.StatusUnauthorized || errCode(out) != "401-01" {
		t.Errorf("old secret after the reload: %d %v, want 401-01", status, out)
	}
	if status, out := p.get(other, "hup-1"); status != http.StatusUnauthorized {
		t.Errorf("removed credential after the reload: %d %v, want 401", status, out)
	}
	if status, out := p.get(rotated, "hup-1"); status != http.StatusOK {
		t.Errorf("rotated secret, same id: %d %v, want 200 (its transfer)", status, out)
	}
	out := p.create(fresh, gb)
	if n := str(out, "phoneNumber.transferNumber"); !strings.HasPrefix(n, "+4477009001") {
		t.Errorf("GB number after the reload: %q", n)
	}
	// log.level warn: the info line of a create is no longer written.
	p.create(rotated, phoneTransfer("hup-2"))
	for _, r := range p.logLines("transfer created") {
		if r["transfer_id"] == "hup-2" {
			t.Error("an info line was logged after log.level became warn")
		}
	}
	if !p.metric(`handoff_config_reloads_total{result="success"} 1`) {
		t.Error("handoff_config_reloads_total{result=\"success\"} is not 1")
	}

	// A broken file is refused as a whole.
	if err := os.WriteFile(path, []byte("auth: {credentials: []}\nnumbers: {ttl: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reload failed; nothing changed")
	if status, _ := p.get(rotated, "hup-1"); status != http.StatusOK {
		t.Errorf("after a failed reload: %d, want 200", status)
	}
	if !p.metric(`handoff_config_reloads_total{result="failure"} 1`) {
		t.Error("handoff_config_reloads_total{result=\"failure\"} is not 1")
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
	assertNoSecrets(t, p.logs.String())
	for _, s := range []string{rotated.secret, fresh.secret} {
		if strings.Contains(p.logs.String(), s) {
			t.Errorf("secret %q in the log", s)
		}
	}
}

// writeCallConfig writes the configuration of a process that takes calls:
// the ivr credential, a store in a temporary directory, SIP on a free
// loopback UDP port (returned), the RTP range rtpPorts, and extra YAML.
func writeCallConfig(t *testing.T, rtpPorts, extra string) (path string, sipPort int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "handoff.yaml")
	return path, callConfig{rtpPorts: rtpPorts, creds: []string{credLine(ivr)}, extra: extra}.write(t, path)
}

// credLine is an auth.credentials entry.
func credLine(c cred) string { return fmt.Sprintf("    - {id: %s, secret: %s}", c.id, c.secret) }

// callConfig is the configuration of a process that takes calls.
type callConfig struct {
	rtpPorts string
	sipPort  int      // 0: a free one
	creds    []string // auth.credentials lines (credLine, webhookLine)
	sip      string   // more keys of the sip section, indented
	logLevel string   // "": the default
	extra    string   // more top-level YAML
}

// write writes c to path (the store beside it) and returns the SIP port.
func (c callConfig) write(t *testing.T, path string) int {
	t.Helper()
	if c.sipPort == 0 {
		c.sipPort = testenv.FreeUDPPort(t)
	}
	logSection := ""
	if c.logLevel != "" {
		logSection = "log:\n  level: " + c.logLevel + "\n"
	}
	cfg := fmt.Sprintf(`
http:
  listen: 127.0.0.1:0
auth:
  credentials:
%s
store:
  path: %s
sip:
  listen: [udp://127.0.0.1:%d]
%s
media:
  rtp_ports: %s
%s%s`, strings.Join(c.creds, "\n"), filepath.Join(filepath.Dir(path), "data", "handoff.db"), c.sipPort, c.sip, c.rtpPorts, logSection, c.extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.sipPort
}

// connect places an answered call from phone to the SIP transfer created,
// checks audio comes back over that many 20 ms frames, and waits until the
// transfer is ONGOING.
func (p *proc) connect(t *testing.T, phone *siptest.Phone, created map[string]any, frames int) *siptest.Call {
	t.Helper()
	call := phone.MustAnswer(str(created, "sip.transferUri"), phone.Offer("0"))
	if got := exchangeAudio(call, frames); got == 0 {
		t.Fatal("no RTP from handoff")
	}
	id := str(created, "id")
	for deadline := time.Now().Add(startLimit); ; {
		if _, out := p.get(ivr, id); str(out, "status") == "ONGOING" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transfer %s never became ONGOING", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return call
}

// options sends an out-of-dialog OPTIONS from phone to port and returns
// the answer.
func options(phone *siptest.Phone, port int) *sip.Response {
	phone.T.Helper()
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: port})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := phone.Client.Do(ctx, req)
	if err != nil {
		phone.T.Fatalf("OPTIONS: %v", err)
	}
	return res
}

// exchangeAudio sends frames of PCMU and counts the RTP packets received
// back (the loopback agent's greeting and echo).
func exchangeAudio(call *siptest.Call, frames int) int {
	got := 0
	payload := bytes.Repeat([]byte{0x55}, 160)
	for range frames {
		call.SendAudio(payload)
		call.TryReadRTP(20*time.Millisecond, func(*rtp.Packet) bool { got++; return false })
	}
	return got
}

// A call in progress survives the start of a drain: after SIGTERM, /readyz
// and SIP OPTIONS answer 503 (with Retry-After), a new INVITE gets 503, the
// call in progress carries on with media both ways until the caller hangs
// up, and the process then exits 0 with the transfer COMPLETED by the
// caller's hang-up.
func TestCallSurvivesDrain(t *testing.T) {
	t.Parallel()
	cfgPath, sipPort := writeCallConfig(t, "43000-43099", "drain:\n  timeout: 60s\n")
	p := startHandoff(t, "", nil, "-config", cfgPath)
	c := siptest.NewPhone(t, "127.0.0.1")
	if res := options(c, sipPort); res.StatusCode != 200 {
		t.Fatalf("OPTIONS before the drain: %d", res.StatusCode)
	}

	created := p.create(ivr, sipTransfer("drain-call", nil))
	call := p.connect(t, c, created, 25)

	p.signal(syscall.SIGTERM)
	p.waitLog("signal received: draining")
	res := options(c, sipPort)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Errorf("OPTIONS while draining: %d (Retry-After %v), want 503 with Retry-After", res.StatusCode, res.GetHeader("Retry-After"))
	}
	if resp, err := http.Get(p.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	if !p.metric("handoff_draining 1") {
		t.Error("handoff_draining is not 1 while draining")
	}
	// A new call is refused (the transfer was created before the drain).
	p2 := siptest.NewPhone(t, "127.0.0.1")
	if _, err := p2.Invite("sip:drain-call-2@127.0.0.1:"+fmt.Sprint(sipPort), p2.Offer("0"), sipgo.AnswerOptions{}); err == nil {
		t.Error("a new INVITE was answered while draining")
	} else if siptest.StatusOf(err) != 503 {
		t.Errorf("new INVITE while draining: %v, want 503", err)
	}

	// The call in progress carries on: media both ways, still ONGOING.
	if got := exchangeAudio(call, 50); got == 0 {
		t.Error("no RTP from handoff during the drain")
	}
	if _, out := p.get(ivr, "drain-call"); str(out, "status") != "ONGOING" {
		t.Errorf("transfer during the drain: %v", out)
	}
	select {
	case <-p.done:
		t.Fatal("the process exited while a call was in progress")
	default:
	}

	// The caller hangs up; the drain completes and the process exits 0.
	call.Hangup()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, p.logs)
	}
	if len(p.logLines("calls drained")) != 1 || len(p.logLines("calls did not drain in time; ended them")) != 0 {
		t.Errorf("the drain did not end with the call:\n%s", p.logs)
	}

	p = startHandoff(t, "", []string{fmt.Sprintf("HANDOFF_SIP_LISTEN=udp://127.0.0.1:%d", testenv.FreeUDPPort(t))}, "-config", cfgPath)
	_, out := p.get(ivr, "drain-call")
	if str(out, "status") != "COMPLETED" || str(out, "endReason") != "caller_hangup" {
		t.Errorf("after the drain: %v, want COMPLETED by the caller's hang-up", out)
	}
}

// POST /admin/v1/reload does what SIGHUP does, for admin credentials only,
// and says why when the new configuration is invalid.
func TestReloadByAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "handoff.yaml")
	admin := cred{"ops", "ops-secret-1a2b3c"}
	fresh := cred{"fresh", "fresh-secret-4d5e6f"}
	adminLine := fmt.Sprintf("    - {id: %s, secret: %s, admin: true}", admin.id, admin.secret)
	writeReloadConfig(t, path, dir, adminLine+"\n"+credLine(ivr),
		`    US: ["+19995550100-+19995550104"]`, "info", "32s")
	p := startHandoff(t, "", nil, "-config", path)
	writeReloadConfig(t, path, dir, adminLine+"\n"+credLine(fresh),
		`    US: ["+19995550100-+19995550104"]`, "info", "32s")

	if status, out := p.call(http.MethodPost, "/admin/v1/reload", ivr, nil); status != http.StatusForbidden || errCode(out) != "403-01" {
		t.Fatalf("reload by a non-admin: %d %v", status, out)
	}
	if status, out := p.call(http.MethodPost, "/admin/v1/reload", admin, nil); status != http.StatusOK || str(out, "status") != "reloaded" {
		t.Fatalf("reload by the admin: %d %v", status, out)
	}
	p.create(fresh, phoneTransfer("api-reload"))
	if status, _ := p.get(ivr, "api-reload"); status != http.StatusUnauthorized {
		t.Fatalf("removed credential after the reload: %d, want 401", status)
	}
	// A broken file: 422-03 with the reason, and nothing changes.
	writeReloadConfig(t, path, dir, adminLine, `    US: ["+1"]`, "info", "32s")
	status, out := p.call(http.MethodPost, "/admin/v1/reload", admin, nil)
	if status != http.StatusUnprocessableEntity || errCode(out) != "422-03" || !strings.Contains(str(out, "error.message"), "numbers.pools") {
		t.Fatalf("reload of a broken file: %d %v", status, out)
	}
	if status, _ := p.get(fresh, "api-reload"); status != http.StatusOK {
		t.Fatalf("a failed reload changed the credentials: %d", status)
	}
}
