package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/netport/netport"
)

// fdFlag collects repeated -fd values.
type fdFlag []int

func (f *fdFlag) String() string { return fmt.Sprint([]int(*f)) }

func (f *fdFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("-fd %q is not a descriptor number", v)
	}
	*f = append(*f, n)
	return nil
}

// start serves what was asked for: the -listen endpoints, the -fd and
// -inetd descriptors, and every socket a service manager passed. With none
// of those it listens on defaultListen.
func (s *server) start(listens listenFlag, fds fdFlag, inetd bool) error {
	inherited, err := netport.Inherited()
	if err != nil {
		return err
	}
	for _, info := range inherited {
		if err := s.adopt(info); err != nil {
			return err
		}
	}
	if len(inherited) > 0 {
		// What was inherited is what -listen asked for: after a restart
		// the new process gets the same arguments, and the old process
		// still holds those addresses.
		listens = nil
	}
	if inetd {
		info, err := netport.Inspect(0)
		if err != nil {
			return fmt.Errorf("-inetd: standard input: %w", err)
		}
		if info.Listening || info.Type != syscall.SOCK_STREAM {
			return fmt.Errorf("-inetd: standard input is not a connected stream socket")
		}
		if err := s.adopt(info); err != nil {
			return err
		}
	}
	for _, fd := range fds {
		info, err := netport.Inspect(fd)
		if err != nil {
			return fmt.Errorf("-fd %d: %w", fd, err)
		}
		if err := s.adopt(info); err != nil {
			return err
		}
	}
	if len(inherited) == 0 && !inetd && len(fds) == 0 && len(listens) == 0 {
		e, _ := parseEndpoint(defaultListen)
		listens = append(listens, e)
	}
	for _, e := range listens {
		if err := s.listen(e); err != nil {
			return err
		}
	}
	return nil
}

// adopt serves a descriptor with the Adopt call that fits it: a listening
// stream socket as a port, a connected one as one connection, a datagram
// socket as a datagram port. The original descriptor is closed once
// adopted, since the adopted copy is all that is served.
func (s *server) adopt(info netport.SocketInfo) error {
	what := fmt.Sprintf("descriptor %d", info.FD)
	if info.Name != "" {
		what += fmt.Sprintf(" (%s)", info.Name)
	}
	switch {
	case info.Type == syscall.SOCK_STREAM && info.Listening:
		p, err := s.cfg.AdoptStreamPort(info.FD, info.Family, s.factory)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		s.serving(p)
	case info.Type == syscall.SOCK_STREAM:
		c, err := s.cfg.AdoptStreamConnection(info.FD, info.Family, s.factory)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		s.conns = append(s.conns, c)
	case info.Type == syscall.SOCK_DGRAM:
		d, err := s.cfg.AdoptDatagramPort(info.FD, info.Family, &datagramEcho{}, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		s.servingPacket(d)
	default:
		return fmt.Errorf("%s: socket type %d: %w", what, info.Type, netport.ErrUnsupportedSocketType)
	}
	if info.FD > 2 {
		os.NewFile(uintptr(info.FD), what).Close()
	}
	return nil
}
