package agent

import (
	"context"
	"strings"
	"testing"
)

func TestPhoneNumber(t *testing.T) {
	for in, want := range map[string]string{
		"sip:+15551234567@carrier.example":                       "+15551234567",
		"sips:+15551234567@carrier.example:5061;transport=tls":   "+15551234567",
		"sip:+1-555-123-4567;npdi;rn=+15550000000@gw;user=phone": "+15551234567",
		"sip:%2B15551234567@carrier.example":                     "+15551234567",
		"sip:alice:secret@example.com":                           "alice",
		"<sip:1000@pbx.example>":                                 "1000",
		"sip:tr-1@handoff":                                       "tr-1",
		"tel:+1-555-123-4567":                                    "+15551234567",
		"tel:(555)123.4567;phone-context=+1":                     "5551234567",
		"TEL:+33142685300":                                       "+33142685300",
		"sip:carrier.example":                                    "",
		"urn:service:sos":                                        "",
		"":                                                       "",
	} {
		if got := PhoneNumber(in); got != want {
			t.Errorf("PhoneNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCallSidFor(t *testing.T) {
	for _, id := range []string{"a84b4c76e66710@10.0.0.5", "9f1c-44e2_x.y~z!*'()+:@h", "tr-1"} {
		if got := callSidFor(CallInfo{CallID: id}); got != id {
			t.Errorf("callSidFor(%q) = %q, want it unchanged", id, got)
		}
	}
	if got := callSidFor(CallInfo{TransferID: "tr-9"}); got != "tr-9" {
		t.Errorf("no Call-ID: callSid %q, want the transfer id", got)
	}
	// What would change the hang-up URL's meaning gets a Twilio-style SID.
	for _, id := range []string{"a/b@h", "a?b@h", "a#b", "50%25@h", "<x>@h", `"q"@h`, "a b"} {
		got := callSidFor(CallInfo{CallID: id, TransferID: "tr-9"})
		if len(got) != 34 || !strings.HasPrefix(got, "CA") || !pathSafe(got) {
			t.Errorf("callSidFor(%q) = %q, want CA and 32 hex digits", id, got)
		}
	}
}

// What an agent receives in start: the numbers Pipecat's runner reads,
// for sip: and tel: URIs, the UUI when the SIP side has it, and the media
// format, over a real WebSocket.
func TestWebSocketStartNumbersAndUUI(t *testing.T) {
	a := newTestAgent(t, true)
	w := a.pipeline(NewMetrics(nil))
	w.Format = FormatL16Wide
	info := testInfo
	info.From = "tel:+1-555-123-4567"
	info.To = "sip:+15557654321;npdi@handoff.example;user=phone"
	info.UUI = "6F72646572203432;encoding=hex"
	info.UUIText = "order 42"
	info.Codec, info.CodecRate = "G722", 16000
	s, err := w.Open(context.Background(), info)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	p := a.peer()
	start := p.nextEvent("start").Start
	cp := start.CustomParameters
	for k, want := range map[string]string{
		"from":        "tel:+1-555-123-4567",
		"from_number": "+15551234567",
		"to_number":   "+15557654321",
		"uui":         "6F72646572203432;encoding=hex",
		"uui_text":    "order 42",
	} {
		if cp[k] != want {
			t.Errorf("customParameters[%s] = %q, want %q", k, cp[k], want)
		}
	}
	if f := start.MediaFormat; f.Encoding != "audio/l16" || f.SampleRate != 16000 || f.Channels != 1 {
		t.Errorf("mediaFormat %+v", f)
	}
	if c := start.Handoff.Codec; c == nil || c.Name != "G722" || c.SampleRate != 16000 {
		t.Errorf("handoff.codec %+v, want G722 at 16000", c)
	}

	// Without UUI the keys are left out, as every empty value is; so is
	// the codec when the INVITE had no offer.
	_, _, start2 := openSession(t, a, a.pipeline(NewMetrics(nil)))
	if c := start2.Start.Handoff.Codec; c != nil {
		t.Errorf("handoff.codec %+v without a codec", c)
	}
	for _, k := range []string{"uui", "uui_text"} {
		if v, ok := start2.Start.CustomParameters[k]; ok {
			t.Errorf("customParameters[%s] = %q without UUI", k, v)
		}
	}
}
