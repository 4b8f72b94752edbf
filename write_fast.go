// The blocking Write's first try: one send that cannot block.

package netport

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// A sendOp is one send(2) made through RawConn.Write, with the function
// Write calls bound once, so that the try allocates nothing (a closure
// capturing the buffer and the results would be allocated per Write).
type sendOp struct {
	b     []byte
	n     int
	errno syscall.Errno
	run   func(fd uintptr) bool
}

var sendOps = sync.Pool{New: func() any {
	o := new(sendOp)
	o.run = o.send
	return o
}}

// send offers o.b to the socket once. It always reports true: RawConn
// must not wait for the socket to become writable, since the rest goes
// through the connection's own Write, under its deadline.
func (o *sendOp) send(fd uintptr) bool {
	for {
		n, errno := writeErrno(int(fd), o.b)
		if errno == syscall.EINTR {
			continue
		}
		if errno == syscall.EAGAIN {
			errno = 0
		}
		o.n, o.errno = n, errno
		return true
	}
}

// writeFirst offers b to the socket without waiting, before the blocking
// Write: a socket that takes it whole needs no deadline and no trip
// through the scheduler's system-call hand-off, which is most of what
// net's Write costs above the kernel's own work. It reports how many
// bytes were sent, and an error (the connection then fails) only for a
// send the socket refused; on an error of the raw connection itself (a
// passed deadline, a closed descriptor) nothing was sent and the
// blocking Write reports it as before.
//
// Only where it is exactly a Write: net's own socket types read through
// the readiness read (c.rc set: not TLS, not a wrapper), and only where
// the send cannot block (sendNoWait). Called with wmu held.
func (c *Conn) writeFirst(b []byte) (int, error) {
	if !sendNoWait || c.rc == nil || len(b) == 0 {
		return 0, nil
	}
	o := sendOps.Get().(*sendOp)
	o.b, o.n, o.errno = b, 0, 0
	err := c.rc.Write(o.run)
	n, errno := o.n, o.errno
	o.b = nil
	sendOps.Put(o)
	if err != nil {
		return 0, nil
	}
	if errno != 0 {
		return 0, c.netWriteError(errno)
	}
	return n, nil
}

// netWriteError is the error net's Write returns for errno, field for
// field, so that a caller (and ConnectionLost's reason) sees the same
// error whichever way the bytes were sent. A reset is reported once by
// the socket, so the blocking Write cannot simply be asked again.
func (c *Conn) netWriteError(errno syscall.Errno) error {
	return &net.OpError{Op: "write", Net: netOf(c.raw), Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: os.NewSyscallError("write", errno)}
}

// netOf returns the network name net records in nc's errors: the
// listener's ("tcp4" from Listen("tcp4", ...)), or "" for a socket that
// came from a file. net does not export it, but its errors carry it: it
// is read from an error that a call with no effect on the socket
// returns. Only for a failing Write, so the cost does not matter.
func netOf(nc net.Conn) string {
	var err error
	switch c := nc.(type) {
	case *net.TCPConn:
		// The limit keeps io.Copy's buffer at one byte.
		_, err = c.ReadFrom(&io.LimitedReader{R: failReader{}, N: 1})
	case *net.UnixConn:
		_, err = c.WriteToUnix(nil, nil)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Net
	}
	return nc.LocalAddr().Network()
}

// failReader fails every Read without reading anything.
type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errFailReader }

var errFailReader = errors.New("netport: no read")
