package agent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/handoff/handoff/transfer"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "tok-9c1f0e7d2b4a"
)

// twilioFixture is Handoff's side: the hang-up endpoint on the HTTP API's
// mux, served on loopback, and a WebSocket pipeline whose sessions it ends.
type twilioFixture struct {
	agent *testAgent
	ws    *WebSocket
	m     *Metrics
	srv   *httptest.Server
	// baseURL is what a Pipecat user sets as the serializer's base_url.
	baseURL string
	logs    *bytes.Buffer
}

func newTwilioFixture(t *testing.T, transferType string) *twilioFixture {
	t.Helper()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api, err := NewTwilioAPI(TwilioAPIOptions{AccountSID: testAccountSID, AuthToken: testAuthToken, TransferType: transferType, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(TwilioAPIPath, api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	ws := a.pipeline(m)
	ws.TwilioAPI = api
	ws.Logger = log
	return &twilioFixture{agent: a, ws: ws, m: m, srv: srv, baseURL: srv.URL, logs: logs}
}

// logsAfter closes the HTTP server (waiting for its handlers) and the
// sessions (waiting for their goroutines), then returns what they logged.
func (f *twilioFixture) logsAfter(sessions ...Session) string {
	f.srv.Close()
	for _, s := range sessions {
		s.Close()
	}
	return f.logs.String()
}

// pipecatHangUp sends the request Pipecat's TwilioFrameSerializer sends on
// EndFrame (serializers/twilio.py, _hang_up_call): aiohttp's
// session.post(endpoint, auth=BasicAuth(account_sid, auth_token),
// data={"Status": "completed"}), where endpoint is
// f"{base_url}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json",
// the call_sid pasted in unescaped. Twilio's API reference documents the
// same request: a form-encoded body and HTTP basic auth.
func pipecatHangUp(t *testing.T, baseURL, accountSid, authToken, callSid, status string) (int, map[string]any) {
	t.Helper()
	endpoint := strings.TrimRight(baseURL, "/") + "/2010-04-01/Accounts/" + accountSid + "/Calls/" + callSid + ".json"
	body := url.Values{"Status": {status}}.Encode()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("User-Agent", "Python/3.12 aiohttp/3.12.15")
	if accountSid != "" || authToken != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(accountSid+":"+authToken)))
	}
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, v
}

// A Pipecat bot ends its call only by the Twilio REST hang-up, after its
// goodbye: the session finishes once the goodbye has played, with SYSTEM
// and no variables, as a handoff.complete without variables would.
func TestTwilioAPIPipecatHangUp(t *testing.T) {
	f := newTwilioFixture(t, "")
	s, p, start := openSession(t, f.agent, f.ws)
	st := start.Start
	if st.AccountSid != testAccountSID || st.CallSid != "call-1@host" {
		t.Fatalf("start accountSid %q callSid %q", st.AccountSid, st.CallSid)
	}
	_, goodbye := ulawFrame(300)
	p.sendMedia(goodbye)
	waitQueued(t, s, FrameSamples)

	code, call := pipecatHangUp(t, f.baseURL, st.AccountSid, testAuthToken, st.CallSid, "completed")
	if code != http.StatusOK || call["sid"] != st.CallSid || call["account_sid"] != testAccountSID || call["status"] != "completed" {
		t.Fatalf("hang-up answered %d %v", code, call)
	}
	if s.state() != stateFinishing {
		t.Fatalf("state %s while the goodbye waits to play", s.state())
	}
	if _, ok := s.NextFrame(); !ok {
		t.Fatal("the goodbye did not play")
	}
	got := waitDone(t, s)
	if want := (transfer.OutputContext{TransferType: "SYSTEM"}); !equalOutput(got, want) {
		t.Fatalf("outcome %+v, want %+v", got, want)
	}
	if v := value(f.m.ended.WithLabelValues(ReasonComplete)); v != 1 {
		t.Errorf("ended{complete} %v", v)
	}

	// Pipecat's serializer hangs up once; a repeat while the call is still
	// up changes nothing, and after the call it is Twilio's 20404, which
	// Pipecat takes as "already terminated".
	if code, call := pipecatHangUp(t, f.baseURL, st.AccountSid, testAuthToken, st.CallSid, "completed"); code != http.StatusOK || call["status"] != "completed" {
		t.Fatalf("repeated hang-up answered %d %v", code, call)
	}
	s.Close()
	code, body := pipecatHangUp(t, f.baseURL, st.AccountSid, testAuthToken, st.CallSid, "completed")
	if code != http.StatusNotFound || body["code"] != float64(20404) || body["status"] != float64(404) || body["more_info"] == nil {
		t.Fatalf("hang-up after the call answered %d %v", code, body)
	}
	if logs := f.logsAfter(); strings.Contains(logs, testAuthToken) || !strings.Contains(logs, "hung up through the Twilio API") {
		t.Fatalf("the auth token is in the logs, or the hang-up is not:\n%s", logs)
	}
}

// transfer_type is configurable; nothing queued: the call finishes at once.
func TestTwilioAPITransferTypeConfigured(t *testing.T) {
	f := newTwilioFixture(t, "AGENT")
	s, _, start := openSession(t, f.agent, f.ws)
	if code, _ := pipecatHangUp(t, f.baseURL, testAccountSID, testAuthToken, start.Start.CallSid, "completed"); code != http.StatusOK {
		t.Fatalf("hang-up answered %d", code)
	}
	if got := waitDone(t, s); got.TransferType != "AGENT" || got.CurrentTaskName != "" || got.ReferenceVariables != nil || got.TransferVariables != nil {
		t.Fatalf("outcome %+v", got)
	}
}

func TestTwilioAPIRefusals(t *testing.T) {
	f := newTwilioFixture(t, "")
	s, _, start := openSession(t, f.agent, f.ws)
	sid := start.Start.CallSid
	for _, tc := range []struct {
		name                    string
		account, token, callSid string
		status                  string
		wantCode, wantTwilio    int
	}{
		{"wrong token", testAccountSID, "tok-guess", sid, "completed", 401, 20003},
		{"wrong account sid", "AC00000000000000000000000000000000", testAuthToken, sid, "completed", 401, 20003},
		{"no credentials", "", "", sid, "completed", 401, 20003},
		{"unknown call", testAccountSID, testAuthToken, "CA0123456789abcdef0123456789abcdef", "completed", 404, 20404},
		{"bad status", testAccountSID, testAuthToken, sid, "ringing", 400, 20001},
		{"no status", testAccountSID, testAuthToken, sid, "", 400, 20001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := pipecatHangUp(t, f.baseURL, tc.account, tc.token, tc.callSid, tc.status)
			if code != tc.wantCode || body["code"] != float64(tc.wantTwilio) || body["status"] != float64(tc.wantCode) {
				t.Fatalf("answered %d %v, want %d with code %d", code, body, tc.wantCode, tc.wantTwilio)
			}
		})
	}
	// Authenticated, but the path names another account: not found.
	req, _ := http.NewRequest(http.MethodPost, f.baseURL+"/2010-04-01/Accounts/ACother/Calls/"+sid+".json", strings.NewReader("Status=completed"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testAccountSID, testAuthToken)
	if code, body := doJSON(t, req); code != 404 || body["code"] != float64(20404) {
		t.Errorf("another account's path answered %d %v", code, body)
	}
	// Only POST updates a call.
	req, _ = http.NewRequest(http.MethodGet, f.baseURL+"/2010-04-01/Accounts/"+testAccountSID+"/Calls/"+sid+".json", nil)
	req.SetBasicAuth(testAccountSID, testAuthToken)
	if code, _ := doJSON(t, req); code != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d", code)
	}
	// canceled ends only calls not yet answered, as on Twilio.
	if code, call := pipecatHangUp(t, f.baseURL, testAccountSID, testAuthToken, sid, "canceled"); code != 200 || call["status"] != "in-progress" {
		t.Errorf("canceled answered %d %v", code, call)
	}
	select {
	case <-s.Done():
		t.Fatal("a refused or canceled request ended the call")
	default:
	}
	logs := f.logsAfter(s)
	if strings.Contains(logs, testAuthToken) || strings.Contains(logs, "tok-guess") {
		t.Fatalf("a token is in the logs:\n%s", logs)
	}
	if !strings.Contains(logs, "authentication failed") {
		t.Errorf("refused requests not logged:\n%s", logs)
	}
}

// Two open sessions announcing one Call-ID get distinct callSids, so a
// hang-up ends only its own call.
func TestTwilioAPICallSidsUnique(t *testing.T) {
	f := newTwilioFixture(t, "")
	s1, _, start1 := openSession(t, f.agent, f.ws)
	s2, _, start2 := openSession(t, f.agent, f.ws)
	sid1, sid2 := start1.Start.CallSid, start2.Start.CallSid
	if sid1 != "call-1@host" || sid2 == sid1 || !strings.HasPrefix(sid2, "CA") {
		t.Fatalf("callSids %q and %q", sid1, sid2)
	}
	if code, _ := pipecatHangUp(t, f.baseURL, testAccountSID, testAuthToken, sid2, "completed"); code != 200 {
		t.Fatalf("hang-up answered %d", code)
	}
	waitDone(t, s2)
	select {
	case <-s1.Done():
		t.Fatal("the other call ended")
	default:
	}
	if stop := s2.callSid; stop != sid2 {
		t.Errorf("session callSid %q, announced %q", stop, sid2)
	}
}

func TestNewTwilioAPINeedsCredentials(t *testing.T) {
	for _, o := range []TwilioAPIOptions{{AccountSID: testAccountSID}, {AuthToken: testAuthToken}} {
		if _, err := NewTwilioAPI(o); err == nil {
			t.Errorf("NewTwilioAPI(%+v) accepted", o)
		}
	}
}
