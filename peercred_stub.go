//go:build !darwin && !freebsd && !linux && !netbsd && !openbsd

package netport

import "net"

// PeerCredentials returns the pid, uid and gid of the peer of a unix
// socket connection on Linux, macOS, FreeBSD, OpenBSD and NetBSD. On this
// system it always returns a *net.OpError wrapping ErrNotSupported: the
// kernel offers no peer credentials netport can read.
func PeerCredentials(t Transport) (PeerCred, error) {
	return PeerCred{}, &net.OpError{Op: "peercred", Net: t.LocalAddr().Network(), Addr: t.RemoteAddr(), Err: ErrNotSupported}
}
