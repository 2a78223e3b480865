// Package media is Handoff's media plane: SDP offer/answer for one audio
// stream, RTP/RTCP sessions on pooled UDP ports, G.711 and RFC 4733
// telephone-events, a shallow jitter buffer and 20 ms pacing. It knows
// nothing about SIP or transfers; the sip package drives it.
//
// A Session runs three goroutines (reader, pacer, RTCP) that all exit on
// Close or on RTP timeout. Sockets belong to the PortPool: sessions wake
// their readers with read deadlines and never close the sockets themselves.
package media
