package netport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A DatagramProtocol receives the datagrams of one [DatagramPort]. Its
// methods are called from the port's own goroutine, one at a time, so a
// protocol needs no lock for its own state.
//
// A protocol may also implement [DatagramStarter], [DatagramStopper] and
// [ConnectionRefusedHandler].
type DatagramProtocol interface {
	// DatagramReceived is called with each datagram and its sender. data
	// is valid only during the call: copy what must be kept. A datagram
	// longer than the port's MaxPacketSize arrives cut to that size (see
	// [DatagramPort.Truncated]). from is nil when the sender has no
	// address, as an unbound unixgram socket has none.
	DatagramReceived(data []byte, from net.Addr)
}

// DatagramStarter is implemented by a datagram protocol that wants to know
// its port. StartProtocol is called once, on the port's goroutine, before
// the first DatagramReceived; it is the place to keep p for replies.
type DatagramStarter interface {
	StartProtocol(p *DatagramPort)
}

// DatagramStopper is implemented by a datagram protocol that wants to know
// when its port has stopped. StopProtocol is called once, last, after the
// port's socket is closed; Close returns after it has returned.
type DatagramStopper interface {
	StopProtocol()
}

// ConnectionRefusedHandler is implemented by a datagram protocol served on
// a connected port (see [DatagramPort.Connect]) that wants to know when its
// peer is gone: when a read or a write fails with ECONNREFUSED (an ICMP
// port unreachable for an earlier datagram), ConnectionRefused is called on
// the port's goroutine, even while the port is paused, and the port goes
// on reading. The failing write also returns the error. Without the
// method the refusal is ignored all the same.
type ConnectionRefusedHandler interface {
	ConnectionRefused()
}

// A DatagramPort serves one net.PacketConn: a single goroutine reads each
// datagram and hands it to the port's [DatagramProtocol]. The port owns the
// PacketConn and closes it when it stops. Its methods are safe for
// concurrent use, including from inside the protocol's own callbacks.
type DatagramPort struct {
	cfg    *Config // may be nil, meaning a zero Config
	pc     net.PacketConn
	proto  DatagramProtocol
	addr   net.Addr                       // pc.LocalAddr(), kept so that Addr answers after Close
	remote atomic.Pointer[datagramRemote] // the peer of a connected port; nil otherwise
	family atomic.Int32                   // the socket's address family, once sockFamily has asked
	file   *socketFile

	max       int    // MaxPacketSize
	buf       []byte // read buffer, reused for every datagram; loop goroutine only
	readMsg   bool   // reads use recvmsg and MSG_TRUNC; else buf has one spare byte
	truncated atomic.Uint64
	loopID    atomic.Uint64 // id of the loop goroutine, so Close can tell it is called from a callback

	mu     sync.Mutex
	paused bool          // guarded by mu
	resume chan struct{} // guarded by mu; closed by ResumeProducing

	closeOnce sync.Once
	closed    atomic.Bool
	stopping  chan struct{} // closed by close, wakes a paused loop
	refused   chan struct{} // one pending ConnectionRefused found by a write, for the loop to call
	done      chan struct{} // closed when the loop has finished, StopProtocol included
}

// servePacket starts serving pc with p, as ListenPacket and the Adopt
// calls do once they hold a PacketConn. From the call on, pc belongs to
// the port: it is closed on error too. maxPacketSize 0 means
// DefaultMaxPacketSize; a negative one is an error. The errors are not
// wrapped in a *net.OpError: the caller knows the Op.
func (c *Config) servePacket(pc net.PacketConn, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	return c.serveDatagram(pc, p, maxPacketSize, nil)
}

func (c *Config) checkDatagramArgs(p DatagramProtocol, maxPacketSize int) error {
	if p == nil {
		return errNilProtocol
	}
	if err := checkPacketSize(maxPacketSize); err != nil {
		return err
	}
	return c.check(false)
}

// serveDatagram is servePacket that also removes file, when not nil, on
// error and when the port stops.
func (c *Config) serveDatagram(pc net.PacketConn, p DatagramProtocol, maxPacketSize int, file *socketFile) (*DatagramPort, error) {
	if pc == nil {
		return nil, errors.New("netport: nil PacketConn")
	}
	fail := func(err error) (*DatagramPort, error) {
		pc.Close()
		file.remove()
		return nil, err
	}
	if err := c.checkDatagramArgs(p, maxPacketSize); err != nil {
		return fail(err)
	}
	if maxPacketSize == 0 {
		maxPacketSize = DefaultMaxPacketSize
	}
	d := &DatagramPort{
		cfg:      c,
		pc:       pc,
		proto:    p,
		addr:     pc.LocalAddr(),
		file:     file,
		max:      maxPacketSize,
		readMsg:  datagramCanReadMsg(pc),
		stopping: make(chan struct{}),
		refused:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if peer := datagramPeer(pc); peer != nil {
		d.remote.Store(&datagramRemote{addr: peer, kernel: true})
	}
	// Without MSG_TRUNC a spare byte tells a datagram that filled the
	// buffer from one that did not fit.
	if d.buf = make([]byte, maxPacketSize+1); d.readMsg {
		d.buf = d.buf[:maxPacketSize]
	}
	if err := registerDatagramProtocol(d); err != nil {
		return fail(err)
	}
	logListening(c.logger(), d.addr, false)
	go d.serve()
	return d, nil
}

// datagramPeer returns the remote address of a connected PacketConn, such
// as one from net.DialUDP, and nil for an unconnected one.
func datagramPeer(pc net.PacketConn) net.Addr {
	rc, ok := pc.(interface{ RemoteAddr() net.Addr })
	if !ok {
		return nil
	}
	if ra := rc.RemoteAddr(); !datagramNilAddr(ra) {
		return ra
	}
	return nil
}

// datagramProtocols maps each protocol value served by a live datagram
// port to that port, so that one value is never served twice at once.
// Values whose dynamic type is not comparable cannot be map keys and are
// not tracked.
var datagramProtocols = struct {
	mu    sync.Mutex
	ports map[any]*DatagramPort // guarded by mu
}{ports: make(map[any]*DatagramPort)}

func registerDatagramProtocol(d *DatagramPort) error {
	if !reflect.ValueOf(d.proto).Comparable() { // not a valid map key
		return nil
	}
	datagramProtocols.mu.Lock()
	defer datagramProtocols.mu.Unlock()
	if other, ok := datagramProtocols.ports[d.proto]; ok {
		return fmt.Errorf("%w: %T is served by %v", ErrProtocolInUse, d.proto, datagramAddrString(other.addr))
	}
	datagramProtocols.ports[d.proto] = d
	return nil
}

func unregisterDatagramProtocol(d *DatagramPort) {
	if !reflect.ValueOf(d.proto).Comparable() {
		return
	}
	datagramProtocols.mu.Lock()
	defer datagramProtocols.mu.Unlock()
	if datagramProtocols.ports[d.proto] == d {
		delete(datagramProtocols.ports, d.proto)
	}
}

// serve is the port's goroutine: StartProtocol, the datagrams, then
// StopProtocol.
func (d *DatagramPort) serve() {
	d.loopID.Store(datagramGoroutineID())
	defer d.finish()
	if s, ok := d.proto.(DatagramStarter); ok {
		d.call("StartProtocol", nil, func() { s.StartProtocol(d) })
	}
	for {
		n, from, truncated, err := d.read()
		if err != nil {
			if !d.readFailed(err) {
				return
			}
			continue
		}
		// A datagram read just before PauseProducing is held until
		// ResumeProducing, so that none is delivered while paused.
		if !d.waitWhilePaused() {
			return
		}
		// Checked after the wait, so that a Connect made meanwhile
		// applies to a datagram held across a pause.
		if !d.fromPeer(from) {
			continue
		}
		if truncated {
			d.truncated.Add(1)
		}
		d.call("DatagramReceived", from, func() { d.proto.DatagramReceived(d.buf[:n], from) })
	}
}

// read reads one datagram into d.buf and reports whether it was cut to
// d.max bytes.
func (d *DatagramPort) read() (n int, from net.Addr, truncated bool, err error) {
	if d.readMsg {
		return datagramReadMsg(d.pc, d.buf)
	}
	n, from, err = d.pc.ReadFrom(d.buf)
	if n > d.max {
		return d.max, from, true, err
	}
	return n, from, false, err
}

// call runs one of the protocol's callbacks, recovering a panic. f does
// not escape, so the read loop's closure costs no allocation.
func (d *DatagramPort) call(name string, from net.Addr, f func()) {
	defer func() {
		if r := recover(); r != nil {
			d.logPanic(name, from, r)
		}
	}()
	f()
}

func (d *DatagramPort) logPanic(callback string, from net.Addr, r any) {
	d.cfg.logger().Error("netport: panic in datagram protocol, port keeps serving",
		"callback", callback, "port", datagramAddrString(d.addr), "from", datagramAddrString(from),
		"panic", r, "stack", string(debug.Stack()))
}

// readFailed handles a read error and reports whether the loop goes on.
func (d *DatagramPort) readFailed(err error) bool {
	switch {
	case d.closed.Load():
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		return d.timedOut()
	case errors.Is(err, syscall.ECONNREFUSED):
		d.connectionRefused()
		return true
	}
	d.cfg.logger().Error("netport: datagram port stopped by a read error",
		"port", datagramAddrString(d.addr), "err", err)
	d.close()
	return false
}

// timedOut handles a read interrupted by a deadline: PauseProducing's, or
// one set on PacketConn() by someone else, which is cleared so that the
// loop does not spin on it.
func (d *DatagramPort) timedOut() bool {
	d.mu.Lock()
	if !d.paused {
		d.pc.SetReadDeadline(time.Time{})
	}
	d.mu.Unlock()
	// A write that found a refusal wakes the loop the same way; the
	// deadline is cleared first, so one posted after this check sets it
	// again and is seen on the next round.
	select {
	case <-d.refused:
		d.connectionRefused()
	default:
	}
	return d.waitWhilePaused()
}

// waitWhilePaused blocks while the port is paused and reports false when
// the port is closed meanwhile.
func (d *DatagramPort) waitWhilePaused() bool {
	for {
		d.mu.Lock()
		paused, resume := d.paused, d.resume
		d.mu.Unlock()
		if !paused {
			return !d.closed.Load()
		}
		select {
		case <-resume:
		case <-d.refused:
			d.connectionRefused()
		case <-d.stopping:
			return false
		}
	}
}

// finish ends the loop: the socket is closed, StopProtocol called, the
// protocol value released and Done closed, in that order.
func (d *DatagramPort) finish() {
	d.close()
	if s, ok := d.proto.(DatagramStopper); ok {
		d.call("StopProtocol", nil, s.StopProtocol)
	}
	unregisterDatagramProtocol(d)
	logStopped(d.cfg.logger(), d.addr, false, nil)
	close(d.done)
}

// close closes the socket once; only the first call returns its error.
func (d *DatagramPort) close() error {
	var err error
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		close(d.stopping)
		err = d.pc.Close()
		d.file.remove()
	})
	return err
}

// Close stops the port: it closes the socket (this port's descriptor only:
// never shutdown(2), so another holder of the same socket goes on
// reading), removes a unixgram socket file that ListenPacket created,
// waits for the port's goroutine to finish and StopProtocol to return,
// and then returns the error of closing the socket. Later calls return
// nil. Called from inside one of the protocol's callbacks, Close does not
// wait, since that goroutine is its caller: the port finishes when the
// callback returns.
func (d *DatagramPort) Close() error {
	err := d.close()
	if datagramGoroutineID() != d.loopID.Load() {
		<-d.done
	}
	return err
}

// Done returns a channel that is closed once the port has stopped, after
// StopProtocol has returned: on Close, or when a read error stopped it.
func (d *DatagramPort) Done() <-chan struct{} { return d.done }

// Addr returns the port's local address; it still answers after Close.
func (d *DatagramPort) Addr() net.Addr { return d.addr }

// MaxPacketSize returns the longest datagram the port delivers whole.
func (d *DatagramPort) MaxPacketSize() int { return d.max }

// Truncated returns how many datagrams were longer than MaxPacketSize.
// Such a datagram is not dropped: it is delivered cut to MaxPacketSize, as
// Twisted does.
func (d *DatagramPort) Truncated() uint64 { return d.truncated.Load() }

// PacketConn returns the socket the port serves, for socket options and
// SyscallConn. Reading from it, closing it or setting read deadlines on it
// bypasses the port; the port clears a read deadline it did not set.
func (d *DatagramPort) PacketConn() net.PacketConn { return d.pc }

// PauseProducing stops delivering datagrams: no DatagramReceived is called
// until ResumeProducing, and datagrams queue in the socket's receive
// buffer meanwhile (the kernel drops those that do not fit). A read in
// progress is interrupted with a read deadline in the past.
func (d *DatagramPort) PauseProducing() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paused {
		return
	}
	d.paused = true
	d.resume = make(chan struct{})
	d.pc.SetReadDeadline(time.Unix(1, 0))
}

// ResumeProducing undoes PauseProducing.
func (d *DatagramPort) ResumeProducing() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.paused {
		return
	}
	d.paused = false
	close(d.resume)
	d.pc.SetReadDeadline(time.Time{})
}

// String describes the port, e.g. "udp 127.0.0.1:9999 (*main.echo)", with
// " not listening" added once it has stopped.
func (d *DatagramPort) String() string {
	s := fmt.Sprintf("%s (%T)", datagramAddrString(d.addr), d.proto)
	if !datagramNilAddr(d.addr) {
		s = d.addr.Network() + " " + s
	}
	if d.closed.Load() {
		s += " not listening"
	}
	return s
}

// datagramAddrString is a.String(), or "<nil>" for no address.
func datagramAddrString(a net.Addr) string {
	if datagramNilAddr(a) {
		return "<nil>"
	}
	return a.String()
}

// datagramNilAddr reports whether a is nil or a nil pointer in an interface, as
// a PacketConn may return for an absent address.
func datagramNilAddr(a net.Addr) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// datagramGoroutineID returns the id of the calling goroutine, from the first line
// of its stack trace ("goroutine 7 [running]:"). Close needs it to tell a
// call from the port's own callbacks, which must not wait for themselves,
// from any other; it is called once per port and once per Close.
func datagramGoroutineID() uint64 {
	var buf [64]byte
	b := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
