//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import (
	"context"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxBacklog asks listen(2) for the system maximum: every Unix caps a
// larger backlog at its own limit (net.core.somaxconn on Linux,
// kern.ipc.somaxconn on macOS and FreeBSD, kern.somaxconn on OpenBSD and
// NetBSD), as listen(2) on each says.
const maxBacklog = 1<<16 - 1

// listenStream makes a fresh listening stream socket. file is the socket
// file this call created, to be removed when the port closes.
func (c *Config) listenStream(network, address string) (ln net.Listener, file *socketFile, err error) {
	if network == "unix" {
		return c.listenUnix(address)
	}
	var lc net.ListenConfig
	if c != nil && c.ReusePort {
		lc.Control = setReusePort
	}
	ln, err = lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, nil, err
	}
	if b := c.backlog(); b != maxBacklog {
		// net.Listen always asks for the maximum; listen(2) on a listening
		// socket only changes its backlog, so the setting still reaches the
		// kernel before the port accepts anything.
		if err := relisten(ln.(*net.TCPListener), b); err != nil {
			ln.Close()
			return nil, nil, &net.OpError{Op: "listen", Net: network, Addr: ln.Addr(), Err: err}
		}
	}
	return ln, nil, nil
}

func (c *Config) backlog() int {
	if c == nil || c.Backlog <= 0 {
		return maxBacklog
	}
	return c.Backlog
}

func relisten(l syscall.Conn, backlog int) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = unix.Listen(int(fd), backlog) }); err != nil {
		return err
	}
	return os.NewSyscallError("listen", lerr)
}

func setReusePort(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
}

// testHookBeforeListen, when not nil, is called by listenUnix with the
// socket's path between bind(2) (and the chmod) and listen(2). It is for
// tests only, which check there that the file already has its mode; it is
// nil in production.
var testHookBeforeListen func(path string)

// listenUnix builds the socket step by step so that UnixMode is set between
// bind(2) and listen(2): no client can connect while the file still has the
// mode the umask gave it.
func (c *Config) listenUnix(address string) (net.Listener, *socketFile, error) {
	addr := &net.UnixAddr{Name: address, Net: "unix"}
	fail := func(err error) (net.Listener, *socketFile, error) {
		return nil, nil, &net.OpError{Op: "listen", Net: "unix", Addr: addr, Err: err}
	}
	if address == "" {
		return fail(os.NewSyscallError("bind", syscall.EINVAL))
	}
	fd, err := newSocket(unix.AF_UNIX, unix.SOCK_STREAM)
	if err != nil {
		return fail(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: address}); err != nil {
		unix.Close(fd)
		return fail(os.NewSyscallError("bind", err))
	}
	// From here the file is ours: it is removed on every error path.
	file, err := boundSocketFile(address, c.unixMode())
	if err != nil {
		unix.Close(fd)
		return fail(err)
	}
	if testHookBeforeListen != nil {
		testHookBeforeListen(address)
	}
	if err := unix.Listen(fd, c.backlog()); err != nil {
		unix.Close(fd)
		file.remove()
		return fail(os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), address)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		file.remove()
		return fail(err)
	}
	return ln, file, nil
}

// reserveFD opens a spare descriptor that the accept loop frees when the
// process runs out, so that it can accept and close queued clients.
func reserveFD() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

func releaseFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// dupFile duplicates a socket into an *os.File. os.NewFile on a
// non-blocking descriptor keeps Fd from switching it to blocking mode,
// which would also block the port's own socket: both share one open file
// description.
func dupFile(sc syscall.Conn, name string) (*os.File, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	return os.NewFile(uintptr(nfd), name), nil
}
