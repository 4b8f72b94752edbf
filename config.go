package netport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// ErrInvalidConfig is wrapped by the error of every call given a setting it
// cannot use: a negative Config field or maxPacketSize, a nil Factory or
// protocol, a Config.TLS with no certificate. The error names the field.
var ErrInvalidConfig = errors.New("netport: invalid configuration")

// configError is an error wrapping ErrInvalidConfig, and also another
// sentinel when there is one (ErrNoProtocol for a nil protocol).
type configError struct {
	msg  string
	also error
}

func (e *configError) Error() string { return ErrInvalidConfig.Error() + ": " + e.msg }

func (e *configError) Unwrap() []error {
	if e.also == nil {
		return []error{ErrInvalidConfig}
	}
	return []error{ErrInvalidConfig, e.also}
}

// invalid returns an error wrapping ErrInvalidConfig that names what is
// wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// check reports the first setting of c that no call can use, so that a
// mistake is found when a port is made rather than on each connection. A
// nil Config is a zero one, which is valid. stream says whether the caller
// serves stream connections, which are the only ones Config.TLS concerns.
func (c *Config) check(stream bool) error {
	if c == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Backlog", int64(c.Backlog)},
		{"MaxConns", int64(c.MaxConns)},
		{"ReadBufferSize", int64(c.ReadBufferSize)},
		{"IdleTimeout", int64(c.IdleTimeout)},
		{"WriteTimeout", int64(c.WriteTimeout)},
		{"WriteBuffer", int64(c.WriteBuffer)},
		{"MaxWriteBuffer", int64(c.MaxWriteBuffer)},
	} {
		if f.v < 0 {
			return invalid("Config.%s is negative (%d)", f.name, f.v)
		}
	}
	if c.WriteBuffer > 0 && c.MaxWriteBuffer > 0 && c.MaxWriteBuffer < c.WriteBuffer {
		// The connection would end before a producer is ever paused.
		return invalid("Config.MaxWriteBuffer (%d) is below Config.WriteBuffer (%d)", c.MaxWriteBuffer, c.WriteBuffer)
	}
	if stream && c.TLS != nil && !hasCertificate(c.TLS) {
		return invalid("Config.TLS has no certificate (set Certificates, GetCertificate or GetConfigForClient)")
	}
	return nil
}

// hasCertificate reports whether a server can answer a handshake with t:
// without any of these, every handshake fails.
func hasCertificate(t *tls.Config) bool {
	return len(t.Certificates) > 0 || t.GetCertificate != nil || t.GetConfigForClient != nil
}

// checkStream is check for the calls that serve stream connections with a
// factory: Listen, Serve, AdoptStreamPort and AdoptStreamConnection.
func (c *Config) checkStream(f Factory) error {
	if f == nil {
		return errNilFactory
	}
	return c.check(true)
}

// checkPacketSize reports a maxPacketSize no datagram port can use.
func checkPacketSize(maxPacketSize int) error {
	if maxPacketSize < 0 {
		return invalid("negative maxPacketSize %d", maxPacketSize)
	}
	return nil
}

// checkAdoptFamily is the first check of every adopt call, made before the
// descriptor is touched: family must be AF_INET, AF_INET6 or AF_UNIX. The
// in-memory doubles make the same check, so that they fail where the real
// calls fail.
func checkAdoptFamily(family int) error {
	switch family {
	case syscall.AF_INET, syscall.AF_INET6, syscall.AF_UNIX:
		return nil
	}
	return fmt.Errorf("%w %d (want AF_INET, AF_INET6 or AF_UNIX)", ErrUnsupportedAddressFamily, family)
}

// DefaultKeepAlive is the TCP keep-alive period net gives the connections
// its listeners accept, and so the one Config.KeepAlive 0 keeps.
const DefaultKeepAlive = 15 * time.Second

// applyKeepAlive sets Config.KeepAlive on an accepted TCP connection. It
// runs on the connection's own goroutine: a system call per connection has
// no place on the accept goroutine.
func (c *Conn) applyKeepAlive() {
	if c.cfg == nil || c.cfg.KeepAlive == 0 {
		return // net's listeners have set DefaultKeepAlive already
	}
	tc, ok := c.raw.(*net.TCPConn)
	if !ok {
		return
	}
	if c.cfg.KeepAlive < 0 {
		tc.SetKeepAlive(false)
		return
	}
	tc.SetKeepAlive(true)
	tc.SetKeepAlivePeriod(c.cfg.KeepAlive)
}

// tlsKind reports whether ports made with c serve TLS.
func (c *Config) tlsKind() bool { return c != nil && c.TLS != nil }
