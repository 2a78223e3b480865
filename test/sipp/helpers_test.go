package sipp_test

// Shared by the SIPp tests: the handoff process (build, config, start,
// API, metrics, stop) and the SIPp subprocesses (start, wait, verdict).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/internal/testenv"
)

// needSIPp returns the sipp binary, or skips (fails under CI) without it.
func needSIPp(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "sipp", "apt-get install -y sip-tester")
}

// handoff is one running handoff process and its working directory.
type handoff struct {
	dir     string
	http    string // http://127.0.0.1:port
	sipPort int
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	log     string // path of its stderr
	client  *http.Client
}

// handoffOptions adjust the configuration startHandoff writes.
type handoffOptions struct {
	logLevel string // default info
	sipExtra string // YAML lines appended to the sip: section (indented two spaces)
	extra    string // top-level YAML sections appended to the file (agent:, ...)
	agentURL string // a WebSocket agent (agent.mode websocket); "": the loopback agent
}

func startHandoff(t *testing.T) *handoff { return startHandoffWith(t, handoffOptions{}) }

func startHandoffWith(t *testing.T, o handoffOptions) *handoff {
	t.Helper()
	dir := t.TempDir()
	bin := testenv.Build(t, "github.com/handoff/handoff/cmd/handoff")
	if o.logLevel == "" {
		o.logLevel = "info"
	}

	h := &handoff{
		dir:     dir,
		sipPort: testenv.FreePort(t, true),
		log:     filepath.Join(dir, "handoff.log"),
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	httpPort := testenv.FreePort(t, false)
	h.http = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	cfg := fmt.Sprintf(`http:
  listen: 127.0.0.1:%[1]d
  rate_limit: -1
numbers:
  quarantine: 2s
  pools:
    US:
      - +19995550100-+19995550399
store:
  path: %[2]s
sip:
  listen:
    - udp://127.0.0.1:%[3]d
    - tcp://127.0.0.1:%[3]d
%[5]smedia:
  rtp_ports: 30000-31999
  bind: 127.0.0.1
log:
  level: %[4]s
  format: json
drain:
  timeout: 10s
%[6]s`, httpPort, filepath.Join(dir, "data", "handoff.db"), h.sipPort, o.logLevel, o.sipExtra, o.extra)
	if o.agentURL != "" {
		cfg += fmt.Sprintf("agent:\n  mode: websocket\n  url: %s\n", o.agentURL)
	}
	cfgPath := filepath.Join(dir, "handoff.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })

	h.cmd = exec.Command(bin, "-config", cfgPath)
	h.cmd.Dir = dir
	h.cmd.Stdout = logf
	h.cmd.Stderr = logf
	h.cmd.Env = testenv.CleanEnv()
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		h.waitErr = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			h.cmd.Process.Kill()
			<-h.done
		}
		if t.Failed() {
			h.dumpLog(t, 60)
		}
	})

	if err := testenv.WaitReady(h.client, h.http+"/readyz", h.done, startLimit); err != nil {
		select {
		case <-h.done:
			t.Fatalf("handoff %v: %v", err, h.waitErr)
		default:
			t.Fatalf("handoff %v", err)
		}
	}
	return h
}

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// runSIPp runs a scenario of this directory against handoff and requires
// every one of calls to succeed: exit status 0 and the final statistics
// row saying calls successful, 0 failed. limit bounds the run.
func (h *handoff) runSIPp(t *testing.T, sipp string, calls int, scenario string, limit time.Duration, extra ...string) {
	t.Helper()
	h.startSIPp(t, sipp, scenario, 0, limit, extra...).wait(t, calls)
}

// sippRun is one SIPp subprocess and its trace files.
type sippRun struct {
	cmd                          *exec.Cmd
	port                         int // its SIP port
	start                        time.Time
	done                         chan struct{}
	runErr                       error
	stdout                       bytes.Buffer
	stat, errLog, screen, msgLog string
}

// startSIPp starts a scenario of this directory against handoff in the
// background, on SIP port port (0: a free one), and returns once SIPp
// listens on it. limit bounds the run. A free port found for it can be
// taken before SIPp binds it (the packages' tests run in parallel, and
// their sockets get ephemeral ports): SIPp then exits at once, and it is
// started again on another one.
func (h *handoff) startSIPp(t *testing.T, sipp, scenario string, port int, limit time.Duration, extra ...string) *sippRun {
	t.Helper()
	for attempt := 1; ; attempt++ {
		chosen := port
		if chosen == 0 {
			chosen = testenv.FreePort(t, true)
		}
		r, busyAtOnce := h.trySIPp(t, sipp, scenario, chosen, limit, extra...)
		if port != 0 || attempt == 3 || !busyAtOnce || !r.lostItsPort() {
			return r
		}
		t.Logf("sipp could not bind udp 127.0.0.1:%d (taken since it was found free); again on another port", chosen)
	}
}

// lostItsPort reports whether SIPp exited at start-up because its SIP port
// was taken.
func (r *sippRun) lostItsPort() bool {
	select {
	case <-r.done:
	case <-time.After(200 * time.Millisecond):
		return false
	}
	b, _ := os.ReadFile(r.errLog)
	return bytes.Contains(b, []byte("Unable to bind main socket"))
}

// trySIPp is one start of startSIPp. busyAtOnce says the port was taken at
// the first look, perhaps by another process rather than by SIPp.
func (h *handoff) trySIPp(t *testing.T, sipp, scenario string, port int, limit time.Duration, extra ...string) (r *sippRun, busyAtOnce bool) {
	t.Helper()
	out := filepath.Join(h.dir, "sipp-"+strings.TrimSuffix(scenario, ".xml"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	r = &sippRun{
		port:   port,
		done:   make(chan struct{}),
		stat:   filepath.Join(out, "stat.csv"),
		errLog: filepath.Join(out, "errors.log"),
		screen: filepath.Join(out, "screen.log"),
		msgLog: filepath.Join(out, "messages.log"),
	}
	args := []string{
		"-sf", scenario,
		fmt.Sprintf("127.0.0.1:%d", h.sipPort),
		"-t", "u1", // UDP, one socket for all calls
		"-i", "127.0.0.1", "-mi", "127.0.0.1",
		"-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(testenv.FreeUDPRange(t, 2)),
		"-cp", strconv.Itoa(testenv.FreePortExcept(t, true, port)), // control socket
		"-nostdin",
		"-timeout", strconv.Itoa(int(limit/time.Second)) + "s",
		"-timeout_error",
		"-recv_timeout", "30000", // no call waits longer than 30 s for a message
		"-trace_stat", "-stf", r.stat, "-fd", "1",
		"-trace_err", "-error_file", r.errLog,
		"-trace_screen", "-screen_file", r.screen,
		"-trace_msg", "-message_file", r.msgLog,
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), limit+30*time.Second)
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = "." // the scenarios' pcap paths are relative to this directory
	cmd.Stdout = &r.stdout
	cmd.Stderr = &r.stdout
	cmd.WaitDelay = 5 * time.Second
	r.cmd = cmd
	t.Logf("sipp %s", strings.Join(args, " "))
	_ = os.Remove(r.errLog) // lostItsPort reads this start's errors only
	r.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		r.runErr = cmd.Wait()
		cancel()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			cmd.Process.Kill()
			<-r.done
		}
	})
	// SIPp listens once its UDP port is taken.
	deadline := time.Now().Add(startLimit)
	for first := true; ; first = false {
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			busyAtOnce = first
			break
		}
		u.Close()
		select {
		case <-r.done:
			r.report(t)
			t.Fatalf("sipp exited during start-up: %v", r.runErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp not listening on udp 127.0.0.1:%d after %v", port, startLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r, busyAtOnce
}

// report logs the tails of SIPp's traces and output.
func (r *sippRun) report(t *testing.T) {
	t.Helper()
	for _, f := range []string{r.errLog, r.screen} {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			t.Logf("%s:\n%s", filepath.Base(f), testenv.Tail(string(b), 80))
		}
	}
	if b, err := os.ReadFile(r.msgLog); err == nil {
		t.Logf("SIP messages (tail):\n%s", testenv.Tail(string(b), 120))
	}
	t.Logf("sipp output (tail):\n%s", testenv.Tail(r.stdout.String(), 40))
}

// messages is SIPp's -trace_msg log so far.
func (r *sippRun) messages(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(r.msgLog)
	if err != nil {
		t.Fatalf("sipp messages: %v", err)
	}
	return string(b)
}

// wait waits for SIPp to finish and requires every one of calls to
// succeed: exit status 0 and the final statistics row saying calls
// successful, 0 failed.
func (r *sippRun) wait(t *testing.T, calls int) {
	t.Helper()
	<-r.done
	t.Logf("sipp ran %v", time.Since(r.start).Round(time.Millisecond))
	runErr, stat := r.runErr, r.stat
	report := func() { r.report(t) }
	if runErr != nil {
		report()
		var ee *exec.ExitError
		if errors.As(runErr, &ee) && ee.ExitCode() == 1 {
			t.Fatalf("sipp: some calls failed (exit status 1)")
		}
		t.Fatalf("sipp: %v (exit status 0 means all calls succeeded; 1 some failed; 97/99/255 aborted)", runErr)
	}
	ok, failed, err := testenv.SIPpTotals(stat)
	if err != nil {
		report()
		t.Fatalf("sipp statistics %s: %v", stat, err)
	}
	t.Logf("sipp: %d successful, %d failed calls", ok, failed)
	if failed != 0 || ok != calls {
		report()
		t.Fatalf("sipp: %d successful, %d failed calls; want %d and 0", ok, failed, calls)
	}
}

// transferView is the part of the GET body the tests read.
type transferView struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	PhoneNumber struct {
		TransferNumber string `json:"transferNumber"`
	} `json:"phoneNumber"`
	CallReceivedAt string `json:"callReceivedAt"`
	CompletedAt    string `json:"completedAt"`
	EndReason      string `json:"endReason"`
	OutputContext  *struct {
		TransferType       string            `json:"transferType"`
		CurrentTaskName    string            `json:"currentTaskName"`
		TransferVariables  map[string]string `json:"transferVariables"`
		ReferenceVariables map[string]string `json:"referenceVariables"`
	} `json:"outputContext"`
	SIP *struct {
		TransferURI        string `json:"transferUri"`
		ReturnTransferType string `json:"returnTransferType"`
		ReturnURI          string `json:"returnUri"`
	} `json:"sip"`
	ReturnResult *struct {
		Method        string `json:"method"`
		Result        string `json:"result"`
		SIPCode       int    `json:"sipCode"`
		Reason        string `json:"reason"`
		Fallback      string `json:"fallback"`
		StartedAt     string `json:"startedAt"`
		EndedAt       string `json:"endedAt"`
		BridgeEndedAt string `json:"bridgeEndedAt"`
		AgentLeg      *struct {
			URI    string `json:"uri"`
			CallID string `json:"callId"`
			Ending string `json:"ending"`
		} `json:"agentLeg"`
	} `json:"returnResult"`
}

func (h *handoff) create(t *testing.T, id, typ string) transferView {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"externalConversationId":"conv-%s","type":%q,"phoneNumber":{"country":"US"},"inputContext":{"taskName":"sipp"}}`, id, id, typ)
	var v transferView
	h.api(t, "POST", "/generativeagent/v1/call-transfers", body, &v)
	return v
}

// createSIP creates a SIP transfer with the given sip object (JSON).
func (h *handoff) createSIP(t *testing.T, id, sipJSON string) transferView {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"externalConversationId":"conv-%s","type":"SIP","sip":%s,"inputContext":{"taskName":"sipp"}}`, id, id, sipJSON)
	var v transferView
	h.api(t, "POST", "/generativeagent/v1/call-transfers", body, &v)
	return v
}

func (h *handoff) get(t *testing.T, id string) transferView {
	t.Helper()
	var v transferView
	h.api(t, "GET", "/generativeagent/v1/call-transfers/"+id, "", &v)
	return v
}

func (h *handoff) api(t *testing.T, method, path, body string, v any) {
	t.Helper()
	req, err := http.NewRequest(method, h.http+path, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	req.Header.Set("asapp-api-id", apiID)
	req.Header.Set("asapp-api-secret", apiSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Errorf("%s %s: %v in %s", method, path, err, b)
	}
}

// metricSet is one scrape of /metrics.
type metricSet struct {
	t *testing.T
	g prometheus.Gatherer
}

// get reads a sample named as the text format writes it,
// name{label="value",...}.
func (m metricSet) get(sample string) float64 {
	m.t.Helper()
	name, labels := testenv.SplitSample(sample)
	return testenv.MetricValue(m.t, m.g, name, labels...)
}

func (h *handoff) metrics(t *testing.T) metricSet {
	t.Helper()
	return metricSet{t: t, g: testenv.Scrape(t, h.client, h.http+"/metrics")}
}

// waitIdle waits until handoff has no call and no media session left and
// returns that scrape.
func (h *handoff) waitIdle(t *testing.T) metricSet {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		m := h.metrics(t)
		calls, sessions := m.get("handoff_sip_calls_active"), m.get("handoff_media_sessions_active")
		if calls == 0 && sessions == 0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: handoff_sip_calls_active %v, handoff_media_sessions_active %v; want 0 and 0", settle, calls, sessions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// goroutines is handoff's goroutine count with no call, and no idle API
// connection of ours.
func (h *handoff) goroutines(t *testing.T) float64 {
	t.Helper()
	h.client.CloseIdleConnections()
	return h.metrics(t).get("go_goroutines")
}

// waitGoroutines waits until handoff runs at most max goroutines.
func (h *handoff) waitGoroutines(t *testing.T, max float64) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		n := h.metrics(t).get("go_goroutines")
		if n <= max {
			t.Logf("handoff goroutines after the calls: %v (limit %v)", n, max)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("handoff runs %v goroutines %v after the calls, want <= %v (a leak)", n, settle, max)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop drains handoff with SIGTERM and requires a clean exit, which under
// -race also means no data race was reported.
func (h *handoff) stop(t *testing.T) {
	t.Helper()
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(stopLimit):
		t.Fatalf("handoff still running %v after SIGTERM", stopLimit)
	}
	if h.waitErr != nil {
		t.Errorf("handoff exit: %v", h.waitErr)
	}
	if b, err := os.ReadFile(h.log); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		t.Errorf("the race detector reported a data race in handoff:\n%s", testenv.Tail(string(b), 120))
	}
}

func (h *handoff) dumpLog(t *testing.T, lines int) {
	b, err := os.ReadFile(h.log)
	if err != nil {
		return
	}
	t.Logf("handoff log (tail):\n%s", testenv.Tail(string(b), lines))
}
