package netport

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime/debug"
	"sync"
)

// A Factory builds one Protocol for every connection a port accepts. One
// factory is shared by all of a port's connections, and may be shared by
// several ports, so it must be safe for concurrent use.
//
// A factory may also implement StartFactory and StopFactory (see
// [FactoryStarter] and [FactoryStopper]).
type Factory interface {
	// BuildProtocol returns the protocol that serves the connection from
	// remote. A nil result closes the connection at once, unserved.
	BuildProtocol(remote net.Addr) Protocol
}

// FactoryFunc adapts a function to the Factory interface.
type FactoryFunc func(remote net.Addr) Protocol

// BuildProtocol calls f(remote).
func (f FactoryFunc) BuildProtocol(remote net.Addr) Protocol { return f(remote) }

// FactoryStarter is implemented by a factory that wants to know when it
// starts being used. StartFactory is called once, when the first port
// serving the factory value has bound its socket successfully, before that
// port accepts anything. The count is kept per factory value across every
// port; adopted connections (AdoptStreamConnection) do not count. A panic
// in StartFactory is recovered and logged, and the port does not start:
// Listen, Serve or AdoptStreamPort returns an error saying so, having
// closed the socket, and the next port serving the factory calls
// StartFactory again.
type FactoryStarter interface {
	StartFactory()
}

// FactoryStopper is implemented by a factory that wants to know when the
// last port serving it has stopped listening. StopFactory is called once
// for every StartFactory, after that port's accept goroutine has ended and
// its BuildProtocol calls have returned; no BuildProtocol of that port
// starts afterwards. A panic in StopFactory is recovered and logged.
type FactoryStopper interface {
	StopFactory()
}

// A Protocol serves one connection. Its methods are called in order:
// ConnectionMade once, DataReceived any number of times, ConnectionLost
// once; one at a time, never overlapping for one connection, so a protocol
// needs no lock for its own state. They run on the connection's goroutine
// (on Linux an idle connection of a port gives its goroutine up, and a new
// one takes over when data arrives, so successive calls may come from
// different goroutines). The Transport it is given is safe to use from any
// goroutine.
type Protocol interface {
	// ConnectionMade is called once the connection is ready, with the
	// transport to write to. For TLS, the handshake has completed.
	ConnectionMade(t Transport)

	// DataReceived is called with the bytes read from the peer. data is
	// valid only during the call: copy what must be kept.
	DataReceived(data []byte)

	// ConnectionLost is called once, last. reason is never nil:
	// errors.Is(reason, ErrConnectionDone) on a clean close, and
	// errors.Is(reason, ErrConnectionLost) on any other end (a reset, a
	// timeout, an abort, a panic), in which case reason also wraps the cause.
	ConnectionLost(reason error)
}

// HalfCloseable is implemented by a protocol that wants to go on writing
// after the peer has half-closed its side (sent FIN). ReadConnectionLost is
// called instead of ending the connection; the protocol ends it later with
// LoseConnection. Without this method a half-close from the peer ends the
// connection with ErrConnectionDone.
type HalfCloseable interface {
	ReadConnectionLost()
}

// Drainer is implemented by a protocol that wants to finish its work when
// the port shuts down. Port.Shutdown calls Drain on the connection's
// goroutine instead of LoseConnection; the protocol must then end the
// connection itself, typically with LoseConnection once its reply is sent.
// Drain is not called while the connection is still in ConnectionMade.
type Drainer interface {
	Drain()
}

// A Transport is a protocol's end of its connection. Every method is safe
// to call from any goroutine, including from inside the protocol's own
// callbacks.
type Transport interface {
	// Write writes b and blocks until it is written or the write fails.
	// On failure (including a WriteTimeout) the connection is closed and
	// the error returned; after the connection is closed it returns an
	// error wrapping net.ErrClosed. With Config.WriteBuffer above 0 it
	// never blocks: what the socket does not take at once is queued and
	// sent in order, and Write returns len(b); it fails with an error
	// wrapping ErrWriteBufferFull, and ends the connection, when the queue
	// would pass Config.MaxWriteBuffer.
	Write(b []byte) (int, error)

	// WriteSequence writes the buffers in order, with one vectored write
	// where the operating system has one.
	WriteSequence(bufs [][]byte) error

	// LoseConnection closes the connection once writes in flight have
	// finished, what is queued has been sent, and a registered producer
	// has been unregistered. ConnectionLost then gets ErrConnectionDone.
	LoseConnection() error

	// AbortConnection closes the connection at once; on TCP the peer sees
	// a reset. ConnectionLost then gets a reason matching both
	// ErrConnectionAborted and ErrConnectionLost.
	AbortConnection() error

	// LoseWriteConnection half-closes the connection: it sends FIN after
	// writes in flight and keeps reading. It returns an error wrapping
	// ErrNotSupported when the connection has no CloseWrite method.
	LoseWriteConnection() error

	// PauseProducing stops reading from the peer: no DataReceived is
	// called until ResumeProducing.
	PauseProducing()

	// ResumeProducing undoes PauseProducing.
	ResumeProducing()

	// StopProducing is LoseConnection, for Twisted's producer interface.
	StopProducing()

	// RegisterProducer makes p the producer of the data written to the
	// transport, as Twisted's registerProducer. A streaming producer
	// (streaming true: Twisted's IPushProducer) is paused while the
	// transport cannot keep up (its send queue has passed
	// Config.WriteBuffer, or, with blocking writes, a Write is blocked) and
	// resumed once it can; a pull producer (streaming false) is asked for
	// more with ResumeProducing now and each time what it wrote has been
	// sent. p.StopProducing is called once when the connection ends. It
	// returns an error wrapping ErrProducerRegistered while another
	// producer is registered, and, when the connection has ended, calls
	// p.StopProducing at once and returns an error wrapping net.ErrClosed.
	RegisterProducer(p Producer, streaming bool) error

	// UnregisterProducer forgets the registered producer, if any; a
	// LoseConnection waiting for it then goes ahead.
	UnregisterProducer()

	// LocalAddr returns the local address.
	LocalAddr() net.Addr

	// RemoteAddr returns the peer's address.
	RemoteAddr() net.Addr

	// Conn returns the underlying connection, for deadlines, TLS state or
	// SyscallConn: a *tls.Conn when serving TLS; otherwise, for a served
	// connection, a net.Conn whose NetConn method returns the accepted
	// conn (a *net.TCPConn, say). Reading from it directly bypasses the
	// protocol.
	//
	// Deadlines set on it hold in every state. A read deadline is the
	// connection's own, together with IdleTimeout's: the earlier of the
	// two applies, and netport's internal wake-ups (parking, Shutdown's
	// request to drain) put it back after them. A connection with a read
	// deadline set does not give up its goroutine while idle. When the
	// deadline passes the read fails and the connection ends:
	// ConnectionLost gets ErrConnectionLost wrapping os.ErrDeadlineExceeded
	// (a deadline does not pause the protocol: to wait for data without a
	// bound, clear it with the zero time). A write deadline, together with
	// WriteTimeout's, bounds each Write; one that passes fails the Write
	// and ends the connection. After LoseConnection the connection keeps
	// its own deadline while it lingers.
	Conn() net.Conn

	// Context returns the connection's context, which carries the values
	// of Config.BaseContext and is cancelled when the connection ends,
	// before ConnectionLost is called: work started for the connection
	// (a query, an outgoing request) can stop with it.
	Context() context.Context
}

// factoryUse counts, per factory value, the ports serving it, so that
// StartFactory and StopFactory run once for the first and the last. Each
// factory has a lock of its own, held during those calls so that they
// alternate; the table's lock is held only to find it, so that a slow
// StartFactory delays no other factory's ports.
var factoryUse struct {
	sync.Mutex
	m map[any]*factoryCount // guarded by the Mutex
}

type factoryCount struct {
	refs int        // guarded by factoryUse: callers holding this entry
	mu   sync.Mutex // held during StartFactory and StopFactory
	n    int        // guarded by mu: ports serving the factory
}

// unusedLocked reports whether nothing refers to the entry any more; called with
// factoryUse locked. With no reference left, nobody is in or about to
// enter fn, so n can be read without mu.
func (fc *factoryCount) unusedLocked() bool { return fc.refs == 0 && fc.n == 0 }

// countFactory runs fn with f's entry locked; it makes the entry when
// needed and drops it once nothing uses it. fn must not panic: the
// factory's callbacks run under callFactory.
func countFactory(key any, fn func(fc *factoryCount)) {
	factoryUse.Lock()
	fc := factoryUse.m[key]
	if fc == nil {
		if factoryUse.m == nil {
			factoryUse.m = make(map[any]*factoryCount)
		}
		fc = new(factoryCount)
		factoryUse.m[key] = fc
	}
	fc.refs++
	factoryUse.Unlock()

	fc.mu.Lock()
	fn(fc)
	fc.mu.Unlock()

	factoryUse.Lock()
	if fc.refs--; fc.unusedLocked() {
		delete(factoryUse.m, key)
	}
	factoryUse.Unlock()
}

// callFactory runs StartFactory or StopFactory, turning a panic into an
// error, logged with its stack as every recovered panic is.
func callFactory(log *slog.Logger, addr net.Addr, name string, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w", name, panicError(r))
			log.Error("netport: panic in factory", "callback", name, "addr", logAddr(addr),
				"panic", r, "stack", string(debug.Stack()))
		}
	}()
	fn()
	return nil
}

// startFactory counts a port that starts serving f and calls StartFactory
// when it is the first. It reports whether the port was counted, so that
// the port calls stopFactory exactly once when it stops. When StartFactory
// panics the port is not counted and the error says so: the port must not
// start.
func startFactory(log *slog.Logger, addr net.Addr, f Factory) (counted bool, err error) {
	s, hasStart := f.(FactoryStarter)
	_, hasStop := f.(FactoryStopper)
	if !hasStart && !hasStop {
		return false, nil
	}
	start := func() error {
		if !hasStart {
			return nil
		}
		return callFactory(log, addr, "StartFactory", s.StartFactory)
	}
	if !reflect.ValueOf(f).Comparable() {
		// Not a valid map key (a struct holding a slice, say): counted
		// per port instead.
		if err := start(); err != nil {
			return false, err
		}
		return true, nil
	}
	countFactory(f, func(fc *factoryCount) {
		if fc.n++; fc.n == 1 {
			if err = start(); err != nil {
				// Not started: the next port to serve f is the first.
				fc.n--
			}
		}
	})
	return err == nil, err
}

// stopFactory undoes startFactory and calls StopFactory for the last port.
// A panic in StopFactory is logged and goes no further: the port has
// stopped all the same.
func stopFactory(log *slog.Logger, addr net.Addr, f Factory) {
	s, hasStop := f.(FactoryStopper)
	stop := func() {
		if hasStop {
			callFactory(log, addr, "StopFactory", s.StopFactory)
		}
	}
	if !reflect.ValueOf(f).Comparable() {
		stop()
		return
	}
	countFactory(f, func(fc *factoryCount) {
		if fc.n--; fc.n == 0 {
			stop()
		}
	})
}

// startBuild is called by the goroutine of a connection that track did not
// count (TLS, or not net's own), once it is set up, before BuildProtocol.
// It reports false once the port has begun to close: Close does not wait
// for such set-ups, so the connection is closed unserved, and no protocol
// is built after Close has returned or after StopFactory ran. Otherwise
// the build is counted until endBuild, and Close waits for it.
func (p *Port) startBuild() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing.Load() {
		return false
	}
	p.builds.Add(1)
	return true
}

// endBuild ends what track or startBuild counted.
func (p *Port) endBuild() { p.builds.Done() }

// Handler adapts the blocking style of net/http handlers: serve runs on
// the connection's own goroutine with the accepted connection (after the
// TLS handshake, when there is one) and may read and write it as it likes.
// The connection is closed when serve returns. IdleTimeout and
// WriteTimeout apply as deadlines: each Read on the conn serve is given
// fails once it has waited IdleTimeout, and each Write once it has taken
// WriteTimeout, unless serve has set a read (or write) deadline itself,
// which then applies alone; serve decides what such an error means. When
// serving TLS the conn is a *tls.Conn. Otherwise, with either timeout set
// or for an adopted connection (AdoptStreamConnection), it is a wrapper
// whose NetConn method returns the accepted conn and whose Close makes
// the peer see the close even while another descriptor holds the socket;
// without, it is the accepted conn itself. On Port.Shutdown the
// connection's read side is closed, so that serve's next read sees io.EOF
// and it can finish its reply, also when Shutdown comes before serve has
// started; a panic in serve is recovered and logged.
func Handler(serve func(net.Conn)) Factory {
	return FactoryFunc(func(net.Addr) Protocol { return handlerProtocol{serve: serve} })
}

// handlerProtocol marks a connection served by a blocking function: serve
// for Handler, serveCtx for HandlerContext (context.go).
type handlerProtocol struct {
	serve    func(net.Conn)
	serveCtx func(context.Context, net.Conn)
}

func (handlerProtocol) ConnectionMade(Transport) {}
func (handlerProtocol) DataReceived([]byte)      {}
func (handlerProtocol) ConnectionLost(error)     {}
