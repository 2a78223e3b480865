package sip

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// enableRecvTimestamps asks the kernel to stamp each datagram with its
// receive time (SO_TIMESTAMPNS).
func enableRecvTimestamps(c *net.UDPConn) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		})
	}
}

// queueDelay is how long a datagram waited in the socket: now minus the
// kernel's receive stamp in oob (0 without one, or for a clock step).
func queueDelay(oob []byte) time.Duration {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < syscall.SizeofCmsghdr || n > len(oob) {
			return 0
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS && n-syscall.SizeofCmsghdr >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[syscall.SizeofCmsghdr]))
			d := time.Since(time.Unix(0, ts.Nano()))
			if d < 0 || d > time.Minute {
				return 0
			}
			return d
		}
		const align = int(unsafe.Sizeof(uintptr(0)))
		if n = (n + align - 1) &^ (align - 1); n > len(oob) {
			return 0
		}
		oob = oob[n:]
	}
	return 0
}

const kernelStamps = true
