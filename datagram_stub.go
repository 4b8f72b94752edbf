//go:build !darwin && !freebsd && !linux && !netbsd && !openbsd

package netport

import "net"

// datagramCanReadMsg reports false: here every read uses a buffer one byte
// longer than the largest datagram to detect truncation.
func datagramCanReadMsg(pc net.PacketConn) bool { return false }

// datagramReadMsg is never called where datagramCanReadMsg is false.
func datagramReadMsg(pc net.PacketConn, buf []byte) (int, net.Addr, bool, error) {
	return 0, nil, false, &net.OpError{Op: "read", Net: "datagram", Err: ErrNotSupported}
}
