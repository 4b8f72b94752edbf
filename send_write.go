//go:build unix && !(linux && !race && !386)

package netport

import "syscall"

// sendNoWait is false: writeErrno is write(2), which blocks on a
// descriptor that lost O_NONBLOCK, so the blocking Write does not use it.
const sendNoWait = false

// writeErrno writes to a socket the send queue found writable; see
// send_linux.go. The error is a bare Errno (0 for none).
func writeErrno(fd int, b []byte) (int, syscall.Errno) { return plainWrite(fd, b) }
