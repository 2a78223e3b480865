package main

// The Twilio-compatible hang-up on the real binary: a WebSocket agent
// playing Pipecat's Twilio serializer ends its call only by the REST
// request Pipecat sends when its pipeline ends.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/internal/wstest"
)

const (
	twilioSID   = "AC4f1c2b9e0d8a7f6e5d4c3b2a19081726"
	twilioToken = "twilio-tok-5e4d3c2b1a"
)

// pipecatAgent is a WebSocket agent that reads Twilio's connected and
// start frames, as Pipecat does, and reports the start's callSid and
// accountSid; it then reads until Handoff closes the link.
type pipecatAgent struct {
	url     string
	started chan [2]string // callSid, accountSid
}

func newPipecatAgent(t *testing.T) *pipecatAgent {
	t.Helper()
	a := &pipecatAgent{started: make(chan [2]string, 1)}
	a.url = wstest.Serve(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		a.readStart(ctx, c)
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}) + "/ws"
	return a
}

// readStart reads the first two text frames, connected then start, and
// reports the start's ids (Pipecat requires both streamSid and callSid).
func (a *pipecatAgent) readStart(ctx context.Context, c *websocket.Conn) {
	for range 2 {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			Event string `json:"event"`
			Start struct {
				StreamSid  string `json:"streamSid"`
				CallSid    string `json:"callSid"`
				AccountSid string `json:"accountSid"`
			} `json:"start"`
		}
		if json.Unmarshal(b, &m) == nil && m.Event == "start" && m.Start.StreamSid != "" && m.Start.CallSid != "" {
			a.started <- [2]string{m.Start.CallSid, m.Start.AccountSid}
			return
		}
	}
}

// hangUp sends what Pipecat's TwilioFrameSerializer sends on EndFrame: a
// form POST of Status=completed to {base_url}/2010-04-01/Accounts/{sid}/
// Calls/{callSid}.json with HTTP basic auth (Twilio's REST reference).
func hangUp(t *testing.T, baseURL, accountSid, token, callSid string) (int, map[string]any) {
	t.Helper()
	endpoint := baseURL + "/2010-04-01/Accounts/" + accountSid + "/Calls/" + callSid + ".json"
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"Status": {"completed"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(accountSid+":"+token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("hang-up answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

// A call on a running process, its WebSocket agent ending it only by
// Pipecat's REST hang-up: wrong credentials get 401, the right ones 200
// with the call completed; the transfer ends agent_finished with the
// configured transfer type, and the caller is returned by BYE.
func TestPipecatHangUpEndsCallOnRunningProcess(t *testing.T) {
	t.Parallel()
	bot := newPipecatAgent(t)
	cfgPath, _ := writeCallConfig(t, "43200-43299", fmt.Sprintf(`agent:
  mode: websocket
  url: %s
  twilio_api:
    account_sid: %s
    auth_token: %s
`, bot.url, twilioSID, twilioToken))
	p := startHandoff(t, "", nil, "-config", cfgPath)
	phone := siptest.NewPhone(t, "127.0.0.1")
	created := p.create(ivr, sipTransfer("pipecat-hangup", nil))
	p.connect(t, phone, created, 10)

	var ids [2]string
	select {
	case ids = <-bot.started:
	case <-time.After(startLimit):
		t.Fatal("the agent never received start")
	}
	callSid, accountSid := ids[0], ids[1]
	if accountSid != twilioSID {
		t.Errorf("start.accountSid %q, want the configured %q", accountSid, twilioSID)
	}
	if code, _ := hangUp(t, p.base, accountSid, "wrong-token", callSid); code != http.StatusUnauthorized {
		t.Fatalf("hang-up with a wrong token: %d, want 401", code)
	}
	code, body := hangUp(t, p.base, accountSid, twilioToken, callSid)
	if code != http.StatusOK || body["sid"] != callSid || body["status"] != "completed" {
		t.Fatalf("hang-up: %d %v", code, body)
	}

	phone.WaitBye()
	id := str(created, "id")
	var got map[string]any
	testenv.Poll(t, startLimit, 20*time.Millisecond, "transfer "+id+" completed", func() bool {
		_, got = p.get(ivr, id)
		return str(got, "status") == "COMPLETED"
	})
	if str(got, "endReason") != "agent_finished" || str(got, "outputContext.transferType") != "SYSTEM" {
		t.Fatalf("transfer %v", got)
	}
	assertNoSecrets(t, p.logs.String())
	if strings.Contains(p.logs.String(), twilioToken) {
		t.Fatal("the Twilio auth token appears in the log")
	}
}
