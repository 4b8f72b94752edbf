//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import (
	"os"

	"golang.org/x/sys/unix"
)

// What a descriptor is, asked the same way on every Unix where the kernel
// answers, and another way where it does not: macOS and NetBSD have no
// SO_DOMAIN, and macOS has no SO_ACCEPTCONN (sockinfo_*.go say which system
// has what).

// The socket options socketFamily and socketListening ask first, 0 for
// none. They are variables only so that tests on Linux can take the path
// of the systems that lack them.
var (
	optDomain     = soDomain
	optAcceptConn = unix.SO_ACCEPTCONN
)

// socketFamily returns the address family of socket s: SO_DOMAIN where the
// kernel answers it, the family of its getsockname(2) address elsewhere.
func socketFamily(s int) (int, error) {
	if optDomain != 0 {
		family, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, optDomain)
		if err == nil {
			return family, nil
		}
		if err != unix.ENOPROTOOPT {
			return 0, os.NewSyscallError("getsockopt", err)
		}
	}
	return socknameFamily(s)
}

// socknameFamily returns the address family of socket s from its local
// address, which every socket has, bound or not: an unbound AF_INET socket
// answers 0.0.0.0:0, and an unnamed AF_UNIX one an empty path. A family
// that x/sys does not turn into a Sockaddr (or that netport does not
// adopt) gives an error wrapping EAFNOSUPPORT.
func socknameFamily(s int) (int, error) {
	sa, err := unix.Getsockname(s)
	if err != nil {
		return 0, os.NewSyscallError("getsockname", err)
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return unix.AF_INET, nil
	case *unix.SockaddrInet6:
		return unix.AF_INET6, nil
	case *unix.SockaddrUnix:
		return unix.AF_UNIX, nil
	}
	return 0, os.NewSyscallError("getsockname", unix.EAFNOSUPPORT)
}

// socketListening reports whether listen(2) was called on socket s, of
// type sotype: SO_ACCEPTCONN where the kernel answers it. macOS defines
// SO_ACCEPTCONN in <sys/socket.h> but its getsockopt(2) does not list it
// and answers ENOPROTOOPT (xnu's sogetoptlock has no case for it); there,
// and on any other kernel that refuses it, listeningWithoutAcceptConn
// decides.
func socketListening(s, sotype int) (bool, error) {
	if optAcceptConn != 0 {
		v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, optAcceptConn)
		if err == nil {
			// The BSDs answer the SO_ACCEPTCONN bit of so_options (2),
			// Linux 1.
			return v != 0, nil
		}
		if err != unix.ENOPROTOOPT {
			return false, os.NewSyscallError("getsockopt", err)
		}
	}
	return listeningWithoutAcceptConn(s, sotype)
}

// listeningWithoutAcceptConn tells a listening socket from another without
// SO_ACCEPTCONN and without changing the socket. Only stream and
// seqpacket sockets listen. A TCP socket's state says it exactly where
// the kernel reports it (tcpListenState). Otherwise a socket listens if it
// has no peer but has a name: listen(2) names a TCP socket that had none
// (an ephemeral port), and on the BSDs listen(2) on an unbound unix socket
// fails (EINVAL in unix(4)'s unp_listen). The one socket this takes for
// listening wrongly is one that was bound and then neither connected nor
// listened on; serving it fails at the first accept(2), with EINVAL.
func listeningWithoutAcceptConn(s, sotype int) (bool, error) {
	if sotype != unix.SOCK_STREAM && sotype != unix.SOCK_SEQPACKET {
		return false, nil
	}
	if listening, ok := tcpListenState(s); ok {
		return listening, nil
	}
	if _, err := unix.Getpeername(s); err == nil {
		return false, nil
	} else if err != unix.ENOTCONN {
		return false, os.NewSyscallError("getpeername", err)
	}
	sa, err := unix.Getsockname(s)
	if err != nil {
		return false, os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port != 0, nil
	case *unix.SockaddrInet6:
		return sa.Port != 0, nil
	case *unix.SockaddrUnix:
		// x/sys names an unnamed Linux socket "@".
		return sa.Name != "" && sa.Name != "@", nil
	}
	return false, nil
}
