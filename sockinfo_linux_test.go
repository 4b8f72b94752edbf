package netport

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The systems without SO_DOMAIN (macOS, NetBSD) or SO_ACCEPTCONN (macOS)
// take another path through sockinfo_unix.go. These tests run that path
// on Linux, where the options give the right answer to compare with.

// withoutSocketOptions makes socketFamily and socketListening behave as on
// macOS, which has neither SO_DOMAIN nor SO_ACCEPTCONN, until the test ends.
func withoutSocketOptions(tb testing.TB) {
	tb.Helper()
	domain, acceptConn := optDomain, optAcceptConn
	optDomain, optAcceptConn = 0, 0
	tb.Cleanup(func() { optDomain, optAcceptConn = domain, acceptConn })
}

// connectedPair returns the two ends of a connected unix socket pair of
// type sotype, closed when the test ends.
func connectedPair(tb testing.TB, sotype int) (int, int) {
	tb.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("socketpair: %v", err)
	}
	tb.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// acceptedTCP returns the accepted end of a loopback TCP connection.
func acceptedTCP(tb testing.TB) int {
	tb.Helper()
	ln := fdOf(rawSocket(tb, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true))
	sa, err := unix.Getsockname(ln)
	if err != nil {
		tb.Fatal(err)
	}
	c := fdOf(rawSocket(tb, unix.AF_INET, unix.SOCK_STREAM, nil, false))
	if err := unix.Connect(c, sa); err != nil {
		tb.Fatalf("connect: %v", err)
	}
	s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		tb.Fatalf("accept: %v", err)
	}
	tb.Cleanup(func() { unix.Close(s) })
	return s
}

// probeSockets are sockets of every kind an adopt call may meet; bound
// marks a stream socket that was bound and then neither connected nor
// listened on.
var probeSockets = []struct {
	name  string
	ipv6  bool
	bound bool
	fd    func(testing.TB) int
}{
	{name: "tcp4 listening", fd: netFD("tcp4")},
	{name: "tcp6 listening", ipv6: true, fd: netFD("tcp6")},
	{name: "tcp4 unbound", fd: rawFD(unix.AF_INET, unix.SOCK_STREAM, nil, false)},
	{name: "tcp6 unbound", ipv6: true, fd: rawFD(unix.AF_INET6, unix.SOCK_STREAM, nil, false)},
	{name: "tcp4 bound", bound: true, fd: rawFD(unix.AF_INET, unix.SOCK_STREAM, loopback4, false)},
	{name: "tcp4 accepted", fd: acceptedTCP},
	{name: "udp4 bound", fd: netFD("udp4")},
	{name: "udp6 unbound", ipv6: true, fd: rawFD(unix.AF_INET6, unix.SOCK_DGRAM, nil, false)},
	{name: "unix listening", fd: netFD("unix")},
	{name: "unix unbound", fd: rawFD(unix.AF_UNIX, unix.SOCK_STREAM, nil, false)},
	{name: "unix pair", fd: func(tb testing.TB) int { a, _ := connectedPair(tb, unix.SOCK_STREAM); return a }},
	{name: "unixgram bound", fd: netFD("unixgram")},
	{name: "unixpacket pair", fd: func(tb testing.TB) int { a, _ := connectedPair(tb, unix.SOCK_SEQPACKET); return a }},
}

func TestSocknameFamilyAgreesWithSODomain(t *testing.T) {
	for _, tc := range probeSockets {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ipv6 {
				skipWithoutIPv6(t)
			}
			fd := tc.fd(t)
			want, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := socknameFamily(fd); got != want || err != nil {
				t.Errorf("socknameFamily = %s, %v; want %s (SO_DOMAIN), nil", familyName(got), err, familyName(want))
			}
		})
	}
}

func TestSocknameFamilyOfAnotherFamily(t *testing.T) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Skipf("no netlink socket: %v", err)
	}
	defer unix.Close(s)
	if _, err := socknameFamily(s); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("socknameFamily(netlink) = %v; want an error wrapping EAFNOSUPPORT", err)
	}
	withoutSocketOptions(t)
	pc, err := adoptPacketConn(s, unix.AF_INET)
	if err == nil {
		pc.Close()
		t.Fatal("adoptPacketConn(netlink, AF_INET) succeeded; want ErrAddressFamilyMismatch")
	}
	if !errors.Is(err, ErrAddressFamilyMismatch) || !strings.Contains(err.Error(), "declared AF_INET, socket is of another family") {
		t.Errorf("got %v; want ErrAddressFamilyMismatch naming AF_INET and another family", err)
	}
}

func TestListeningWithoutAcceptConnAgrees(t *testing.T) {
	for _, tc := range probeSockets {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ipv6 {
				skipWithoutIPv6(t)
			}
			fd := tc.fd(t)
			sotype, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			if err != nil {
				t.Fatal(err)
			}
			v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			if err != nil {
				t.Fatal(err)
			}
			// The one documented miss: a bound stream socket that never
			// listened is taken as listening.
			want := v != 0 || tc.bound
			if got, err := listeningWithoutAcceptConn(fd, sotype); got != want || err != nil {
				t.Errorf("listeningWithoutAcceptConn = %v, %v; want %v, nil (SO_ACCEPTCONN %d)", got, err, want, v)
			}
		})
	}
}

// TestAdoptWithoutSocketOptions runs adoption and Inspect as on macOS:
// every refusal but the documented one, and every round trip.
func TestAdoptWithoutSocketOptions(t *testing.T) {
	withoutSocketOptions(t)
	cases := []adoptErrorCase{
		{name: "unbound tcp4, not listening", kinds: []socketKind{listenerKind}, family: unix.AF_INET,
			want: ErrNotListening, fd: rawFD(unix.AF_INET, unix.SOCK_STREAM, nil, false)},
		{name: "unbound unix, not listening", kinds: []socketKind{listenerKind}, family: unix.AF_UNIX,
			want: ErrNotListening, fd: rawFD(unix.AF_UNIX, unix.SOCK_STREAM, nil, false)},
	}
	for _, tc := range adoptErrorCases {
		if tc.name != "bound, not listening" { // taken as listening here (listeningWithoutAcceptConn)
			cases = append(cases, tc)
		}
	}
	for _, tc := range cases {
		for _, a := range append(adopters[:len(adopters):len(adopters)], publicAdopters...) {
			if tc.kinds == nil || slices.Contains(tc.kinds, a.kind) {
				t.Run(tc.name+"/"+a.name, func(t *testing.T) { testAdoptError(t, tc, a.kind, a.adopt) })
			}
		}
	}
	for _, tc := range probeSockets {
		t.Run("Inspect/"+tc.name, func(t *testing.T) {
			if tc.ipv6 {
				skipWithoutIPv6(t)
			}
			fd := tc.fd(t)
			got, err := Inspect(fd)
			optDomain, optAcceptConn = soDomain, unix.SO_ACCEPTCONN
			want, werr := Inspect(fd)
			optDomain, optAcceptConn = 0, 0
			if werr != nil {
				t.Fatal(werr)
			}
			want.Listening = want.Listening || tc.bound // the documented miss
			if got != want || err != nil {
				t.Errorf("got %+v, %v; want %+v, nil", got, err, want)
			}
		})
	}
	t.Run("StreamRoundTrip", TestAdoptStreamRoundTrip)
	t.Run("PacketConnRoundTrip", TestAdoptPacketConnRoundTrip)
	t.Run("PortServes", TestAdoptStreamPortServesLikeAFreshPort)
}

// TestGetsockoptWordsReadsPeerCred reads SO_PEERCRED the way OpenBSD's and
// NetBSD's credentials are read, and compares it with x/sys's Ucred.
func TestGetsockoptWordsReadsPeerCred(t *testing.T) {
	a, _ := connectedPair(t, unix.SOCK_STREAM)
	ucred, err := unix.GetsockoptUcred(a, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		t.Fatal(err)
	}
	w, err := getsockoptWords(a, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		t.Fatalf("getsockoptWords: %v", err)
	}
	// Linux's struct ucred is pid, uid, gid; the rest stays zero.
	want := [8]uint32{uint32(ucred.Pid), ucred.Uid, ucred.Gid}
	if w != want {
		t.Errorf("getsockoptWords = %v; want %v", w, want)
	}
	if int(ucred.Pid) != os.Getpid() {
		t.Errorf("peer pid %d; want %d", ucred.Pid, os.Getpid())
	}
	if _, err := getsockoptWords(pipeFD(t), unix.SOL_SOCKET, unix.SO_PEERCRED); !errors.Is(err, syscall.ENOTSOCK) {
		t.Errorf("getsockoptWords(pipe) = %v; want ENOTSOCK", err)
	}
}

// TestRecvDontwait checks the read of the BSDs and macOS: data, nothing
// yet, end of stream, and a descriptor that is not a socket.
func TestRecvDontwait(t *testing.T) {
	a, b := connectedPair(t, unix.SOCK_STREAM)
	buf := make([]byte, 16)
	if n, errno := recvDontwait(a, buf); n != 0 || errno != syscall.EAGAIN {
		t.Errorf("empty socket: got %d, %v; want 0, EAGAIN", n, errno)
	}
	if _, err := unix.Write(b, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if n, errno := recvDontwait(a, buf); errno != 0 || string(buf[:n]) != "ping" {
		t.Errorf("got %q, %v; want %q, 0", buf[:n], errno, "ping")
	}
	if n, errno := recvDontwait(a, nil); n != 0 || errno != 0 {
		t.Errorf("empty buffer: got %d, %v; want 0, 0", n, errno)
	}
	unix.Shutdown(b, unix.SHUT_WR)
	if n, errno := recvDontwait(a, buf); n != 0 || errno != 0 {
		t.Errorf("after the peer's FIN: got %d, %v; want 0, 0", n, errno)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte("pipe"))
	if n, errno := recvDontwait(fdOf(r), buf); errno != 0 || string(buf[:n]) != "pipe" {
		t.Errorf("pipe: got %q, %v; want %q, 0", buf[:n], errno, "pipe")
	}
	if n, errno := recvDontwait(closedFD(t), buf); n != 0 || errno != syscall.EBADF {
		t.Errorf("closed descriptor: got %d, %v; want 0, EBADF", n, errno)
	}
}

// TestAdoptedBoundSocketStopsAtAccept checks what AdoptStreamPort says of
// macOS: a socket bound but never listened on passes as listening there,
// and the port stops at its first accept, logging EINVAL.
func TestAdoptedBoundSocketStopsAtAccept(t *testing.T) {
	withoutSocketOptions(t)
	logger, logs := testLogger()
	fd := fdOf(rawSocket(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), false))
	p, err := (&Config{Logger: logger}).AdoptStreamPort(fd, unix.AF_INET, newEchoFactory())
	if err != nil {
		t.Fatalf("AdoptStreamPort: %v", err)
	}
	waitClosed(t, p.Done(), "the port to stop")
	if !strings.Contains(logs.String(), syscall.EINVAL.Error()) {
		t.Errorf("log %q; want it to name EINVAL", logs.String())
	}
}
