// Package media is Handoff's media plane: SDP offer/answer for one audio
// stream, RTP/RTCP sessions on pooled UDP ports, G.711 and G.722 (wideband,
// 16 kHz) with RFC 4733 telephone-events and RFC 3389 comfort noise, a
// shallow jitter buffer, 20 ms pacing, and the 8/16 kHz resampler. It knows
// nothing about SIP or transfers; the sip package drives it.
//
// Audio crosses the package boundary as 20 ms frames of 16-bit PCM at the
// codec's own rate (160 samples at 8 kHz, 320 at 16 kHz), a frame's length
// telling its rate, so a G.722 call reaches a 16 kHz consumer without being
// resampled at all and anything else is resampled exactly once.
//
// A Session has no goroutine of its own: the media engine (engine.go), a
// worker per CPU that exists only while it has sessions, runs every
// started session once per 20 ms frame (RTP in, playout, RTP out, RTCP),
// reading the sockets without blocking. Sockets belong to the PortPool and
// live outside Go's network poller (socket.go); sessions never close them.
package media
