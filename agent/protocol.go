package agent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/handoff/handoff/transfer"
)

// The wire protocol is Twilio Media Streams' JSON events plus two
// extensions prefixed "handoff."; docs/agent-protocol.md describes every
// message. Numbers that Twilio sends as strings (sequenceNumber, chunk,
// timestamp) are strings here too.
const (
	evConnected  = "connected"
	evStart      = "start"
	evMedia      = "media"
	evDTMF       = "dtmf"
	evMark       = "mark"
	evStop       = "stop"
	evClear      = "clear"
	evComplete   = "handoff.complete"   // agent -> Handoff: the conversation is over
	evListenOnly = "handoff.listenOnly" // Handoff -> agent: the call is bridged; do not speak
)

// Wire track names: Twilio's "inbound" is what the caller says; "outbound"
// is what the caller hears from the far end while an INVITE return is
// bridged (TrackDestination).
const (
	wireInbound  = "inbound"
	wireOutbound = "outbound"
)

func wireTrack(t Track) string {
	if t == TrackDestination {
		return wireOutbound
	}
	return wireInbound
}

// defaultAccountSid fills Twilio's accountSid fields when no Twilio API
// account is configured.
const defaultAccountSid = "handoff"

type connectedMsg struct {
	Event    string `json:"event"`
	Protocol string `json:"protocol"`
	Version  string `json:"version"`
}

type startMsg struct {
	Event          string    `json:"event"`
	SequenceNumber string    `json:"sequenceNumber"`
	Start          startBody `json:"start"`
	StreamSid      string    `json:"streamSid"`
}

type startBody struct {
	AccountSid       string            `json:"accountSid"`
	StreamSid        string            `json:"streamSid"`
	CallSid          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      mediaFormat       `json:"mediaFormat"`
	Handoff          startHandoff      `json:"handoff"`
}

type mediaFormat struct {
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sampleRate"`
	Channels   int    `json:"channels"`
}

// startHandoff is the start message's extension: the same call facts as
// customParameters, with their structure kept.
type startHandoff struct {
	TransferID             string                `json:"transferId"`
	ExternalConversationID string                `json:"externalConversationId,omitempty"`
	CallID                 string                `json:"callId,omitempty"`
	From                   string                `json:"from,omitempty"`
	To                     string                `json:"to,omitempty"`
	InputContext           transfer.InputContext `json:"inputContext"`
	Headers                map[string]string     `json:"headers,omitempty"`
	UUI                    string                `json:"uui,omitempty"`
	UUIText                string                `json:"uuiText,omitempty"`
	Codec                  *codecInfo            `json:"codec,omitempty"`
	Identity               map[string]string     `json:"identity,omitempty"`
}

// codecInfo is the caller leg's SIP codec: what the audio was before it
// became mediaFormat (16000 for G.722: wideband).
type codecInfo struct {
	Name       string `json:"name"`
	SampleRate int    `json:"sampleRate"`
}

type dtmfMsg struct {
	Event          string   `json:"event"`
	StreamSid      string   `json:"streamSid"`
	SequenceNumber string   `json:"sequenceNumber"`
	DTMF           dtmfBody `json:"dtmf"`
}

type dtmfBody struct {
	Track      string `json:"track"`
	Digit      string `json:"digit"`
	DurationMs int64  `json:"durationMs,omitempty"`
}

type markMsg struct {
	Event          string   `json:"event"`
	StreamSid      string   `json:"streamSid"`
	SequenceNumber string   `json:"sequenceNumber"`
	Mark           markBody `json:"mark"`
}

type markBody struct {
	Name string `json:"name"`
}

type stopMsg struct {
	Event          string   `json:"event"`
	StreamSid      string   `json:"streamSid"`
	SequenceNumber string   `json:"sequenceNumber"`
	Stop           stopBody `json:"stop"`
}

type stopBody struct {
	AccountSid string `json:"accountSid"`
	CallSid    string `json:"callSid"`
}

type listenOnlyMsg struct {
	Event          string `json:"event"`
	StreamSid      string `json:"streamSid"`
	SequenceNumber string `json:"sequenceNumber"`
}

// appendMedia appends a media message carrying payload (raw bytes, encoded
// here) without reflection: it is the hot path.
func appendMedia(b []byte, seq int64, track string, chunk, tsMs int64, payload []byte, streamSid string) []byte {
	b = append(b, `{"event":"media","sequenceNumber":"`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `","media":{"track":"`...)
	b = append(b, track...)
	b = append(b, `","chunk":"`...)
	b = strconv.AppendInt(b, chunk, 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, tsMs, 10)
	b = append(b, `","payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, payload)
	b = append(b, `"},"streamSid":"`...)
	b = append(b, streamSid...)
	b = append(b, `"}`...)
	return b
}

// inMsg is any message from the agent; only the fields of its event are set.
type inMsg struct {
	Event string `json:"event"`
	Media *struct {
		Payload string `json:"payload"`
	} `json:"media"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
	OutputContext *wireOutput `json:"outputContext"`
}

// wireOutput is an outputContext as agents write it: variables may be any
// JSON scalar (numbers and booleans are kept in their JSON spelling).
type wireOutput struct {
	TransferType       string                     `json:"transferType"`
	CurrentTaskName    string                     `json:"currentTaskName"`
	ReferenceVariables map[string]json.RawMessage `json:"referenceVariables"`
	TransferVariables  map[string]json.RawMessage `json:"transferVariables"`
}

func (w *wireOutput) outputContext() (transfer.OutputContext, error) {
	ref, err := stringVars(w.ReferenceVariables)
	if err != nil {
		return transfer.OutputContext{}, fmt.Errorf("referenceVariables: %w", err)
	}
	tv, err := stringVars(w.TransferVariables)
	if err != nil {
		return transfer.OutputContext{}, fmt.Errorf("transferVariables: %w", err)
	}
	return transfer.OutputContext{
		TransferType:       w.TransferType,
		CurrentTaskName:    w.CurrentTaskName,
		ReferenceVariables: ref,
		TransferVariables:  tv,
	}, nil
}

func stringVars(in map[string]json.RawMessage) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, raw := range in {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out[k] = s
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("%q: want a string, number or boolean", k)
		case nil:
			out[k] = ""
		default:
			out[k] = string(raw)
		}
	}
	return out, nil
}
