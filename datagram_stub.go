//go:build !linux

package netport

import (
	"net"
	"syscall"
)

// datagramCanReadMsg reports false: outside Linux every read uses a buffer
// one byte longer than the largest datagram to detect truncation.
func datagramCanReadMsg(pc net.PacketConn) bool { return false }

// datagramReadMsg is never called outside Linux.
func datagramReadMsg(pc net.PacketConn, buf []byte) (int, net.Addr, bool, error) {
	return 0, nil, false, &net.OpError{Op: "read", Net: "datagram", Err: ErrNotSupported}
}

// setReusePort refuses Config.ReusePort outside Linux.
func setReusePort(network, address string, rc syscall.RawConn) error {
	return ErrNotSupported
}
