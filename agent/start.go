package agent

import "encoding/json"

// startMessage is the start event: the call's ids, its facts both as
// Twilio's flat customParameters and as start.handoff, and the media format.
func (s *wsSession) startMessage(seq string) startMsg {
	info := s.info
	return startMsg{
		Event:          evStart,
		SequenceNumber: seq,
		StreamSid:      s.streamSid,
		Start: startBody{
			AccountSid:       defaultAccountSid,
			StreamSid:        s.streamSid,
			CallSid:          s.callSid,
			Tracks:           []string{wireInbound},
			CustomParameters: customParameters(info),
			MediaFormat:      mediaFormat{Encoding: s.cfg.Format.Encoding, SampleRate: s.cfg.Format.SampleRate, Channels: 1},
			Handoff: startHandoff{
				TransferID:             info.TransferID,
				ExternalConversationID: info.ExternalConversationID,
				CallID:                 info.CallID,
				From:                   info.From,
				To:                     info.To,
				InputContext:           info.Input,
				Headers:                info.Headers,
			},
		},
	}
}

// customParameters flattens the call's facts into Twilio's string map:
// inputVariables is one JSON-encoded string; X- headers keep their names
func customParameters(info CallInfo) map[string]string {
	p := map[string]string{"transferId": info.TransferID}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("externalConversationId", info.ExternalConversationID)
	set("callId", info.CallID)
	set("from", info.From)
	set("to", info.To)
	set("taskName", info.Input.TaskName)
	if len(info.Input.InputVariables) > 0 {
		b, _ := json.Marshal(info.Input.InputVariables)
		p["inputVariables"] = string(b)
	}
	for k, v := range info.Headers {
		p[k] = v
	}
	return p
}
