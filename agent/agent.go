// Package agent is the seam between a call and the voice agent that talks to
// the caller. A Pipeline opens one Session per call; the Session receives the
// caller's audio and DTMF, gives back the agent's audio frame by frame, and
// finishes with the agent's outcome. It knows nothing of SIP or RTP.
package agent

import (
	"context"
	"time"

	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// Audio crosses the Session interface as 20 ms frames of 16-bit linear
// PCM whose length tells their rate (media.FrameRate): FrameSamples at
// 8 kHz, WideFrameSamples at 16 kHz.
const (
	FrameSamples     = media.FrameSamples
	WideFrameSamples = media.WideFrameSamples
)

// Track labels whose audio a frame carries.
type Track string

const (
	// TrackCaller is the inbound caller, the only track while the agent talks.
	TrackCaller Track = "caller"
	// TrackDestination is the far end of an INVITE return, heard listen-only.
	TrackDestination Track = "destination"
)

// CallInfo is what the agent learns about the call when it starts.
type CallInfo struct {
	TransferID             string
	ExternalConversationID string
	Input                  transfer.InputContext
	From, To               string
	CallID                 string
	// Headers are the INVITE's X- headers, by name as received.
	Headers map[string]string
	// UUI is the inbound User-to-User value (RFC 7433) as received, and
	// UUIText its decoded content when that is printable text. The SIP side
	// fills them; the agent gets them as start.customParameters.uui and
	// uui_text (and start.handoff.uui, uuiText) when they are not empty.
	UUI     string
	UUIText string
	// Codec is the caller leg's audio codec as the INVITE's offer
	// negotiated it ("G722", "PCMU" or "PCMA") and CodecRate its sample
	// rate; both empty for an INVITE without SDP, whose codec is only
	// settled by the answer in the ACK. The agent gets them as
	// start.handoff.codec; its audio format is agent.format all the same.
	Codec     string
	CodecRate int
	// Identity holds the INVITE's identity and history facts (asserted
	// identity, diversion, History-Info, Call-Info, Avaya UCID, platform
	// call ids) by the keys the SIP side documents; each is also a
	// customParameters entry, and start.handoff.identity has them all.
	Identity map[string]string
}

// DTMF is one key press from the caller.
type DTMF struct {
	Digit    rune
	Duration time.Duration
	// Source says how it arrived: "rfc4733" or "info".
	Source string
}

// Session is one call's conversation. Push methods and NextFrame are called
// from the media goroutines and must never block.
type Session interface {
	// PushAudio hands over one frame of a track's audio at the rate of the
	// leg's codec: 160 samples (8 kHz) for G.711, 320 (16 kHz) for G.722.
	// Tracks may differ (a G.722 caller bridged to a G.711 destination).
	// The slice is reused after the call returns.
	PushAudio(track Track, frame []int16)
	// PushDTMF hands over a key press.
	PushDTMF(d DTMF)
	// NextFrame is pulled every 20 ms by the pacer: the next frame of the
	// agent's audio at the agent's own rate (its length says which), or
	// false while the agent is silent. The pacer resamples a frame that is
	// not at the codec's rate.
	NextFrame() ([]int16, bool)
	// Done is closed when the agent has finished the conversation.
	Done() <-chan struct{}
	// Result is the agent's outcome once Done is closed.
	Result() transfer.OutputContext
	// ListenOnly switches the session to transcription: audio keeps coming
	// in, but the agent no longer speaks (used while an INVITE return is bridged).
	ListenOnly()
	// Close ends the session and frees what it holds; it is idempotent.
	Close()
}

// Pipeline opens sessions. Open is called before the INVITE is answered; an
// error rejects the call.
type Pipeline interface {
	Open(ctx context.Context, info CallInfo) (Session, error)
}
