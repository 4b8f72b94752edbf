package netport

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"time"
)

// Defaults used where a Config field is zero.
const (
	// DefaultReadBufferSize is the most a connection reads at once when
	// Config.ReadBufferSize is zero, as Twisted reads.
	DefaultReadBufferSize = 64 << 10

	// DefaultMaxPacketSize is the datagram size used when maxPacketSize is
	// zero, as in Twisted.
	DefaultMaxPacketSize = 8192

	// DefaultHandshakeTimeout bounds a TLS handshake when
	// Config.HandshakeTimeout is zero.
	DefaultHandshakeTimeout = 10 * time.Second

	// DefaultMaxWriteBufferFactor gives the limit of a connection's send
	// queue when Config.MaxWriteBuffer is zero: this many times
	// Config.WriteBuffer.
	DefaultMaxWriteBufferFactor = 64
)

// A Config holds the settings of the ports, connections and datagram ports
// made with it. The zero value works, each zero field meaning what its
// comment says, and a nil *Config behaves as a zero one. A Config must not
// be changed after its first use. *Config implements [Reactor].
//
// Every call that takes a Config checks it first: a negative number or
// duration, or a TLS configuration with no certificate, is refused with an
// error wrapping [ErrInvalidConfig] that names the field.
//
// TCP connections are served with net's defaults unless a field says
// otherwise: TCP_NODELAY is set (net's default; Transport.Conn gives the
// *net.TCPConn for SetNoDelay), and keep-alive probes are sent after
// KeepAlive of silence.
type Config struct {
	// Backlog is the listen(2) backlog of fresh stream sockets; 0 means the
	// system maximum, as net.Listen uses. Adopted sockets keep theirs. It
	// works on Linux, macOS and the BSDs; elsewhere (Windows) a Backlog
	// other than 0 makes Listen fail with ErrNotSupported.
	Backlog int

	// ReusePort sets SO_REUSEPORT on fresh sockets, so that several ports
	// (in one process or several) can listen on the same address. It works
	// on Linux, macOS and the BSDs; elsewhere (Windows) it makes Listen and
	// ListenPacket fail with ErrNotSupported.
	ReusePort bool

	// TLS, when not nil, serves TLS on every accepted connection. The
	// handshake runs on the connection's own goroutine before BuildProtocol
	// is called, so a slow client delays nobody else.
	TLS *tls.Config

	// UnixMode is the mode of a fresh unix socket file, set before the
	// socket listens; 0 leaves what net.Listen gives (0777 less the umask).
	// It works on Linux, macOS and the BSDs; elsewhere (Windows) a UnixMode
	// other than 0 makes Listen fail with ErrNotSupported.
	UnixMode os.FileMode

	// MaxConns limits the connections a port serves at once; 0 means no
	// limit. At the limit the port stops accepting (clients wait in the
	// backlog) until a connection ends.
	MaxConns int

	// IdleTimeout closes a connection that reads nothing for this long
	// (it also bounds a TLS handshake, when shorter than
	// HandshakeTimeout); 0 means no limit. For a Handler it is the read deadline of each Read on
	// the conn serve is given, unless serve set a read deadline itself.
	// A read deadline set through Transport.Conn counts as well: the
	// earlier of the two ends the connection (see Transport).
	IdleTimeout time.Duration

	// WriteTimeout fails and closes a connection whose Write cannot finish
	// within this long; 0 means no limit. For a Handler it is the write
	// deadline of each Write on the conn serve is given, unless serve set
	// a write deadline itself. With WriteBuffer above 0 it bounds the send
	// queue instead: when no byte of it could be sent for this long, the
	// connection ends.
	WriteTimeout time.Duration

	// HandshakeTimeout bounds a TLS handshake (with Config.TLS set): a
	// client that has not finished it within this long is disconnected,
	// and its goroutine and MaxConns slot are freed; a shorter IdleTimeout
	// bounds it too. 0 means DefaultHandshakeTimeout; a negative value
	// means no limit but IdleTimeout's.
	HandshakeTimeout time.Duration

	// ReadBufferSize is the most a connection reads at once; 0 means
	// DefaultReadBufferSize.
	ReadBufferSize int

	// KeepAlive is the TCP keep-alive period of accepted connections, as in
	// net.ListenConfig: 0 keeps net's default ([DefaultKeepAlive], probes
	// enabled), a negative value disables keep-alive probes. It is set on
	// the connection's own goroutine before BuildProtocol (after a TLS
	// handshake); adopted connections keep what they have.
	KeepAlive time.Duration

	// WriteBuffer chooses how Transport.Write behaves. 0 means that Write
	// blocks until the kernel has taken every byte. Above 0, Write never
	// blocks: what the socket does not take at once is queued, in order,
	// and sent by a goroutine of the connection's own as the peer reads.
	// WriteBuffer is then the queue's high-water mark: past it a streaming
	// producer registered on the transport is paused, and it is resumed
	// once the queue is empty (see Transport.RegisterProducer).
	WriteBuffer int

	// MaxWriteBuffer limits a connection's send queue when WriteBuffer is
	// above 0: a Write that would make the queue longer fails and ends the
	// connection (ConnectionLost gets ErrConnectionLost wrapping
	// ErrWriteBufferFull). 0 means DefaultMaxWriteBufferFactor times
	// WriteBuffer. It never applies to blocking writes.
	MaxWriteBuffer int

	// Logger receives one Info line when a port starts listening and one
	// when it stops, accept errors and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger

	// BaseContext, when not nil, is called once for every port, before it
	// accepts anything, and returns the context every connection's
	// Transport.Context derives from (for AdoptStreamConnection it is
	// called with a nil *Port); nil, or a nil result, means
	// context.Background(). A panic in it is recovered and fails the call
	// that makes the port, closing the socket.
	BaseContext func(*Port) context.Context
}

func (c *Config) logger() *slog.Logger {
	if c == nil || c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

func (c *Config) handshakeTimeout() time.Duration {
	switch {
	case c == nil || c.HandshakeTimeout == 0:
		return DefaultHandshakeTimeout
	case c.HandshakeTimeout < 0:
		return 0
	}
	return c.HandshakeTimeout
}

func (c *Config) readBufferSize() int {
	if c == nil || c.ReadBufferSize <= 0 {
		return DefaultReadBufferSize
	}
	return c.ReadBufferSize
}

// Listen listens on a fresh socket and serves it with f until the port is
// closed. network is "tcp", "tcp4", "tcp6" or "unix"; address is as for
// net.Listen (port 0 picks a free port; Port.Addr tells which). Backlog,
// ReusePort and UnixMode shape the socket; a unix socket file made here is
// removed when the port closes.
//
// StartFactory is called (when f has it and the port is the first to serve
// f) only after the socket is bound and listening. On error nothing is left
// open and the error is a *net.OpError with Op "listen" wrapping the cause,
// so that errors.Is(err, syscall.EADDRINUSE) works: ErrInvalidConfig for a
// nil f or a Config it cannot use (checked before any socket is made), and
// an error saying so when StartFactory panics.
func (c *Config) Listen(network, address string, f Factory) (*Port, error) {
	if err := c.checkStream(f); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	ln, file, err := c.listenStream(network, address)
	if err != nil {
		return nil, err
	}
	return c.serve("listen", ln, f, file)
}

// Serve serves connections from ln with f until the port is closed; the
// port owns ln from then on and closes it (on error too). It is the one
// loop behind every other way of making a Port, so any net.Listener works:
// a TLS listener, a netutil.LimitListener, a [MemoryListener].
//
// With Config.TLS set, each accepted connection is wrapped with tls.Server.
// Backlog, ReusePort and UnixMode do not apply: the socket exists already.
// Errors are *net.OpError with Op "serve": ErrInvalidConfig for a nil f or
// a Config it cannot use, or a StartFactory that panicked.
func (c *Config) Serve(ln net.Listener, f Factory) (*Port, error) {
	if ln == nil {
		return nil, &net.OpError{Op: "serve", Err: errNilListener}
	}
	if err := c.checkStream(f); err != nil {
		ln.Close()
		return nil, &net.OpError{Op: "serve", Net: ln.Addr().Network(), Addr: ln.Addr(), Err: err}
	}
	return c.serve("serve", ln, f, nil)
}

// Listen calls Config.Listen with a zero Config.
func Listen(network, address string, f Factory) (*Port, error) {
	return (*Config)(nil).Listen(network, address, f)
}

// Serve calls Config.Serve with a zero Config.
func Serve(ln net.Listener, f Factory) (*Port, error) {
	return (*Config)(nil).Serve(ln, f)
}
