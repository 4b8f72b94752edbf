//go:build !unix

package netport

import (
	"net"
	"syscall"
)

// rawSendConn returns nil where there is no write that cannot block:
// every queued Write goes through the flusher.
func rawSendConn(net.Conn) syscall.RawConn { return nil }

func (s *sendState) writeNow(uintptr) bool { return true }

// sendNoWait is false: there is no write that cannot block.
const sendNoWait = false

func writeErrno(int, []byte) (int, syscall.Errno) { return 0, syscall.EINVAL }
