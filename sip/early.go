package sip

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
)

// earlyConn is a UDP listener as sipgo reads it, with the overload
// shedding moved in front of sipgo (docs/operations.md, Overload). sipgo
// reads every datagram of a listener in one loop that parses it and
// starts a goroutine for it; under overload the INVITEs to refuse queue in
// the socket behind the ones being parsed, then in the scheduler behind
// the goroutines of the calls admitted, and their 503 comes too late to
// help anyone. Here a new INVITE is judged by the shedder as it is read,
// from a scan of its bytes (a few headers, no parse), and a refused one
// gets its 503 at once, statelessly, from the read loop: no parse, no
// goroutine, no transaction. Its receipt time is the kernel's (SO_TIMESTAMPNS
// where there is one), so the handling time the shedder judges includes
// the time spent queued in the socket.
//
// The read path is a goroutine of its own, reading the socket and handing
// what it passes to sipgo's loop through a queue, so refusals are never
// held up by sipgo parsing the messages before them.
//
// In-dialog requests, responses and everything the scan does not fully
// understand pass to sipgo untouched, and so do retransmissions of an
// INVITE already passed (the gate remembers its Call-ID): only INVITEs
// that would start a call are ever refused here. The ACK of a stateless
// 503 (To tag shedTag) is absorbed here too.
type earlyConn struct {
	net.PacketConn // sipgo's writes, LocalAddr, Close
	recv           func(buf, oob []byte) (n, oobn int, src netip.AddrPort, err error)
	s              *Server
	oob            []byte
	passed         chan datagram // to sipgo's loop; closed when the socket fails
	err            error         // why it failed, set before passed is closed
}

// datagram is one message passed to sipgo.
type datagram struct {
	b   []byte
	src netip.AddrPort
}

// passedQueue bounds the messages read and not yet taken by sipgo's loop.
// While it is full a new INVITE is refused at once, and anything else waits
// for room (and the socket buffer fills, as before).
const passedQueue = 1024

// listenerBuffer is the receive buffer asked for a UDP listener (the
// kernel caps it at net.core.rmem_max): a burst of INVITEs while the read
// loop is busy must wait in the socket, not be dropped, or the callers
// retransmit after 500 ms and the burst comes back doubled.
const listenerBuffer = 4 << 20

// newEarlyConn starts the read path of c; it ends when c is closed.
func newEarlyConn(c net.PacketConn, s *Server) *earlyConn {
	e := &earlyConn{PacketConn: c, s: s, oob: make([]byte, 128), passed: make(chan datagram, passedQueue)}
	switch c := c.(type) {
	case interface {
		recv(buf, oob []byte) (int, int, netip.AddrPort, error)
	}:
		e.recv = c.recv // a blocking listener (linux)
	case *net.UDPConn:
		_ = c.SetReadBuffer(listenerBuffer)
		enableRecvTimestamps(c)
		e.recv = func(buf, oob []byte) (int, int, netip.AddrPort, error) {
			n, oobn, _, src, err := c.ReadMsgUDPAddrPort(buf, oob)
			return n, oobn, src, err
		}
	}
	go e.read()
	return e
}

// read is the read path: every datagram is read here, and what it does
// not answer goes to sipgo.
func (c *earlyConn) read() {
	defer close(c.passed)
	buf := make([]byte, sip.TransportBufferReadSize)
	for {
		n, oobn, src, err := c.recv(buf, c.oob)
		if err != nil {
			c.err = err
			return
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if !c.handled(buf[:n], src, queueDelay(c.oob[:oobn])) {
			c.passed <- datagram{b: bytes.Clone(buf[:n]), src: src}
		}
	}
}

// ReadFrom is what sipgo's read loop calls: the next datagram that the
// read path did not answer itself.
func (c *earlyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	d, ok := <-c.passed
	if !ok {
		return 0, nil, c.err
	}
	return copy(p, d.b), net.UDPAddrFromAddrPort(d.src), nil
}

// handled answers or drops what the read path takes care of: a new INVITE
// the shedder refuses, and the ACK of a stateless 503.
func (c *earlyConn) handled(b []byte, src netip.AddrPort, delay time.Duration) bool {
	if len(b) < 4 || (b[0] != 'I' && b[0] != 'A') {
		return false // neither INVITE nor ACK: no scan at all
	}
	h, ok := peekHead(b)
	if !ok {
		return false
	}
	switch {
	case bytes.Equal(h.method, []byte("ACK")):
		return bytes.Equal(h.toTag(), []byte(c.s.shedTag))
	case !bytes.Equal(h.method, []byte("INVITE")) || h.toTag() != nil || c.s.draining.Load():
		return false // a re-INVITE, or the handler answers Draining
	}
	r := c.s.gate.early(string(h.callID), delay, len(c.passed) == cap(c.passed))
	if r == nil {
		return false
	}
	c.s.countRefusal(r)
	res := statelessAnswer(&h, src, "503 Service Unavailable", c.s.shedTag,
		"Retry-After: "+r.retryAfterValue(), "Reason: "+r.reasonValue())
	if _, err := c.WriteTo(res, net.UDPAddrFromAddrPort(src)); err != nil {
		c.s.log.Debug("early 503 not sent", "err", err)
	}
	return true
}

// newShedTag is the To tag of a server's stateless refusals, so their ACKs
// are recognised (and absorbed) without any state: Kamailio's sl module
// does the same.
func newShedTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "shed" + hex.EncodeToString(b[:])
}
