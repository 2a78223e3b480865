package sip

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// blockingUDP is a SIP UDP listener whose reads are blocking system calls
// on the read path's own thread, outside Go's network poller. Under
// overload a goroutine parked in the poller is woken only when the
// scheduler next polls the network (sysmon does every 10 ms when every P
// is busy) and then waits its turn; a thread blocked in recvmsg(2) is
// woken by the kernel the moment a datagram arrives, so refusals go out
// sooner. Writes (sipgo's answers) are sendto(2) on the same socket.
type blockingUDP struct {
	fd     int
	laddr  *net.UDPAddr
	v6     bool
	mu     sync.RWMutex // writes and reads hold it shared, Close exclusively
	closed atomic.Bool
}

// blockingPoll bounds a read, so Close is noticed this soon.
const blockingPoll = 200 * time.Millisecond

func listenBlockingUDP(addr string) (*blockingUDP, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	ap := ua.AddrPort()
	ip := ap.Addr().Unmap()
	family, sa := syscall.AF_INET, syscall.Sockaddr(&syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()})
	if ip.Is6() || (ua.IP == nil) {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if family == syscall.AF_INET6 && (ua.IP == nil || ip.IsUnspecified()) {
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, listenerBuffer)
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	tv := syscall.NsecToTimeval(blockingPoll.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	b := &blockingUDP{fd: fd, v6: family == syscall.AF_INET6}
	local, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	b.laddr = udpAddrOf(local)
	return b, nil
}

func udpAddrOf(sa syscall.Sockaddr) *net.UDPAddr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)))
	case *syscall.SockaddrInet6:
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)))
	}
	return &net.UDPAddr{}
}

// recv waits for the next datagram (its bytes in buf, control messages in
// oob); it fails with net.ErrClosed once the socket is closed.
func (b *blockingUDP) recv(buf, oob []byte) (int, int, netip.AddrPort, error) {
	for {
		if b.closed.Load() {
			return 0, 0, netip.AddrPort{}, net.ErrClosed
		}
		b.mu.RLock()
		n, oobn, _, from, err := syscall.Recvmsg(b.fd, buf, oob, 0)
		b.mu.RUnlock()
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			continue // the poll timeout: look at closed again
		case err != nil:
			return 0, 0, netip.AddrPort{}, os.NewSyscallError("recvmsg", err)
		}
		return n, oobn, udpAddrOf(from).AddrPort(), nil
	}
}

func (b *blockingUDP) ReadFrom(p []byte) (int, net.Addr, error) {
	n, _, src, err := b.recv(p, nil)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(src), nil
}

// WriteTo sends p without blocking (a full send buffer drops it, as the
// network would).
func (b *blockingUDP) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("sip: not a UDP address")
	}
	ap := ua.AddrPort()
	var sa syscall.Sockaddr
	if b.v6 {
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	} else if ip := ap.Addr().Unmap(); ip.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	} else {
		return 0, errors.New("sip: an IPv6 destination on an IPv4 socket")
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed.Load() {
		return 0, net.ErrClosed
	}
	if err := syscall.Sendto(b.fd, p, syscall.MSG_DONTWAIT, sa); err != nil {
		return 0, os.NewSyscallError("sendto", err)
	}
	return len(p), nil
}

// Close stops reads (within blockingPoll) and writes, then closes the
// descriptor once no call is using it.
func (b *blockingUDP) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return syscall.Close(b.fd)
}

func (b *blockingUDP) LocalAddr() net.Addr { return b.laddr }

func (b *blockingUDP) SetDeadline(time.Time) error      { return nil }
func (b *blockingUDP) SetReadDeadline(time.Time) error  { return nil }
func (b *blockingUDP) SetWriteDeadline(time.Time) error { return nil }

// listenSIPUDP opens a UDP listener for the read path.
func listenSIPUDP(addr string) (net.PacketConn, error) { return listenBlockingUDP(addr) }
