//go:build unix

package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// Socket is one UDP socket of an RTP/RTCP pair. It lives outside Go's
// network poller: the media engine (engine.go) reads the sockets of its
// sessions without blocking, once a frame, and a socket in the poller
// would wake an idle thread for every packet that arrives only to find
// nobody waiting. Reads and writes never block: a packet that finds the
// send buffer full is dropped, as a congested network would.
//
// One goroutine at a time may read and one may write (the engine worker
// that runs its session); Close may come from any goroutine, and the
// descriptor stays valid until a read or write in progress returns.
type Socket struct {
	f     *os.File
	rc    syscall.RawConn
	laddr netip.AddrPort
	v6    bool

	// The argument and result of the read or write in progress, so the
	// functions handed to rc (bound once) need no closure per call.
	readFn, writeFn func(fd uintptr) bool
	rx              *rxBatch
	rxN             int
	wbuf            []byte
	sa4             syscall.SockaddrInet4
	sa6             syscall.SockaddrInet6
	ioErr           error
}

// errAddrFamily refuses a destination of the other IP family.
var errAddrFamily = errors.New("media: destination of another address family")

// listenSocket binds a UDP socket to addr.
func listenSocket(addr netip.AddrPort) (*Socket, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	family, sa := syscall.AF_INET, syscall.Sockaddr(&syscall.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()})
	if addr.Addr().Is6() {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := setupSocket(fd, family, addr.Addr(), sa); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	// A blocking descriptor: os.NewFile keeps it out of the poller.
	s := &Socket{f: os.NewFile(uintptr(fd), "udp:"+addr.String()), v6: family == syscall.AF_INET6}
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, err
	}
	if s.laddr, err = boundAddr(fd); err != nil {
		s.f.Close()
		return nil, err
	}
	s.readFn, s.writeFn = s.readRaw, s.writeRaw
	return s, nil
}

// setupSocket binds fd (dual-stack for the IPv6 wildcard, as package net
// does) and asks for receive timestamps where the system has them.
func setupSocket(fd, family int, ip netip.Addr, sa syscall.Sockaddr) error {
	if family == syscall.AF_INET6 && ip.IsUnspecified() {
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	enableTimestamps(fd)
	return nil
}

func boundAddr(fd int) (netip.AddrPort, error) {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("media: socket bound to %T", sa)
}

// LocalAddr is the bound address, as a *net.UDPAddr.
func (s *Socket) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(s.laddr) }

// LocalAddrPort is the bound address.
func (s *Socket) LocalAddrPort() netip.AddrPort { return s.laddr }

// Close closes the socket; reads and writes after it fail with an error
// that errors.Is os.ErrClosed.
func (s *Socket) Close() error { return s.f.Close() }

// WriteTo sends b to dest without blocking. It does not allocate.
func (s *Socket) WriteTo(b []byte, dest netip.AddrPort) error {
	ip := dest.Addr()
	switch {
	case s.v6:
		s.sa6.Addr, s.sa6.Port = ip.As16(), int(dest.Port())
	case ip.Is4() || ip.Is4In6():
		s.sa4.Addr, s.sa4.Port = ip.Unmap().As4(), int(dest.Port())
	default:
		return errAddrFamily
	}
	s.wbuf, s.ioErr = b, nil
	if err := s.rc.Write(s.writeFn); err != nil {
		return err
	}
	return s.ioErr
}

func (s *Socket) writeRaw(fd uintptr) bool {
	var sa syscall.Sockaddr = &s.sa4
	if s.v6 {
		sa = &s.sa6
	}
	for {
		err := syscall.Sendto(int(fd), s.wbuf, syscall.MSG_DONTWAIT, sa)
		if err != syscall.EINTR {
			s.ioErr = err
			return true
		}
	}
}

// read takes the packets waiting on the socket, up to a batch, into b
// without blocking, and returns how many (0: none waiting).
func (s *Socket) read(b *rxBatch) (int, error) {
	s.rx, s.rxN, s.ioErr = b, 0, nil
	err := s.rc.Read(s.readFn)
	s.rx = nil
	if err != nil {
		return 0, err
	}
	return s.rxN, s.ioErr
}

// rxPacket is one packet of a batch: its length, source and the kernel's
// receive time (Unix ns; 0 when the system gives none).
type rxPacket struct {
	n   int
	src netip.AddrPort
	at  int64
}

// data is packet i's bytes.
func (b *rxBatch) data(i int) []byte { return b.bufs[i][:b.pkts[i].n] }
