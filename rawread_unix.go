//go:build unix

package netport

import (
	"net"
	"sync"
	"syscall"
)

// useRawRead switches a socket connection to the readiness read, which
// lends a buffer only once data is there. Only net's own connections, read
// as they are, qualify: for those reading the descriptor is exactly what
// Read does. Any other conn (a wrapper that embeds a *net.TCPConn and has
// consumed bytes, or one whose Read decrypts while its SyscallConn
// exposes the raw socket) is read through its Read; it does not park
// either, since parking waits on the descriptor.
func (c *Conn) useRawRead() {
	if c.nc != c.raw {
		return
	}
	var sc syscall.Conn
	switch nc := c.raw.(type) {
	case *net.TCPConn:
		sc = nc
	case *net.UnixConn:
		sc = nc
	default:
		return
	}
	if rc, err := sc.SyscallConn(); err == nil {
		c.rc = rc
		c.idle.parkable = canPark && c.port != nil
	}
}

// A readOp hands readReady to RawConn.Read with its function bound once:
// pooled, it is held only while a read waits, so a Conn keeps no bound
// method value (a closure, allocated at accept) and no field for it.
type readOp struct {
	c   *Conn
	n   int32 // readReady's result: the bytes read; 0: EOF; below 0: an errno, negated
	run func(fd uintptr) bool
}

var readOps = sync.Pool{New: func() any {
	o := new(readOp)
	o.run = o.ready
	return o
}}

func (o *readOp) ready(fd uintptr) (done bool) {
	o.n, done = o.c.readReady(fd)
	return done
}

// rawRead waits for the socket to be readable and reads it (readReady).
// It returns the bytes read, 0 for EOF, or an errno negated, and the
// error of the wait.
func (c *Conn) rawRead() (int32, error) {
	o := readOps.Get().(*readOp)
	o.c = c
	err := c.rc.Read(o.run)
	n := o.n
	o.c = nil
	readOps.Put(o)
	return n, err
}

// readReady is called by the poller whenever the socket may be readable.
// It takes a buffer only for a read that finds data, and gives it back
// before the goroutine parks again. It reports whether the read is done,
// and then its result as rawRead returns it.
func (c *Conn) readReady(fd uintptr) (int32, bool) {
	b := c.getBuf()
	for {
		n, err := recvNonblock(int(fd), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.putBuf()
			if c.idle.parkable {
				c.waiting()
			}
			return 0, false
		}
		if c.blockedAt.Load() != 0 {
			c.blockedAt.Store(0)
		}
		if err != 0 {
			return -int32(err), true // read turns it into the error
		}
		return int32(n), true // 0: EOF
	}
}

// readErrno is syscall.Read with its error as a bare Errno (0 for none);
// syscall.Read fails with nothing else.
func readErrno(fd int, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(fd, b)
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = syscall.EIO
		}
		return n, errno
	}
	return n, 0
}
