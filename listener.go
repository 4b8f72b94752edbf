package netport

import (
	"crypto/tls"
	"log/slog"
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
)

// A Config holds the settings of the ports, connections and datagram ports
// made with it. The zero value works, each zero field meaning what its
// comment says, and a nil *Config behaves as a zero one. A Config must not
// be changed after its first use. *Config implements [Reactor].
type Config struct {
	// Backlog is the listen(2) backlog of fresh stream sockets; 0 means the
	// system maximum, as net.Listen uses. Adopted sockets keep theirs.
	Backlog int

	// ReusePort sets SO_REUSEPORT on fresh sockets, so that several ports
	// (in one process or several) can listen on the same address.
	ReusePort bool

	// TLS, when not nil, serves TLS on every accepted connection. The
	// handshake runs on the connection's own goroutine before BuildProtocol
	// is called, so a slow client delays nobody else.
	TLS *tls.Config

	// UnixMode is the mode of a fresh unix socket file, set before the
	// socket listens; 0 leaves what net.Listen gives (0777 less the umask).
	UnixMode os.FileMode

	// MaxConns limits the connections a port serves at once; 0 means no
	// limit. At the limit the port stops accepting (clients wait in the
	// backlog) until a connection ends.
	MaxConns int

	// IdleTimeout closes a connection that reads nothing for this long
	// (it also bounds a TLS handshake); 0 means no limit.
	IdleTimeout time.Duration

	// WriteTimeout fails and closes a connection whose Write cannot finish
	// within this long; 0 means no limit.
	WriteTimeout time.Duration

	// ReadBufferSize is the most a connection reads at once; 0 means
	// DefaultReadBufferSize.
	ReadBufferSize int

	// Logger receives accept errors and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger
}

func (c *Config) logger() *slog.Logger {
	if c == nil || c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

func (c *Config) readBufferSize() int {
	if c == nil || c.ReadBufferSize <= 0 {
		return DefaultReadBufferSize
	}
	return c.ReadBufferSize
}
