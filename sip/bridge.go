package sip

import (
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// bridgeDepth is how many 20 ms frames may wait between the legs (bounded
// delay when one leg's clock runs ahead of the other's).
const bridgeDepth = 5

// bridge carries audio between the caller and the destination of an
// INVITE return. Each leg decodes to PCM at its codec's rate and encodes
// with its own codec, so payload types map and PCMU<->PCMA transcode on
// their own; the queues keep each frame's rate, and the pacer of a leg
// whose codec runs at the other rate resamples (G.722 16 kHz <-> G.711
// 8 kHz), once.
type bridge struct {
	toDestination *media.FrameQueue
	toCaller      *media.FrameQueue
	dest          *returnLeg
}

func (b *bridge) sendDestinationDTMF(ev media.DTMFEvent) {
	if m := b.dest.rtpSession(); m != nil {
		_ = m.SendDTMF(ev) // not negotiated: the destination gets no DTMF
	}
}

// returnLeg is the outbound dialog of an INVITE return.
type returnLeg struct {
	outLeg
	call *Call
}

// earlyMedia plays the destination's early media (183 with SDP) to the
// caller, or a ringback tone for a plain 180.
func (c *Call) earlyMedia(r *returnLeg, resp *sip.Response) {
	if len(resp.Body()) == 0 {
		if c.bridge.Load() == nil {
			c.ringback.CompareAndSwap(nil, media.NewRingback())
		}
		return
	}
	if err := r.takeAnswer(resp.Body()); err != nil {
		c.log.Info("early media SDP unusable", "err", err)
		return
	}
	if err := c.startBridge(r); err != nil {
		c.log.Info("early media failed", "err", err)
		return
	}
	c.ringback.Store(nil)
}

// startBridge starts the destination's RTP session (once) and connects it
// to the caller.
func (c *Call) startBridge(r *returnLeg) error {
	if c.bridge.Load() != nil {
		return nil
	}
	b := &bridge{toDestination: media.NewFrameQueue(bridgeDepth), toCaller: media.NewFrameQueue(bridgeDepth), dest: r}
	err := r.startMedia(media.SessionConfig{
		OnAudio: func(pcm []int16) {
			b.toCaller.Push(pcm)
			c.agent.PushAudio(agent.TrackDestination, pcm)
		},
		OnDTMF: func(ev media.DTMFEvent) {
			if m := c.rtpSession(); m != nil {
				_ = m.SendDTMF(ev)
			}
		},
		Source:     b.toDestination.Pop,
		RTPTimeout: c.s.cfg.RTPTimeout,
		Metrics:    c.s.mediaMetrics,
		Logger:     c.log.With("leg", "return"),
	})
	if err != nil {
		return err
	}
	c.bridge.Store(b)
	return nil
}

// runBridge waits until either side ends the bridged call, then hangs up
// the other.
func (c *Call) runBridge(r *returnLeg) {
	select {
	case <-c.dlg.Context().Done():
	case <-r.dlg.Context().Done():
	case <-c.rtp.Done():
	case <-r.rtp.Done():
	case <-c.s.closing:
	}
	c.hangupBoth(r)
}

func (c *Call) hangupBoth(r *returnLeg) {
	c.bridge.Store(nil)
	c.bye(transfer.EndAgentFinished)
	r.bye()
}

func (r *returnLeg) onAck(req *sip.Request, tx sip.ServerTransaction) { r.ackAnswer(req) }

func (r *returnLeg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := r.dlg.ReadBye(req, tx); err != nil {
		r.call.log.Debug("BYE from the return call", "err", err)
	}
}

func (r *returnLeg) onOffer(req *sip.Request, tx sip.ServerTransaction) {
	r.call.s.respondOffer(&r.dlg.Dialog, &r.leg, req, tx, nil)
}

func (r *returnLeg) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	r.call.s.readInfo(&r.dlg.Dialog, req, tx, func(d agent.DTMF) {
		if m := r.call.rtpSession(); m != nil {
			_ = m.SendDTMF(media.DTMFEvent{Digit: d.Digit, Duration: d.Duration})
		}
	})
}

func (r *returnLeg) onOther(req *sip.Request, tx sip.ServerTransaction) {
	r.call.s.respond(req, tx, sip.StatusForbidden, "Not Allowed On The Return Call")
}
