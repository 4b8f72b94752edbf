//go:build freebsd || linux || openbsd

package netport

import "golang.org/x/sys/unix"

// soDomain is the socket option that tells a socket's address family.
const soDomain = unix.SO_DOMAIN

// tcpListenState reports ok false: these systems answer SO_ACCEPTCONN, so
// the TCP state is not needed.
func tcpListenState(s int) (listening, ok bool) { return false, false }
