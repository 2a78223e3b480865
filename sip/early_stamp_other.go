//go:build !linux

package sip

import (
	"net"
	"time"
)

// Without kernel receive stamps the read path's receipt time is when it
// read the datagram.
func enableRecvTimestamps(*net.UDPConn) {}

func queueDelay([]byte) time.Duration { return 0 }

const kernelStamps = false

// listenSIPUDP opens a UDP listener for the read path (read through Go's
// poller where there is no blocking listener).
func listenSIPUDP(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }
