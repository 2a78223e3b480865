//go:build linux && (amd64 || arm64)

package media

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"
)

// rxBatchLen is how many packets one recvmmsg(2) takes: a session gets a
// packet a frame, more after a stall or with a short ptime.
const rxBatchLen = 8

// kernelTimestamps: packets carry the kernel receive time, and reading
// allocates nothing.
const kernelTimestamps = true

// rxOOBLen holds one SCM_TIMESTAMPNS control message.
const rxOOBLen = 64

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// rxBatch is an engine worker's receive buffers, shared by its sessions:
// a packet is handled before the next socket is read.
type rxBatch struct {
	msgs  [rxBatchLen]mmsghdr
	iov   [rxBatchLen]syscall.Iovec
	names [rxBatchLen]syscall.RawSockaddrInet6 // room for either family
	oob   [rxBatchLen][rxOOBLen]byte
	bufs  [rxBatchLen][1500]byte
	pkts  [rxBatchLen]rxPacket
	init  bool
}

func (b *rxBatch) prepare() {
	if !b.init {
		for i := range b.msgs {
			h := &b.msgs[i].hdr
			h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
			b.iov[i].Base = &b.bufs[i][0]
			b.iov[i].SetLen(len(b.bufs[i]))
			h.Iov, h.Iovlen = &b.iov[i], 1
			h.Control = &b.oob[i][0]
		}
		b.init = true
	}
	for i := range b.msgs {
		h := &b.msgs[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		h.SetControllen(rxOOBLen)
		h.Flags = 0
	}
}

// enableTimestamps asks the kernel for each packet's receive time
// (SO_TIMESTAMPNS), so arrival and jitter are exact whatever the moment
// the engine reads the socket.
func enableTimestamps(fd int) {
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
}

// readRaw is one recvmmsg(2), non-blocking.
func (s *Socket) readRaw(fd uintptr) bool {
	b := s.rx
	b.prepare()
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), rxBatchLen,
			syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
		case e != 0:
			s.ioErr = e
		default:
			for i := range int(n) {
				b.pkts[i] = rxPacket{n: int(b.msgs[i].n), src: b.source(i), at: b.stamp(i)}
			}
			s.rxN = int(n)
		}
		return true
	}
}

// source decodes packet i's source address.
func (b *rxBatch) source(i int) netip.AddrPort {
	raw := &b.names[i]
	switch raw.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(raw))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr).Unmap(), ntohs(raw.Port))
	}
	return netip.AddrPort{}
}

// stamp finds packet i's SCM_TIMESTAMPNS, 0 if it has none.
func (b *rxBatch) stamp(i int) int64 {
	oob := b.oob[i][:b.msgs[i].hdr.Controllen]
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < syscall.SizeofCmsghdr || uint64(h.Len) > uint64(len(oob)) {
			return 0
		}
		data := oob[syscall.SizeofCmsghdr:h.Len]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS && len(data) >= 16 {
			ts := (*syscall.Timespec)(unsafe.Pointer(&data[0]))
			return ts.Nano()
		}
		oob = oob[cmsgAlign(int(h.Len)):]
	}
	return 0
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}

// ntohs reads a port the kernel wrote in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}
