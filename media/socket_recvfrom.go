//go:build unix && !(linux && (amd64 || arm64))

package media

import (
	"errors"
	"net/netip"
	"syscall"
)

// The portable receive path: recvfrom(2) until the socket is empty, no
// kernel timestamps (the engine uses the time it read the packet). It
// allocates a source address per packet; linux/amd64 and arm64 use
// recvmmsg(2) instead (socket_mmsg.go).

const rxBatchLen = 8

// kernelTimestamps: packets carry the kernel receive time, and reading
// allocates nothing.
const kernelTimestamps = false

type rxBatch struct {
	bufs [rxBatchLen][1500]byte
	pkts [rxBatchLen]rxPacket
}

func enableTimestamps(int) {}

func (s *Socket) readRaw(fd uintptr) bool {
	b := s.rx
	for s.rxN < rxBatchLen {
		n, from, err := syscall.Recvfrom(int(fd), b.bufs[s.rxN][:], syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if !isAgain(err) {
				s.ioErr = err
			}
			return true
		}
		var src netip.AddrPort
		switch sa := from.(type) {
		case *syscall.SockaddrInet4:
			src = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *syscall.SockaddrInet6:
			src = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
		}
		b.pkts[s.rxN] = rxPacket{n: n, src: src}
		s.rxN++
	}
	return true
}

// isAgain reports a non-blocking call that found nothing to do.
func isAgain(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
}
