//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// socketKind is what an adopt call needs a descriptor to be.
type socketKind int

const (
	listenerKind socketKind = iota // a listening SOCK_STREAM socket
	connKind                       // a connected SOCK_STREAM socket
	packetKind                     // a SOCK_DGRAM socket
)

// sotype returns the socket type the kind needs.
func (k socketKind) sotype() int {
	if k == packetKind {
		return unix.SOCK_DGRAM
	}
	return unix.SOCK_STREAM
}

// adoptListener returns a net.Listener serving a duplicate of fd, a
// listening SOCK_STREAM socket of the given family (AF_INET, AF_INET6 or
// AF_UNIX). The caller keeps fd and may close it as soon as the call
// returns. Closing the listener closes only the duplicate: it never calls
// shutdown(2) and never removes or changes a unix socket's file, so another
// holder of the socket keeps accepting.
//
// Errors are *net.OpError with Op "adopt" whose Net names the network asked
// for; they wrap, checked in this order, ErrUnsupportedAddressFamily,
// syscall.EBADF or syscall.ENOTSOCK, ErrUnsupportedSocketType,
// ErrAddressFamilyMismatch and ErrNotListening. On error no descriptor is
// left open.
func adoptListener(fd, family int) (net.Listener, error) {
	return adoptFD(fd, family, listenerKind, net.FileListener)
}

// adoptConn returns a net.Conn over a duplicate of fd, a connected
// SOCK_STREAM socket of the given family. Ownership and errors are as for
// adoptListener, except that the last check is that the socket has a peer:
// an unconnected or listening socket gives an error wrapping
// syscall.ENOTCONN. Unlike a listener, the connection is an ordinary one:
// whoever serves it may shut it down to end it.
func adoptConn(fd, family int) (net.Conn, error) {
	return adoptFD(fd, family, connKind, net.FileConn)
}

// adoptPacketConn returns a net.PacketConn over a duplicate of fd, a
// SOCK_DGRAM socket of the given family, bound or not, connected or not.
// Ownership and errors are as for adoptListener, without the listening
// check; closing the result leaves other holders of the socket reading.
func adoptPacketConn(fd, family int) (net.PacketConn, error) {
	return adoptFD(fd, family, packetKind, net.FilePacketConn)
}

// adoptFD checks fd for an adopt call of the given kind and hands a
// non-blocking, close-on-exec duplicate of it to fromFile, one of the
// net.File* functions, which duplicates it once more: the first duplicate
// is closed on return, whatever happens. On error nothing stays open.
func adoptFD[T any](fd, family int, kind socketKind, fromFile func(*os.File) (T, error)) (T, error) {
	var zero T
	network := networkName(family, kind.sotype())
	// The family is checked before fd is touched, so that a caller who
	// mixed up the arguments does not get an error about the descriptor.
	if err := checkAdoptFamily(family); err != nil {
		return zero, &net.OpError{Op: "adopt", Net: network, Err: err}
	}
	// Checking the duplicate rather than fd itself means that a descriptor
	// closed and reused by another goroutine between the checks and the
	// adoption cannot slip through.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return zero, &net.OpError{Op: "adopt", Net: network,
			Err: fmt.Errorf("descriptor %d: %w", fd, os.NewSyscallError("fcntl", err))}
	}
	sotype, err := checkSocket(dup, family, kind)
	if err == nil {
		// O_NONBLOCK belongs to the open file description, so this also
		// makes fd non-blocking; net would set it anyway.
		if err = unix.SetNonblock(dup, true); err != nil {
			err = os.NewSyscallError("setnonblock", err)
		}
	}
	if err != nil {
		// The local address is looked up only here, to say which socket
		// was refused.
		var addr net.Addr
		if sa, saErr := unix.Getsockname(dup); saErr == nil {
			addr = sockaddrToAddr(sa, sotype)
		}
		unix.Close(dup)
		return zero, &net.OpError{Op: "adopt", Net: network, Addr: addr,
			Err: fmt.Errorf("descriptor %d: %w", fd, err)}
	}
	f := os.NewFile(uintptr(dup), "adopt "+network)
	defer f.Close()
	v, err := fromFile(f)
	if err != nil {
		return zero, fileError(network, err)
	}
	return v, nil
}

// checkSocket checks that descriptor s is a socket of the type kind needs,
// of the given family, listening or connected as kind needs. It returns the
// socket's type, 0 when s is not a socket.
func checkSocket(s, family int, kind socketKind) (sotype int, err error) {
	sotype, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt", err)
	}
	if want := kind.sotype(); sotype != want {
		return sotype, fmt.Errorf("%w %s, want %s", ErrUnsupportedSocketType, typeName(sotype), typeName(want))
	}
	domain, err := socketFamily(s)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		// Only getsockname(2) fails so: the socket's family is none
		// that could be declared.
		return sotype, fmt.Errorf("%w: declared %s, socket is of another family (%w)", ErrAddressFamilyMismatch,
			familyName(family), err)
	}
	if err != nil {
		return sotype, err
	}
	if domain != family {
		return sotype, fmt.Errorf("%w: declared %s, socket is %s", ErrAddressFamilyMismatch,
			familyName(family), familyName(domain))
	}
	switch kind {
	case listenerKind:
		listening, err := socketListening(s, sotype)
		if err != nil {
			return sotype, err
		}
		if !listening {
			return sotype, fmt.Errorf("%w (listen(2) was never called on it)", ErrNotListening)
		}
	case connKind:
		if _, err := unix.Getpeername(s); err != nil {
			return sotype, os.NewSyscallError("getpeername", err)
		}
	}
	return sotype, nil
}

// fileError rewraps an error from net.FileListener, net.FileConn or
// net.FilePacketConn, which come as *net.OpError with Op "file", as an
// adopt error.
func fileError(network string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &net.OpError{Op: "adopt", Net: network, Source: oe.Source, Addr: oe.Addr, Err: oe.Err}
	}
	return &net.OpError{Op: "adopt", Net: network, Err: err}
}

// Inspect reports what descriptor fd is, for instance whether standard
// input is a listening or a connected socket under inetd, so that the
// caller can choose the Adopt call to make. It neither duplicates nor
// changes fd, and the answer's Name is "".
//
// Errors are *net.OpError with Op "inspect": errors.Is(err, syscall.EBADF)
// for a descriptor that is not open, syscall.ENOTSOCK for one that is not a
// socket. Inspect works on Linux, macOS and the BSDs (see AdoptStreamPort
// for how macOS tells a listening socket); elsewhere it returns
// ErrNotSupported.
func Inspect(fd int) (SocketInfo, error) {
	info := SocketInfo{FD: fd}
	var err error
	if info.Type, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		return SocketInfo{}, inspectError(fd, "", err)
	}
	if info.Family, err = socketFamily(fd); err != nil {
		return SocketInfo{}, inspectError(fd, "", err)
	}
	network := networkName(info.Family, info.Type)
	if info.Listening, err = socketListening(fd, info.Type); err != nil {
		return SocketInfo{}, inspectError(fd, network, err)
	}
	return info, nil
}

// inspectError wraps err, a bare Errno from getsockopt or an
// *os.SyscallError naming its call, as an Inspect error.
func inspectError(fd int, network string, err error) error {
	if errno, ok := err.(unix.Errno); ok {
		err = os.NewSyscallError("getsockopt", errno)
	}
	return &net.OpError{Op: "inspect", Net: network, Err: fmt.Errorf("descriptor %d: %w", fd, err)}
}

// listenFDsStart is the first descriptor a service manager passes
// (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// inherited caches the answer of Inherited, whose first call consumes the
// environment variables it reads.
var inherited struct {
	mu    sync.Mutex
	done  bool // guarded by mu, as are the two fields below
	infos []SocketInfo
	err   error
}

// Inherited returns the sockets a service manager passed to this process
// by systemd's socket-activation protocol (sd_listen_fds): LISTEN_FDS
// descriptors from 3 up, named by the colon-separated LISTEN_FDNAMES, meant
// for the process whose id is LISTEN_PID (or, in a process that Restart
// started, whose parent's id is RestartParentEnv). It returns nil, nil when
// LISTEN_PID is unset, or does not name this process (the variables were
// meant for another one, and are left alone); and when LISTEN_FDS is 0.
//
// Each descriptor is set close-on-exec, so that it does not leak into child
// processes, and inspected as by Inspect; adopt each with the Adopt call
// that fits its Type and Listening. The descriptors stay the caller's to
// close. On success LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are unset.
//
// An error names the cause: a LISTEN_FDS that is not a non-negative decimal
// count (wrapping the *strconv.NumError when it does not parse), a
// LISTEN_FDNAMES that does not hold exactly LISTEN_FDS names, or a
// descriptor that is not an open socket (a *net.OpError, as from Inspect).
//
// The first call's answer, error included, is kept: later calls return it
// again (in a fresh slice) without reading the environment.
//
// Inherited works on Linux, macOS and the BSDs: the protocol is only
// environment variables and descriptors, whatever passed them. Elsewhere
// it returns nil, nil when nothing was passed and ErrNotSupported when
// sockets were.
func Inherited() ([]SocketInfo, error) {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	if !inherited.done {
		inherited.infos, inherited.err = inherit()
		inherited.done = true
	}
	return slices.Clone(inherited.infos), inherited.err
}

// resetInherited forgets the answer Inherited keeps, so that tests can call
// it afresh.
func resetInherited() {
	inherited.mu.Lock()
	defer inherited.mu.Unlock()
	inherited.done, inherited.infos, inherited.err = false, nil, nil
}

// inherit does the work of Inherited, without the cache.
func inherit() ([]SocketInfo, error) {
	n, names, ok, err := parseListenEnv(listenPID(), os.Getenv("LISTEN_FDS"),
		os.Getenv("LISTEN_FDNAMES"), os.Getpid())
	if !ok || err != nil {
		return nil, err
	}
	// Every descriptor is made close-on-exec before any is inspected, so
	// that an error about one socket does not leave the others leaking
	// into children. The first that is not open ends the loop: a service
	// manager passes a contiguous range, so LISTEN_FDS is wrong, and the
	// descriptors past the hole (if any) are not ours to change.
	for i := range n {
		fd := listenFDsStart + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, inheritError(fd, names, &net.OpError{Op: "inherit",
				Err: fmt.Errorf("descriptor %d: %w", fd, os.NewSyscallError("fcntl", err))})
		}
	}
	var infos []SocketInfo
	for i := range n {
		fd := listenFDsStart + i
		info, err := Inspect(fd)
		if err != nil {
			return nil, inheritError(fd, names, err)
		}
		if names != nil {
			info.Name = names[i]
		}
		infos = append(infos, info)
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	return infos, nil
}

// inheritError adds to err the LISTEN_FDNAMES name of descriptor fd, when
// it has one.
func inheritError(fd int, names []string, err error) error {
	if i := fd - listenFDsStart; names != nil && names[i] != "" {
		return fmt.Errorf("netport: inherited socket %q: %w", names[i], err)
	}
	return err
}

// parseListenEnv parses the socket-activation variables LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES (given as pid, fds and names, "" when
// unset) for the process whose id is self. ok reports whether they are
// meant for self: pid is set, parses and equals self. Only then are fds and
// names parsed: n is the number of descriptors passed (fds must be a
// non-negative decimal integer), and fdNames their names, nil when names is
// empty; otherwise it must hold exactly n names. With n == 0, names is not
// looked at.
func parseListenEnv(pid, fds, names string, self int) (n int, fdNames []string, ok bool, err error) {
	if p, err := strconv.Atoi(pid); err != nil || p != self {
		return 0, nil, false, nil
	}
	count, err := strconv.ParseInt(fds, 10, 32)
	if err != nil {
		return 0, nil, true, fmt.Errorf("netport: LISTEN_FDS=%q: %w", fds, err)
	}
	if count < 0 || count > math.MaxInt32-listenFDsStart {
		return 0, nil, true, fmt.Errorf("netport: LISTEN_FDS=%q: not a descriptor count", fds)
	}
	n = int(count)
	if n == 0 || names == "" {
		return n, nil, true, nil
	}
	fdNames = strings.Split(names, ":")
	if len(fdNames) != n {
		return 0, nil, true, fmt.Errorf("netport: LISTEN_FDNAMES=%q holds %d names; want LISTEN_FDS=%d",
			names, len(fdNames), n)
	}
	return n, fdNames, true, nil
}
