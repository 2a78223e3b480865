package main

// Tests of the real binary: built once with go build, run as a subprocess on
// loopback, driven over HTTP, killed with SIGKILL or drained with SIGTERM.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// handoffBinary builds the command once per test run (with the race
// detector when the tests have it).
func handoffBinary(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "github.com/handoff/handoff/cmd/handoff")
}

// Generous limits for a process to come up or go down; reaching one is a
// failure, not a measured threshold.
const (
	startLimit = 60 * time.Second
	stopLimit  = 60 * time.Second
)

// proc is one running handoff process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	logs *logSink
	done chan struct{}
	err  error // from Wait, valid once done is closed
}

// logSink collects the process's log lines and reports the HTTP address.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	addr    chan string
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(b)
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := s.partial[:i]
		s.partial = s.partial[i+1:]
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "http listening" {
			select {
			case s.addr <- rec.Addr:
			default:
			}
		}
	}
	return len(b), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startHandoff runs the binary with args in dir (if not empty) with extra
// environment variables, waits until /readyz answers 200 and returns it.
func startHandoff(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(handoffBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(testenv.CleanEnv(), env...)
	p := &proc{t: t, cmd: cmd, logs: &logSink{addr: make(chan string, 1)}, done: make(chan struct{})}
	cmd.Stdout = p.logs
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("handoff (pid %d) log:\n%s", cmd.Process.Pid, p.logs)
		}
	})

	select {
	case addr := <-p.logs.addr:
		p.base = "http://" + addr
	case <-p.done:
		t.Fatalf("handoff exited during start-up (%v):\n%s", p.err, p.logs)
	case <-time.After(startLimit):
		t.Fatalf("handoff did not log its HTTP address:\n%s", p.logs)
	}
	if err := testenv.WaitReady(http.DefaultClient, p.base+"/readyz", p.done, startLimit); err != nil {
		t.Fatalf("handoff %v:\n%s", err, p.logs)
	}
	return p
}

// kill ends the process with SIGKILL: no drain, no store close.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(stopLimit):
		p.t.Fatalf("handoff did not exit:\n%s", p.logs)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

type cred struct{ id, secret string }

var (
	ivr    = cred{"ivr", "ivr-secret-9f8e7d"}
	other  = cred{"other", "other-secret-1a2b3c"}
	reader = cred{"reader", "reader-secret-4d5e6f"}
)

// call does one API request and decodes the JSON answer.
func (p *proc) call(method, path string, c cred, body any) (int, map[string]any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("asapp-api-id", c.id)
	req.Header.Set("asapp-api-secret", c.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			p.t.Fatalf("%s %s: status %d, body not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

const transfersPath = "/generativeagent/v1/call-transfers"

func phoneTransfer(id string) map[string]any {
	return map[string]any{
		"id": id, "externalConversationId": "conv-" + id, "type": "PHONE_NUMBER",
		"phoneNumber":  map[string]any{"country": "US"},
		"inputContext": map[string]any{"taskName": "Welcome", "inputVariables": map[string]any{"account": id}},
	}
}

func sipTransfer(id string, sip map[string]any) map[string]any {
	body := map[string]any{"id": id, "externalConversationId": "conv-" + id, "type": "SIP"}
	if sip != nil {
		body["sip"] = sip
	}
	return body
}

func (p *proc) create(c cred, body map[string]any) map[string]any {
	p.t.Helper()
	status, out := p.call(http.MethodPost, transfersPath, c, body)
	if status != http.StatusOK {
		p.t.Fatalf("create %v: status %d: %v", body["id"], status, out)
	}
	return out
}

func (p *proc) get(c cred, id string) (int, map[string]any) {
	p.t.Helper()
	return p.call(http.MethodGet, transfersPath+"/"+id, c, nil)
}

// str reads a string at a dotted path of a decoded JSON object.
func str(m map[string]any, path string) string {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = obj[k]
	}
	s, _ := cur.(string)
	return s
}

func errCode(m map[string]any) string { return str(m, "error.code") }

// testConfig writes a config file for a process in dir (store under dir).
func testConfig(t *testing.T, dir, numbers string) string {
	t.Helper()
	path := filepath.Join(dir, "handoff.yaml")
	cfg := fmt.Sprintf(`
http:
  listen: 127.0.0.1:0
auth:
  credentials:
    - {id: %s, secret: %s}
    - {id: %s, secret: %s}
    - {id: %s, secret: %s, read_only: true}
numbers:
%s
store:
  path: %s
sip:
  listen: [udp://127.0.0.1:0, tcp://127.0.0.1:0]
  external_host: 127.0.0.1:5999
log:
  level: debug
`, ivr.id, ivr.secret, other.id, other.secret, reader.id, reader.secret, numbers, filepath.Join(dir, "data", "handoff.db"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertNoSecrets(t *testing.T, logs string) {
	t.Helper()
	for _, s := range []string{ivr.secret, other.secret, reader.secret, devCredentialSecret, "digest-pw-77"} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%q) appears in the logs", s)
		}
	}
}

// A 200 means durable: after SIGKILL every acknowledged transfer and every
// lease is still there, so no number is ever leased twice.
func TestCrashRestartKeepsTransfersAndLeases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, `
  ttl: 10m
  quarantine: 1h
  pools:
    US: ["+19995550100-+19995550104"]`)

	p := startHandoff(t, "", nil, "-config", cfgPath)
	created := map[string]map[string]any{}
	leased := map[string]string{} // number -> transfer id
	for _, id := range []string{"pn-1", "pn-2", "pn-3"} {
		out := p.create(ivr, phoneTransfer(id))
		n := str(out, "phoneNumber.transferNumber")
		if n == "" || leased[n] != "" {
			t.Fatalf("%s: number %q (already leased to %q)", id, n, leased[n])
		}
		leased[n] = id
		created[id] = out
	}
	created["sip-bye"] = p.create(ivr, sipTransfer("sip-bye", map[string]any{}))
	created["sip-invite"] = p.create(ivr, sipTransfer("sip-invite", map[string]any{
		"returnTransferType": "INVITE", "returnUri": "sip:back@ivr.example.com:5060",
		"returnInviteAuthentication": map[string]any{"username": "ivr-user", "password": "digest-pw-77"},
	}))
	if got := str(created["sip-bye"], "sip.transferUri"); got != "sip:sip-bye@127.0.0.1:5999" {
		t.Errorf("transferUri = %q, want sip:sip-bye@127.0.0.1:5999", got)
	}
	before := map[string]map[string]any{}
	for id := range created {
		status, out := p.get(ivr, id)
		if status != http.StatusOK {
			t.Fatalf("GET %s before the crash: %d %v", id, status, out)
		}
		before[id] = out
	}
	p.kill()

	p = startHandoff(t, "", nil, "-config", cfgPath)
	for id, want := range before {
		status, got := p.get(ivr, id)
		if status != http.StatusOK {
			t.Errorf("GET %s after the crash: %d %v", id, status, got)
			continue
		}
		for _, field := range []string{"id", "externalConversationId", "type", "status", "createdAt",
			"phoneNumber.transferNumber", "phoneNumber.expiresAt", "sip.transferUri", "sip.expiresAt",
			"sip.returnTransferType", "sip.returnUri", "sip.returnInviteAuthentication.username", "inputContext.taskName"} {
			if str(got, field) != str(want, field) {
				t.Errorf("%s.%s = %q after the crash, %q before", id, field, str(got, field), str(want, field))
			}
		}
		if str(got, "status") != "ACTIVE" {
			t.Errorf("%s: status %q, want ACTIVE", id, str(got, "status"))
		}
		if status, _ := p.get(other, id); status != http.StatusNotFound {
			t.Errorf("%s: another credential got %d, want 404", id, status)
		}
	}
	if strings.Contains(fmt.Sprint(before["sip-invite"]), "digest-pw-77") {
		t.Error("the return INVITE password is returned by GET")
	}

	// A read-only credential may not create.
	if status, out := p.call(http.MethodPost, transfersPath, reader, phoneTransfer("ro-1")); status != http.StatusForbidden || errCode(out) != "403-01" {
		t.Errorf("create with a read-only credential: %d %v, want 403-01", status, out)
	}

	// Replaying an acknowledged create after the crash returns the same lease.
	if out := p.create(ivr, phoneTransfer("pn-1")); str(out, "phoneNumber.transferNumber") != str(created["pn-1"], "phoneNumber.transferNumber") {
		t.Errorf("replayed pn-1 got %q, want %q", str(out, "phoneNumber.transferNumber"), str(created["pn-1"], "phoneNumber.transferNumber"))
	}

	// The pool has 5 numbers and 3 are leased: exactly 2 more, all new.
	for i := 4; ; i++ {
		id := fmt.Sprintf("pn-%d", i)
		status, out := p.call(http.MethodPost, transfersPath, ivr, phoneTransfer(id))
		if status == http.StatusServiceUnavailable {
			if errCode(out) != "503-01" {
				t.Errorf("pool exhausted: code %q, want 503-01", errCode(out))
			}
			break
		}
		if status != http.StatusOK {
			t.Fatalf("create %s: %d %v", id, status, out)
		}
		n := str(out, "phoneNumber.transferNumber")
		if prev := leased[n]; prev != "" {
			t.Fatalf("%s leased %s, which %s still holds", id, n, prev)
		}
		leased[n] = id
		if i > 10 {
			t.Fatal("the pool never ran out")
		}
	}
	if len(leased) != 5 {
		t.Errorf("%d numbers leased in all, want the whole pool of 5: %v", len(leased), leased)
	}

	// A second crash changes nothing: the pool stays exhausted.
	p.kill()
	p = startHandoff(t, "", nil, "-config", cfgPath)
	if status, out := p.call(http.MethodPost, transfersPath, ivr, phoneTransfer("pn-after")); status != http.StatusServiceUnavailable {
		t.Errorf("create after the second crash: %d %v, want 503 (pool exhausted)", status, out)
	}
	assertNoSecrets(t, p.logs.String())
}

// Expiry is honoured across a crash: the transfers read EXPIRED after their
// ttl, the sweeper stores it, and the number stays in quarantine.
func TestExpiryHonouredAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, `
  ttl: 2s
  quarantine: 1h
  pools:
    US: ["+19995550100"]`)

	p := startHandoff(t, "", nil, "-config", cfgPath)
	pn := p.create(ivr, phoneTransfer("exp-pn"))
	p.create(ivr, sipTransfer("exp-sip", nil))
	p.kill()

	p = startHandoff(t, "", nil, "-config", cfgPath)
	deadline := time.Now().Add(time.Minute)
	for _, id := range []string{"exp-pn", "exp-sip"} {
		for {
			status, out := p.get(ivr, id)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d %v", id, status, out)
			}
			if str(out, "status") == "EXPIRED" {
				break
			}
			if str(out, "status") != "ACTIVE" {
				t.Fatalf("%s: status %q, want ACTIVE then EXPIRED", id, str(out, "status"))
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never expired: %v", id, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_, out := p.get(ivr, "exp-pn")
	if str(out, "phoneNumber.transferNumber") != str(pn, "phoneNumber.transferNumber") {
		t.Errorf("expired transfer lost its number: %v", out)
	}

	// The sweeper stores the expiry (visible in the stored-status gauge).
	for !p.metric(`handoff_transfers{status="EXPIRED"} 2`) {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper never stored EXPIRED")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The only number is in quarantine, so it is not leased again.
	if status, out := p.call(http.MethodPost, transfersPath, ivr, phoneTransfer("exp-next")); status != http.StatusServiceUnavailable {
		t.Errorf("create while the only number is in quarantine: %d %v, want 503", status, out)
	}
}

// SIGTERM drains: /readyz turns 503, creates are refused while reads work,
// the process exits 0 with the store closed cleanly.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, `
  pools:
    US: ["+19995550100-+19995550109"]`)
	// drain.delay keeps the process serving (not ready) long enough to watch.
	env := []string{"HANDOFF_DRAIN_DELAY=5s"}
	p := startHandoff(t, "", env, "-config", cfgPath)
	p.create(ivr, phoneTransfer("term-1"))

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			t.Fatalf("the process stopped serving before /readyz reported 503: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, out := p.call(http.MethodPost, transfersPath, ivr, phoneTransfer("term-2")); status != http.StatusServiceUnavailable || errCode(out) != "503-01" {
		t.Errorf("create while draining: %d %v, want 503-01", status, out)
	}
	if status, _ := p.get(ivr, "term-1"); status != http.StatusOK {
		t.Errorf("GET while draining: %d, want 200", status)
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0:\n%s", code, p.logs)
	}
	logs := p.logs.String()
	for _, want := range []string{"signal received: draining", "calls drained", "http server stopped", "store closed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	p = startHandoff(t, "", nil, "-config", cfgPath)
	if status, _ := p.get(ivr, "term-1"); status != http.StatusOK {
		t.Errorf("GET after a clean restart: %d", status)
	}
	if status, _ := p.get(ivr, "term-2"); status != http.StatusNotFound {
		t.Errorf("the transfer refused while draining exists: %d", status)
	}
}

// With no -config the binary runs on the built-in defaults: store under
// ./data, the dev credential (with a warning, and never its secret in the
// log), the default US test pool.
func TestStartsOnBuiltInDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Only the addresses move off the fixed default ports, so tests can run in parallel.
	env := []string{"HANDOFF_HTTP_LISTEN=127.0.0.1:0", "HANDOFF_SIP_LISTEN=udp://127.0.0.1:0,tcp://127.0.0.1:0"}
	p := startHandoff(t, dir, env)
	out := p.create(cred{devCredentialID, devCredentialSecret}, phoneTransfer("dflt-1"))
	if n := str(out, "phoneNumber.transferNumber"); !strings.HasPrefix(n, "+199955501") {
		t.Errorf("number %q not from the default pool", n)
	}
	out = p.create(cred{devCredentialID, devCredentialSecret}, sipTransfer("dflt-2", nil))
	if !strings.HasPrefix(str(out, "sip.transferUri"), "sip:dflt-2@127.0.0.1:") {
		t.Errorf("transferUri %q", str(out, "sip.transferUri"))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "handoff.db")); err != nil {
		t.Errorf("store not under ./data: %v", err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d after SIGINT", code)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, "built-in development credential") {
		t.Error("no warning about the dev credential")
	}
	assertNoSecrets(t, logs)
	if want := wantProcs(); !strings.Contains(logs, fmt.Sprintf(`"msg":"handoff started","gomaxprocs":%d,"transaction_linger":"5s"`, want)) {
		t.Errorf("the started process does not run %d Go processors (tuneProcs in main) with sipgo's transactions kept 5s:\n%s", want, logs)
	}
	// Every line is a JSON object.
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	path := writeFile(t, "bad.yaml", "numbers:\n  tll: 1m\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-config", path}, noEnv, &stdout, &stderr); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), "tll") {
		t.Errorf("stderr does not name the bad key: %q", stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-config", filepath.Join("..", "..", "configs", "handoff.yaml"), "-check"}, noEnv, &stdout, &stderr); code != exitOK {
		t.Errorf("-check on the example config: exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"-nope"}, noEnv, &stdout, &stderr); code != exitUsage {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code := run([]string{"extra"}, noEnv, &stdout, &stderr); code != exitUsage {
		t.Errorf("stray argument: exit %d", code)
	}
}

// wantProcs is the GOMAXPROCS a handoff started from this test's
// environment runs: procsPerCPU per CPU, unless GOMAXPROCS is set or a CPU
// quota lowered the runtime's default (this process's is the same).
func wantProcs() int {
	if v, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil {
		return v
	}
	if n := runtime.GOMAXPROCS(0); n < runtime.NumCPU() {
		return n
	}
	return procsPerCPU * runtime.NumCPU()
}
