//go:build unix

package netport

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawConn returns the port's socket for a system call; d.pc is one of
// net's socket types (sysSocket).
func (d *DatagramPort) rawConn() (syscall.RawConn, error) {
	sc, ok := d.pc.(syscall.Conn)
	if !ok {
		return nil, ErrNotSupported
	}
	return sc.SyscallConn()
}

// control runs f on the port's descriptor and returns f's error, or the
// error of reaching the descriptor (net.ErrClosed once closed).
func (d *DatagramPort) control(f func(fd int) error) error {
	rc, err := d.rawConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return rawError(err)
	}
	return ferr
}

// rawError unwraps the *net.OpError that a RawConn returns (Op
// "raw-control"), so that the caller wraps the cause once.
func rawError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// sockFamily returns the socket's address family, asked once with
// getsockname(2): a udp port may be IPv4 or IPv6 whatever its address
// looks like.
func (d *DatagramPort) sockFamily() (int, error) {
	if f := d.family.Load(); f != 0 {
		return int(f), nil
	}
	var family int
	err := d.control(func(fd int) error {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return os.NewSyscallError("getsockname", err)
		}
		switch sa.(type) {
		case *unix.SockaddrInet4:
			family = unix.AF_INET
		case *unix.SockaddrInet6:
			family = unix.AF_INET6
		case *unix.SockaddrUnix:
			family = unix.AF_UNIX
		default:
			return syscall.EAFNOSUPPORT
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	d.family.Store(int32(family))
	return family, nil
}

// sockaddr converts addr for a socket of d's family. An IPv4 address for
// an IPv6 socket becomes its IPv4-mapped form, as net does.
func (d *DatagramPort) sockaddr(addr net.Addr) (unix.Sockaddr, error) {
	family, err := d.sockFamily()
	if err != nil {
		return nil, err
	}
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip := a.IP
		if len(ip) == 0 { // the unspecified address, as net takes it
			ip = net.IPv6unspecified
			if family == unix.AF_INET {
				ip = net.IPv4zero
			}
		}
		if ip4 := ip.To4(); family == unix.AF_INET && ip4 != nil {
			sa := &unix.SockaddrInet4{Port: a.Port}
			copy(sa.Addr[:], ip4)
			return sa, nil
		}
		if ip16 := ip.To16(); family == unix.AF_INET6 && ip16 != nil {
			sa := &unix.SockaddrInet6{Port: a.Port}
			copy(sa.Addr[:], ip16)
			if a.Zone != "" {
				id, err := zoneID(a.Zone)
				if err != nil {
					return nil, err
				}
				sa.ZoneId = id
			}
			return sa, nil
		}
	case *net.UnixAddr:
		if family == unix.AF_UNIX {
			return &unix.SockaddrUnix{Name: a.Name}, nil
		}
	}
	return nil, syscall.EAFNOSUPPORT
}

// sysConnect connects the socket to addr with connect(2), which for a
// datagram socket only records the peer and returns at once.
func (d *DatagramPort) sysConnect(addr net.Addr) error {
	sa, err := d.sockaddr(addr)
	if err != nil {
		return err
	}
	return d.control(func(fd int) error {
		return os.NewSyscallError("connect", unix.Connect(fd, sa))
	})
}

// sendmsg sends the pieces in bufs as one datagram to addr (nil: the
// connected peer) with a single vectored sendmsg(2).
func (d *DatagramPort) sendmsg(bufs [][]byte, addr net.Addr) error {
	if d.closed.Load() {
		return d.opError("write", addr, net.ErrClosed)
	}
	var sa unix.Sockaddr
	if addr != nil {
		var err error
		if sa, err = d.sockaddr(addr); err != nil {
			return d.opError("write", addr, err)
		}
	}
	rc, err := d.rawConn()
	if err != nil {
		return d.opError("write", addr, err)
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgBuffers(int(fd), bufs, nil, sa, 0)
		return serr != unix.EAGAIN
	})
	if err == nil && serr != nil {
		err = os.NewSyscallError("sendmsg", serr)
	}
	if err != nil {
		return d.opError("write", addr, rawError(err))
	}
	return nil
}

// sysSetBroadcast sets SO_BROADCAST.
func (d *DatagramPort) sysSetBroadcast(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return d.control(func(fd int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, v))
	})
}

// zoneID returns the index of the interface an IPv6 zone names, by name
// or by number.
func zoneID(zone string) (uint32, error) {
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index), nil
	}
	n, err := strconv.ParseUint(zone, 10, 32)
	if err != nil {
		return 0, &net.AddrError{Err: "unknown zone", Addr: zone}
	}
	return uint32(n), nil
}
