//go:build unix && !(linux && !race && !386)

package netport

import "syscall"

// writeErrno writes to a socket the send queue found writable; see
// send_linux.go. The error is a bare Errno (0 for none).
func writeErrno(fd int, b []byte) (int, syscall.Errno) { return plainWrite(fd, b) }
