//go:build linux

package netport

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// adoptTimeout bounds every wait in these tests.
const adoptTimeout = 10 * time.Second

// filer is implemented by net's sockets, which hand out their descriptor.
type filer interface{ File() (*os.File, error) }

// fdOf returns the descriptor f holds; f stays its owner.
func fdOf(f *os.File) int { return int(f.Fd()) }

func loopback4() syscall.Sockaddr { return &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}} }
func loopback6() syscall.Sockaddr { return &syscall.SockaddrInet6{Addr: [16]byte{15: 1}} }

// rawSocket returns a close-on-exec socket made with syscall.Socket, bound
// to sa unless sa is nil, listening when listen is true. It is closed when
// the test ends.
func rawSocket(tb testing.TB, family, sotype int, sa syscall.Sockaddr, listen bool) *os.File {
	tb.Helper()
	s, err := syscall.Socket(family, sotype|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("socket(%s, %s): %v", familyName(family), typeName(sotype), err)
	}
	f := os.NewFile(uintptr(s), "test socket")
	tb.Cleanup(func() { f.Close() })
	if sa != nil {
		if err := syscall.Bind(s, sa); err != nil {
			tb.Fatalf("bind: %v", err)
		}
	}
	if listen {
		if err := syscall.Listen(s, 8); err != nil {
			tb.Fatalf("listen: %v", err)
		}
	}
	return f
}

// netFile returns a duplicate of a fresh net socket listening (or, for a
// datagram network, bound) on address, and its address. The net value is
// closed at once (without unlinking a unix socket file); the file is
// closed when the test ends.
func netFile(tb testing.TB, network, address string) (*os.File, net.Addr) {
	tb.Helper()
	var c io.Closer
	var addr net.Addr
	switch network {
	case "udp4", "udp6", "unixgram":
		pc, err := net.ListenPacket(network, address)
		if err != nil {
			tb.Fatalf("ListenPacket(%q, %q): %v", network, address, err)
		}
		c, addr = pc, pc.LocalAddr()
	default:
		ln, err := net.Listen(network, address)
		if err != nil {
			tb.Fatalf("Listen(%q, %q): %v", network, address, err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		c, addr = ln, ln.Addr()
	}
	f, err := c.(filer).File()
	c.Close()
	if err != nil {
		tb.Fatalf("File: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f, addr
}

// testAddress returns an address to listen on for network: a port 0 on
// loopback, or a path in a fresh temporary directory. It skips an IPv6
// network on a machine without IPv6.
func testAddress(tb testing.TB, network string) string {
	tb.Helper()
	switch network {
	case "tcp4", "udp4":
		return "127.0.0.1:0"
	case "tcp6", "udp6":
		skipWithoutIPv6(tb)
		return "[::1]:0"
	}
	return filepath.Join(tb.TempDir(), "sock")
}

// familyOf returns the address family of a network name.
func familyOf(network string) int {
	switch {
	case strings.HasSuffix(network, "4"):
		return unix.AF_INET
	case strings.HasSuffix(network, "6"):
		return unix.AF_INET6
	}
	return unix.AF_UNIX
}

// adopters are the three adopt calls, with their results as io.Closer,
// indexed by socketKind.
var adopters = []struct {
	kind  socketKind
	name  string
	adopt func(fd, family int) (io.Closer, error)
}{
	{listenerKind, "listener", func(fd, family int) (io.Closer, error) { return adoptListener(fd, family) }},
	{connKind, "conn", func(fd, family int) (io.Closer, error) { return adoptConn(fd, family) }},
	{packetKind, "packet", func(fd, family int) (io.Closer, error) { return adoptPacketConn(fd, family) }},
}

// publicAdopters are the exported Adopt calls, in the same order: what
// users call must refuse the same descriptors, and their ports must close
// only their duplicate.
var publicAdopters = []struct {
	kind  socketKind
	name  string
	adopt func(fd, family int) (io.Closer, error)
}{
	{listenerKind, "AdoptStreamPort", func(fd, family int) (io.Closer, error) {
		return AdoptStreamPort(fd, family, newEchoFactory())
	}},
	{connKind, "AdoptStreamConnection", func(fd, family int) (io.Closer, error) {
		c, err := AdoptStreamConnection(fd, family, newEchoFactory())
		if err != nil {
			return nil, err
		}
		return connCloser{c}, nil
	}},
	{packetKind, "AdoptDatagramPort", func(fd, family int) (io.Closer, error) {
		return AdoptDatagramPort(fd, family, &dgCounter{}, 0)
	}},
}

// connCloser ends an adopted connection and waits for it.
type connCloser struct{ c *Conn }

func (cc connCloser) Close() error {
	cc.c.AbortConnection()
	<-cc.c.Done()
	return nil
}

// dgCounter is the smallest datagram protocol; each call gets its own.
type dgCounter struct{ n int }

func (d *dgCounter) DatagramReceived([]byte, net.Addr) { d.n++ }

// An adoptErrorCase is a descriptor the adopt calls must refuse.
type adoptErrorCase struct {
	name   string
	kinds  []socketKind // the calls that refuse it; nil: all three
	ipv6   bool
	fd     func(testing.TB) int
	family int
	want   error  // matched with errors.Is
	not    error  // must not match, to check the order of the checks
	msg    string // in the message
}

// rawFD returns a function making a socket with rawSocket, bound to the
// address sa returns unless sa is nil.
func rawFD(family, sotype int, sa func() syscall.Sockaddr, listen bool) func(testing.TB) int {
	return func(tb testing.TB) int {
		var addr syscall.Sockaddr
		if sa != nil {
			addr = sa()
		}
		return fdOf(rawSocket(tb, family, sotype, addr, listen))
	}
}

// netFD returns a function making a socket with netFile.
func netFD(network string) func(testing.TB) int {
	return func(tb testing.TB) int {
		f, _ := netFile(tb, network, testAddress(tb, network))
		return fdOf(f)
	}
}

// adoptErrorCases are the descriptors each adopt call must refuse.
var adoptErrorCases = []adoptErrorCase{
	{name: "unknown family", fd: closedFD, family: 1<<16 + 7,
		want: ErrUnsupportedAddressFamily, not: syscall.EBADF, msg: "65543"},
	{name: "closed descriptor", fd: closedFD, family: unix.AF_INET, want: syscall.EBADF},
	{name: "pipe", fd: pipeFD, family: unix.AF_INET, want: syscall.ENOTSOCK},
	{name: "regular file", fd: tempFileFD, family: unix.AF_UNIX, want: syscall.ENOTSOCK},
	{name: "udp socket", kinds: []socketKind{listenerKind, connKind}, family: unix.AF_INET,
		want: ErrUnsupportedSocketType, msg: "SOCK_DGRAM", fd: rawFD(unix.AF_INET, unix.SOCK_DGRAM, loopback4, false)},
	{name: "tcp socket", kinds: []socketKind{packetKind}, family: unix.AF_INET,
		want: ErrUnsupportedSocketType, msg: "SOCK_STREAM", fd: netFD("tcp4")},
	{name: "type before family", kinds: []socketKind{listenerKind}, family: unix.AF_INET,
		want: ErrUnsupportedSocketType, not: ErrAddressFamilyMismatch, fd: rawFD(unix.AF_UNIX, unix.SOCK_DGRAM, nil, false)},
	{name: "unix socket declared AF_INET", kinds: []socketKind{listenerKind, connKind}, family: unix.AF_INET,
		want: ErrAddressFamilyMismatch, msg: "declared AF_INET, socket is AF_UNIX", fd: netFD("unix")},
	{name: "unixgram socket declared AF_INET6", kinds: []socketKind{packetKind}, family: unix.AF_INET6,
		want: ErrAddressFamilyMismatch, msg: "declared AF_INET6, socket is AF_UNIX",
		fd: rawFD(unix.AF_UNIX, unix.SOCK_DGRAM, nil, false)},
	{name: "IPv6 socket declared AF_INET", kinds: []socketKind{listenerKind, connKind}, ipv6: true,
		family: unix.AF_INET, want: ErrAddressFamilyMismatch, msg: "declared AF_INET, socket is AF_INET6",
		fd: rawFD(unix.AF_INET6, unix.SOCK_STREAM, loopback6, true)},
	{name: "udp6 socket declared AF_INET", kinds: []socketKind{packetKind}, ipv6: true,
		family: unix.AF_INET, want: ErrAddressFamilyMismatch, msg: "declared AF_INET, socket is AF_INET6",
		fd: rawFD(unix.AF_INET6, unix.SOCK_DGRAM, loopback6, false)},
	{name: "family before listening", kinds: []socketKind{listenerKind}, family: unix.AF_INET,
		want: ErrAddressFamilyMismatch, not: ErrNotListening, fd: rawFD(unix.AF_UNIX, unix.SOCK_STREAM, nil, false)},
	{name: "bound, not listening", kinds: []socketKind{listenerKind}, family: unix.AF_INET,
		want: ErrNotListening, msg: "127.0.0.1:", fd: rawFD(unix.AF_INET, unix.SOCK_STREAM, loopback4, false)},
	{name: "listening socket as connection", kinds: []socketKind{connKind}, family: unix.AF_INET,
		want: syscall.ENOTCONN, fd: rawFD(unix.AF_INET, unix.SOCK_STREAM, loopback4, true)},
	{name: "unconnected socket", kinds: []socketKind{connKind}, family: unix.AF_UNIX,
		want: syscall.ENOTCONN, fd: rawFD(unix.AF_UNIX, unix.SOCK_STREAM, nil, false)},
}

// TestAdoptErrors checks each refusal, then that 200 more of them leave
// no descriptor open.
func TestAdoptErrors(t *testing.T) {
	for _, tc := range adoptErrorCases {
		for _, a := range append(adopters[:len(adopters):len(adopters)], publicAdopters...) {
			if tc.kinds == nil || slices.Contains(tc.kinds, a.kind) {
				t.Run(tc.name+"/"+a.name, func(t *testing.T) { testAdoptError(t, tc, a.kind, a.adopt) })
			}
		}
	}
}

// testAdoptError runs one case of TestAdoptErrors on one adopt call.
func testAdoptError(t *testing.T, tc adoptErrorCase, kind socketKind, adopt func(fd, family int) (io.Closer, error)) {
	if tc.ipv6 {
		skipWithoutIPv6(t)
	}
	fd := tc.fd(t)
	before := countFDs(t)
	c, err := adopt(fd, tc.family)
	if err == nil {
		c.Close()
		t.Fatalf("adopt(%d, %d) succeeded; want an error matching %v", fd, tc.family, tc.want)
	}
	if !errors.Is(err, tc.want) {
		t.Errorf("got %v; want an error matching %v", err, tc.want)
	}
	if tc.not != nil && errors.Is(err, tc.not) {
		t.Errorf("got %v; want no error matching %v", err, tc.not)
	}
	if !strings.Contains(err.Error(), tc.msg) {
		t.Errorf("got %q; want it to contain %q", err, tc.msg)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("got %T; want a *net.OpError", err)
	}
	if wantNet := networkName(tc.family, kind.sotype()); oe.Op != "adopt" || oe.Net != wantNet {
		t.Errorf("got Op %q, Net %q; want %q, %q", oe.Op, oe.Net, "adopt", wantNet)
	}
	for range 200 {
		if c, err := adopt(fd, tc.family); err == nil {
			c.Close()
			t.Fatalf("adopt(%d, %d) succeeded; want an error", fd, tc.family)
		}
	}
	// Fewer is no leak: the runtime's finalizers close descriptors that
	// earlier tests left to the garbage collector (splice pipes).
	if after := countFDs(t); after > before {
		t.Errorf("got %d open descriptors after 201 failed calls; want at most %d", after, before)
	}
}

// pingPong sends "ping" from a to b and "pong" back.
func pingPong(tb testing.TB, a, b net.Conn) {
	tb.Helper()
	deadline := time.Now().Add(adoptTimeout)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	for _, m := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "ping"}, {b, a, "pong"}} {
		if _, err := m.from.Write([]byte(m.msg)); err != nil {
			tb.Fatalf("write: %v", err)
		}
		buf := make([]byte, len(m.msg))
		if _, err := io.ReadFull(m.to, buf); err != nil {
			tb.Fatalf("read: %v", err)
		}
		if string(buf) != m.msg {
			tb.Fatalf("got %q; want %q", buf, m.msg)
		}
	}
}

// TestAdoptStreamRoundTrip adopts a listener, closes the original, accepts
// a client on the adopted listener, hands that connection over in turn to
// adoptConn, closes it, and talks to the client through the adopted
// connection.
func TestAdoptStreamRoundTrip(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6", "unix"} {
		t.Run(network, func(t *testing.T) {
			f, addr := netFile(t, network, testAddress(t, network))
			ln, err := adoptListener(fdOf(f), familyOf(network))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			f.Close()
			if got := ln.Addr().String(); got != addr.String() {
				t.Errorf("got address %s; want %s", got, addr)
			}
			c, err := net.DialTimeout(network, addr.String(), adoptTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(adoptTimeout))
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			sf, err := s.(filer).File()
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			ac, err := adoptConn(fdOf(sf), familyOf(network))
			sf.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer ac.Close()
			if network != "unix" && ac.RemoteAddr().String() != c.LocalAddr().String() {
				t.Errorf("got remote address %s; want %s", ac.RemoteAddr(), c.LocalAddr())
			}
			pingPong(t, c, ac)
			ac.Close()
			if n, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("got %d, %v after closing the adopted connection; want 0, EOF", n, err)
			}
		})
	}
}

func TestAdoptPacketConnRoundTrip(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			f, addr := netFile(t, network, testAddress(t, network))
			pc, err := adoptPacketConn(fdOf(f), familyOf(network))
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			f.Close()
			client, err := net.ListenPacket(network, testAddress(t, network))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			deadline := time.Now().Add(adoptTimeout)
			pc.SetDeadline(deadline)
			client.SetDeadline(deadline)
			buf := make([]byte, 16)
			if _, err := client.WriteTo([]byte("ping"), addr); err != nil {
				t.Fatal(err)
			}
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("got %q, %v; want %q, nil", buf[:n], err, "ping")
			}
			if _, err := pc.WriteTo([]byte("pong"), from); err != nil {
				t.Fatal(err)
			}
			if n, _, err = client.ReadFrom(buf); err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("got %q, %v; want %q, nil", buf[:n], err, "pong")
			}
		})
	}
}

// waitReadable waits until fd is readable, failing tb after adoptTimeout.
func waitReadable(tb testing.TB, fd int) {
	tb.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(adoptTimeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			tb.Fatalf("poll: got %d, %v; want the descriptor readable", n, err)
		}
		return
	}
}

// acceptAndClose accepts one connection on the listening socket fd and
// closes it, to show that the socket still accepts.
func acceptAndClose(fd int, _ []byte) (int, error) {
	s, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err == nil {
		unix.Close(s)
	}
	return 0, err
}

// recvOnce reads one datagram from fd into buf.
func recvOnce(fd int, buf []byte) (int, error) {
	n, _, err := unix.Recvfrom(fd, buf, 0)
	return n, err
}

// TestAdoptedCloseKeepsSocket closes an adopted listener or datagram
// socket and checks that the original still serves: no shutdown(2) (after
// which accept fails with EINVAL), no unlink or chmod of a unix socket file.
func TestAdoptedCloseKeepsSocket(t *testing.T) {
	accept, recv := acceptAndClose, recvOnce
	tests := []struct {
		network string
		kind    socketKind
		take    func(fd int, buf []byte) (int, error) // accept or receive on the original
		want    string                                // what take gets after a client sent "ping"
	}{
		{"tcp4", listenerKind, accept, ""},
		{"unix", listenerKind, accept, ""},
		{"udp4", packetKind, recv, "ping"},
		{"unixgram", packetKind, recv, "ping"},
	}
	for _, tc := range tests {
		for _, adopters := range [][]struct {
			kind  socketKind
			name  string
			adopt func(fd, family int) (io.Closer, error)
		}{adopters, publicAdopters} {
			t.Run(tc.network+"/"+adopters[tc.kind].name, func(t *testing.T) {
				testAdoptedCloseKeepsSocket(t, tc.network, adopters[tc.kind].adopt, tc.take, tc.want)
			})
		}
	}
}

// testAdoptedCloseKeepsSocket adopts a fresh socket with adopt, closes
// what it got, and checks that the original descriptor still works: take
// (accept or receive) gives EAGAIN, and after a client sends "ping" it
// gets want.
func testAdoptedCloseKeepsSocket(t *testing.T, network string, adopt func(fd, family int) (io.Closer, error),
	take func(fd int, buf []byte) (int, error), want string) {
	f, addr := netFile(t, network, testAddress(t, network))
	orig := fdOf(f)
	var before os.FileInfo
	if strings.HasPrefix(network, "unix") {
		if err := os.Chmod(addr.String(), 0o640); err != nil {
			t.Fatal(err)
		}
		before, _ = os.Stat(addr.String())
	}
	c, err := adopt(orig, familyOf(network))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(orig, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := take(orig, buf); err != unix.EAGAIN {
		t.Fatalf("on the original after close: got %v; want EAGAIN", err)
	}
	if before != nil {
		if after, err := os.Stat(addr.String()); err != nil || after.Mode() != before.Mode() {
			t.Fatalf("socket file after close: got %v; want mode %v", err, before.Mode())
		}
	}
	dc, err := net.DialTimeout(network, addr.String(), adoptTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if _, err := dc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	waitReadable(t, orig)
	if n, err := take(orig, buf); err != nil || string(buf[:n]) != want {
		t.Fatalf("on the original after a dial: got %q, %v; want %q, nil", buf[:n], err, want)
	}
}

// TestAdoptedDescriptorFlags checks that the adopted descriptor is
// close-on-exec and non-blocking even when the original is neither, and
// that the original's close-on-exec flag is left alone.
func TestAdoptedDescriptorFlags(t *testing.T) {
	for _, a := range adopters {
		t.Run(a.name, func(t *testing.T) {
			var f *os.File
			switch a.kind {
			case listenerKind:
				f = rawSocket(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true)
			case connKind:
				pair, err := syscall.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				f = os.NewFile(uintptr(pair[0]), "pair")
				peer := os.NewFile(uintptr(pair[1]), "peer")
				t.Cleanup(func() { f.Close(); peer.Close() })
			case packetKind:
				f = rawSocket(t, unix.AF_INET, unix.SOCK_DGRAM, loopback4(), false)
			}
			if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetNonblock(fdOf(f), false); err != nil {
				t.Fatal(err)
			}
			family := unix.AF_INET
			if a.kind == connKind {
				family = unix.AF_UNIX
			}
			c, err := a.adopt(fdOf(f), family)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := c.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var fdFlags, flFlags int
			var fdErr, flErr error
			rc.Control(func(fd uintptr) {
				fdFlags, fdErr = unix.FcntlInt(fd, unix.F_GETFD, 0)
				flFlags, flErr = unix.FcntlInt(fd, unix.F_GETFL, 0)
			})
			if fdErr != nil || flErr != nil || fdFlags&unix.FD_CLOEXEC == 0 || flFlags&unix.O_NONBLOCK == 0 {
				t.Errorf("adopted descriptor: got flags %#x, %v and status %#x, %v; want close-on-exec and non-blocking",
					fdFlags, fdErr, flFlags, flErr)
			}
			if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC != 0 {
				t.Errorf("original descriptor flags: got %#x, %v; want close-on-exec left clear", fl, err)
			}
		})
	}
}
