package netport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// datagramRemote is the peer of a connected datagram port. It is never
// changed once stored: Connect stores a new one.
type datagramRemote struct {
	addr net.Addr
	// kernel: the socket itself is connected (connect(2)), so writes
	// need no address and the kernel reports ICMP refusals. A memory
	// port is connected in netport's own bookkeeping only.
	kernel bool
}

// sysSocket reports whether pc is one of net's own socket types, whose
// descriptor netport may use directly.
func sysSocket(pc net.PacketConn) bool {
	switch pc.(type) {
	case *net.UDPConn, *net.UnixConn:
		return true
	}
	return false
}

// Connect makes addr the port's only peer, as Twisted's connect and
// connect(2) do: from then on only datagrams from addr are delivered
// (datagrams from others that were already queued are dropped too), Write
// and WriteSequence with a nil address send to addr, WriteTo any other
// address fails with ErrWriteToConnected, and an ICMP port unreachable for
// a datagram sent to addr reaches the protocol's ConnectionRefused (see
// [ConnectionRefusedHandler]), whether a read or a write notices it.
// Connecting again replaces the peer.
//
// addr is a *net.UDPAddr on a udp port, a *net.UnixAddr on a unixgram
// port, and the peer's address on a memory port. Errors are *net.OpError
// values with Op "connect": a nil addr wraps syscall.EDESTADDRREQ, an
// address of the wrong kind syscall.EAFNOSUPPORT, a closed port
// net.ErrClosed, and a refusal by the system its cause (for example
// syscall.EINVAL for an IPv6 address on an IPv4 socket). Outside Unix a
// socket port answers ErrNotSupported.
func (d *DatagramPort) Connect(addr net.Addr) error {
	if datagramNilAddr(addr) {
		return d.opError("connect", nil, syscall.EDESTADDRREQ)
	}
	if d.closed.Load() {
		return d.opError("connect", addr, net.ErrClosed)
	}
	if !sysSocket(d.pc) {
		// A memory port has no kernel: the bookkeeping is the whole of
		// it, and it refuses what a socket would.
		if addr.Network() != d.addr.Network() {
			return d.opError("connect", addr, syscall.EAFNOSUPPORT)
		}
		d.remote.Store(&datagramRemote{addr: addr})
		return nil
	}
	if err := d.sysConnect(addr); err != nil {
		return d.opError("connect", addr, err)
	}
	d.remote.Store(&datagramRemote{addr: addr, kernel: true})
	return nil
}

// Write sends b as one datagram to the peer given to Connect (or the peer
// of an adopted connected socket) and returns the number of bytes
// written. On a port that is not connected it fails with a *net.OpError
// wrapping syscall.EDESTADDRREQ, as write(2) does. A write that finds the
// peer refused an earlier datagram returns an error wrapping
// syscall.ECONNREFUSED and also calls ConnectionRefused, from the port's
// goroutine. After Close the error matches net.ErrClosed.
func (d *DatagramPort) Write(b []byte) (int, error) {
	r := d.remote.Load()
	if r == nil {
		return 0, d.opError("write", nil, syscall.EDESTADDRREQ)
	}
	return d.writePeer(b, r)
}

// WriteTo sends b as one datagram to addr and returns the number of bytes
// written. It is safe to call from any goroutine. On a connected port
// (see Connect; an adopted socket that was already connected counts) addr
// may be nil or the peer's address, and the datagram goes to the peer;
// any other address fails with ErrWriteToConnected, which also matches
// net.ErrWriteToConnected. On a port that is not connected a nil addr
// (or a nil *net.UDPAddr) fails with an error wrapping
// syscall.EDESTADDRREQ. After Close the error matches net.ErrClosed.
func (d *DatagramPort) WriteTo(b []byte, addr net.Addr) (int, error) {
	if r := d.remote.Load(); r != nil {
		if !datagramNilAddr(addr) && !datagramSameAddr(addr, r.addr) {
			return 0, d.opError("write", addr, ErrWriteToConnected)
		}
		return d.writePeer(b, r)
	}
	if datagramNilAddr(addr) {
		return 0, d.opError("write", nil, syscall.EDESTADDRREQ)
	}
	return d.pc.WriteTo(b, addr)
}

// writePeer sends b to the connected peer r.
func (d *DatagramPort) writePeer(b []byte, r *datagramRemote) (int, error) {
	var n int
	var err error
	if w, ok := d.pc.(io.Writer); ok && r.kernel {
		n, err = w.Write(b)
	} else {
		n, err = d.pc.WriteTo(b, r.addr)
	}
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		d.refusedByWrite()
	}
	return n, err
}

// maxSendmsgPieces is the most pieces WriteSequence hands to one sendmsg
// (IOV_MAX on Linux and the BSDs); longer sequences are joined first.
const maxSendmsgPieces = 1024

// WriteSequence sends the pieces in bufs as one datagram, their
// concatenation, to addr, with one system call: on Unix a vectored
// sendmsg(2) that copies nothing (sequences of more than 1024 pieces, and
// other systems, join the pieces first). addr follows the rules of
// WriteTo: nil or the peer on a connected port, required otherwise. The
// errors are those of WriteTo, *net.OpError values with Op "write"; a
// datagram too long for the socket wraps syscall.EMSGSIZE.
func (d *DatagramPort) WriteSequence(bufs [][]byte, addr net.Addr) error {
	r := d.remote.Load()
	switch {
	case r != nil && !datagramNilAddr(addr) && !datagramSameAddr(addr, r.addr):
		return d.opError("write", addr, ErrWriteToConnected)
	case r == nil && datagramNilAddr(addr):
		return d.opError("write", nil, syscall.EDESTADDRREQ)
	}
	if sysSocket(d.pc) && len(bufs) <= maxSendmsgPieces {
		if r != nil && r.kernel {
			addr = nil // the socket knows its peer; a name is not needed
		}
		err := d.sendmsg(bufs, addr)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			d.refusedByWrite()
		}
		return err
	}
	b := bytes.Join(bufs, nil)
	var err error
	if r != nil {
		_, err = d.writePeer(b, r)
	} else {
		_, err = d.pc.WriteTo(b, addr)
	}
	return err
}

// SetBroadcast allows (on) or forbids sending datagrams to a broadcast
// address, with SO_BROADCAST: without it the system refuses them with
// EACCES. Go's own sockets allow broadcast from the start; an adopted
// socket may not. Errors are *net.OpError values with Op "set": a memory
// or unixgram port, or a system outside Unix, wraps ErrNotSupported; a
// closed port net.ErrClosed.
func (d *DatagramPort) SetBroadcast(on bool) error {
	if _, ok := d.pc.(*net.UDPConn); !ok {
		return d.opError("set", nil, fmt.Errorf("%w: broadcast needs a UDP socket", ErrNotSupported))
	}
	if d.closed.Load() {
		return d.opError("set", nil, net.ErrClosed)
	}
	if err := d.sysSetBroadcast(on); err != nil {
		return d.opError("set", nil, err)
	}
	return nil
}

// fromPeer reports whether a datagram from `from` is delivered: any on a
// port that is not connected, only the peer's on a connected one. The
// kernel already filters a connected socket, but not the datagrams that
// were queued before connect(2). Addresses are compared by IP and port
// only, since a zone may be spelled as a name or a number.
func (d *DatagramPort) fromPeer(from net.Addr) bool {
	r := d.remote.Load()
	if r == nil {
		return true
	}
	if datagramNilAddr(from) {
		return false
	}
	if a, ok := from.(*net.UDPAddr); ok {
		b, ok := r.addr.(*net.UDPAddr)
		return ok && a.Port == b.Port && a.IP.Equal(b.IP)
	}
	return datagramSameAddr(from, r.addr)
}

// peerAddr returns the connected peer, or nil.
func (d *DatagramPort) peerAddr() net.Addr {
	if r := d.remote.Load(); r != nil {
		return r.addr
	}
	return nil
}

// connectionRefused calls the protocol's ConnectionRefused, if it has
// one. Only the port's goroutine calls it, so that the protocol's
// callbacks never overlap.
func (d *DatagramPort) connectionRefused() {
	if h, ok := d.proto.(ConnectionRefusedHandler); ok {
		d.call("ConnectionRefused", d.peerAddr(), h.ConnectionRefused)
	}
}

// refusedByWrite hands a refusal that a write found to the port's
// goroutine: the kernel reports an ICMP refusal once, to whichever of the
// reader and the writer asks first. The loop is woken the way
// PauseProducing wakes it; a paused loop waits on d.refused already.
func (d *DatagramPort) refusedByWrite() {
	if _, ok := d.proto.(ConnectionRefusedHandler); !ok || d.closed.Load() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case d.refused <- struct{}{}:
	default: // one is pending already: Twisted calls it once per error too
	}
	if !d.paused {
		d.pc.SetReadDeadline(time.Unix(1, 0))
	}
}

// opError wraps err as a failure of op on this port.
func (d *DatagramPort) opError(op string, addr net.Addr, err error) error {
	e := &net.OpError{Op: op, Err: err}
	if !datagramNilAddr(d.addr) {
		e.Net, e.Source = d.addr.Network(), d.addr
	}
	if !datagramNilAddr(addr) {
		e.Addr = addr
	}
	return e
}

// datagramSameAddr compares two addresses. UDP and unix addresses are
// compared field by field, without the allocations of formatting them
// (an IPv4 address in its 4- and 16-byte forms is the same); any other
// kind by its text, which net makes canonical.
func datagramSameAddr(a, b net.Addr) bool {
	switch a := a.(type) {
	case *net.UDPAddr:
		if b, ok := b.(*net.UDPAddr); ok {
			return a.Port == b.Port && a.IP.Equal(b.IP) && a.Zone == b.Zone
		}
	case *net.UnixAddr:
		if b, ok := b.(*net.UnixAddr); ok {
			return a.Name == b.Name
		}
	}
	return a.Network() == b.Network() && a.String() == b.String()
}
