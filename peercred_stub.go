//go:build !linux

package netport

import "net"

// PeerCredentials returns an error wrapping ErrNotSupported: SO_PEERCRED
// is Linux's.
func PeerCredentials(t Transport) (PeerCred, error) {
	return PeerCred{}, &net.OpError{Op: "peercred", Net: t.LocalAddr().Network(), Addr: t.RemoteAddr(), Err: ErrNotSupported}
}
