package sipp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// recordingAgent is the agent of the contact-center tests: a WebSocket
// server speaking Handoff's agent protocol (docs/agent-protocol.md) that
// keeps each call's start event, and finishes the call with
// handoff.complete when the caller presses # (the digits before it as
// transferVariables.digits, intent=pay_bill as a reference variable).
type recordingAgent struct {
	url    string
	starts chan startEvent
}

// startEvent is the part of the start event the tests read.
type startEvent struct {
	CustomParameters map[string]string `json:"customParameters"`
	Handoff          struct {
		TransferID string            `json:"transferId"`
		UUI        string            `json:"uui"`
		UUIText    string            `json:"uuiText"`
		Identity   map[string]string `json:"identity"`
		Headers    map[string]string `json:"headers"`
	} `json:"handoff"`
}

func newRecordingAgent(t *testing.T) *recordingAgent {
	t.Helper()
	a := &recordingAgent{starts: make(chan startEvent, 4)}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/agent"
	return a
}

func (a *recordingAgent) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	digits := ""
	for {
		_, data, err := c.Read(r.Context())
		if err != nil {
			return // Handoff closed the call
		}
		var msg struct {
			Event string     `json:"event"`
			Start startEvent `json:"start"`
			DTMF  struct {
				Digit string `json:"digit"`
			} `json:"dtmf"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		switch {
		case msg.Event == "start":
			a.starts <- msg.Start
		case msg.Event == "dtmf" && msg.DTMF.Digit != "#":
			digits += msg.DTMF.Digit
		case msg.Event == "dtmf":
			done, _ := json.Marshal(map[string]any{"event": "handoff.complete", "outputContext": map[string]any{
				"transferType": "SYSTEM", "currentTaskName": "sipp",
				"transferVariables":  map[string]string{"digits": digits},
				"referenceVariables": map[string]string{"intent": "pay_bill"},
			}})
			if c.Write(r.Context(), websocket.MessageText, done) != nil {
				return
			}
		}
	}
}

// start is the start event of the next call.
func (a *recordingAgent) start(t *testing.T) startEvent {
	t.Helper()
	select {
	case s := <-a.starts:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the agent got no start event")
		return startEvent{}
	}
}
