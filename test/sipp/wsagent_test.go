package sipp_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/internal/wstest"
	"github.com/handoff/handoff/media"
)

// wsAgent is the WebSocket agent of the SIPp tests, speaking Handoff's
// agent protocol (docs/agent-protocol.md). It keeps each call's start
// event and the caller's audio (inbound media, decoded from the announced
// format); with echo, it sends every inbound payload back, so the call's
// outgoing path carries audio too. It finishes the call with
// handoff.complete when the caller presses # (the digits before it as
// transferVariables.digits, intent=pay_bill as a reference variable).
type wsAgent struct {
	url    string
	echo   bool
	starts chan startEvent

	mu       sync.Mutex
	encoding string
	rate     int
	codec    string // start.handoff.codec, as name/rate
	pcm      []int16
	echoed   int
}

// startEvent is the part of the start event the tests read.
type startEvent struct {
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      struct {
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sampleRate"`
	} `json:"mediaFormat"`
	Handoff struct {
		TransferID string            `json:"transferId"`
		UUI        string            `json:"uui"`
		UUIText    string            `json:"uuiText"`
		Identity   map[string]string `json:"identity"`
		Headers    map[string]string `json:"headers"`
		Codec      *struct {
			Name       string `json:"name"`
			SampleRate int    `json:"sampleRate"`
		} `json:"codec"`
	} `json:"handoff"`
}

// agentMsg is a message from Handoff, the fields the agent reads.
type agentMsg struct {
	Event     string     `json:"event"`
	StreamSid string     `json:"streamSid"`
	Start     startEvent `json:"start"`
	Media     *struct {
		Track   string `json:"track"`
		Payload string `json:"payload"`
	} `json:"media"`
	DTMF struct {
		Digit string `json:"digit"`
	} `json:"dtmf"`
}

// newWSAgent serves an agent on loopback (a.url); echo sends the caller's
// audio back.
func newWSAgent(t *testing.T, echo bool) *wsAgent {
	t.Helper()
	a := &wsAgent{echo: echo, starts: make(chan startEvent, 4)}
	a.url = wstest.Serve(t, a.serve) + "/agent"
	return a
}

func (a *wsAgent) serve(ctx context.Context, c *websocket.Conn, _ *http.Request) {
	c.SetReadLimit(1 << 20)
	digits := ""
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return // Handoff closed the call
		}
		var m agentMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		var reply []byte
		switch {
		case m.Event == "start":
			a.started(m.Start)
			select {
			case a.starts <- m.Start:
			case <-ctx.Done():
				return
			}
		case m.Event == "media" && m.Media != nil && m.Media.Track == "inbound":
			reply = a.heardMedia(m)
		case m.Event == "dtmf" && m.DTMF.Digit != "#":
			digits += m.DTMF.Digit
		case m.Event == "dtmf":
			reply, _ = json.Marshal(map[string]any{"event": "handoff.complete", "outputContext": map[string]any{
				"transferType": "SYSTEM", "currentTaskName": "sipp",
				"transferVariables":  map[string]string{"digits": digits},
				"referenceVariables": map[string]string{"intent": "pay_bill"},
			}})
		}
		if reply != nil && write(ctx, c, reply) != nil {
			return
		}
	}
}

func write(ctx context.Context, c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, msg)
}

// started records the call's media format and codec.
func (a *wsAgent) started(s startEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.encoding, a.rate = s.MediaFormat.Encoding, s.MediaFormat.SampleRate
	if c := s.Handoff.Codec; c != nil {
		a.codec = fmt.Sprintf("%s/%d", c.Name, c.SampleRate)
	}
}

// heardMedia keeps the caller's audio and returns its echo, if the agent
// echoes.
func (a *wsAgent) heardMedia(m agentMsg) []byte {
	payload, err := base64.StdEncoding.DecodeString(m.Media.Payload)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pcm = append(a.pcm, a.decode(payload)...)
	if !a.echo {
		return nil
	}
	a.echoed++
	echo, _ := json.Marshal(map[string]any{"event": "media", "streamSid": m.StreamSid, "media": map[string]string{"payload": m.Media.Payload}})
	return echo
}

func (a *wsAgent) decode(payload []byte) []int16 {
	if a.encoding == "audio/x-mulaw" {
		pcm := make([]int16, len(payload))
		media.DecodeULaw(pcm, payload)
		return pcm
	}
	pcm := make([]int16, len(payload)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(payload[2*i:]))
	}
	return pcm
}

// heard is what the agent heard so far and how many payloads it echoed.
func (a *wsAgent) heard() (encoding string, rate int, codec string, pcm []int16, echoed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.encoding, a.rate, a.codec, append([]int16(nil), a.pcm...), a.echoed
}

// start is the start event of the next call.
func (a *wsAgent) start(t *testing.T) startEvent {
	t.Helper()
	select {
	case s := <-a.starts:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the agent got no start event")
		return startEvent{}
	}
}
