package netport

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors. Each is matched with errors.Is; the errors netport
// returns wrap them together with the operating-system cause, when there is
// one, so that errors.Is(err, syscall.EADDRINUSE) keeps working.
var (
	// ErrUnsupportedAddressFamily is returned when a family argument is not
	// one netport can adopt (AF_INET, AF_INET6 or AF_UNIX).
	ErrUnsupportedAddressFamily = errors.New("netport: unsupported address family")

	// ErrUnsupportedSocketType is returned when an adopted descriptor is a
	// socket of the wrong type, such as a datagram socket given to
	// AdoptStreamPort.
	ErrUnsupportedSocketType = errors.New("netport: unsupported socket type")

	// ErrAddressFamilyMismatch is returned when an adopted socket's own
	// family differs from the family the caller declared.
	ErrAddressFamilyMismatch = errors.New("netport: address family mismatch")

	// ErrNotListening is returned by AdoptStreamPort for a stream socket on
	// which listen(2) was never called.
	ErrNotListening = errors.New("netport: socket is not listening")

	// ErrNoProtocol is returned by AdoptStreamConnection when the factory
	// builds no protocol for the connection.
	ErrNoProtocol = errors.New("netport: factory built no protocol")

	// ErrProtocolInUse is returned when one DatagramProtocol value is given
	// to a second datagram port while the first still serves it.
	ErrProtocolInUse = errors.New("netport: datagram protocol already in use")

	// ErrConnectionDone is the reason given to ConnectionLost when a
	// connection ended cleanly: LoseConnection, or the peer closed.
	ErrConnectionDone = errors.New("netport: connection done")

	// ErrConnectionLost is the reason given to ConnectionLost when a
	// connection ended in any other way: a reset, a timeout, an abort or a
	// panic. The reason wraps the cause as well.
	ErrConnectionLost = errors.New("netport: connection lost")

	// ErrConnectionAborted is the cause given to ConnectionLost when the
	// connection was aborted: AbortConnection (also after a LoseConnection
	// that was still lingering), or Port.Shutdown giving up when its
	// context ended. The reason matches ErrConnectionLost as well.
	ErrConnectionAborted = errors.New("netport: connection aborted")

	// ErrWriteToConnected is returned by a DatagramPort's WriteTo and
	// WriteSequence for an address other than the peer of a connected port.
	// The error also matches net.ErrWriteToConnected, which a
	// *net.UDPConn returns in the same case.
	ErrWriteToConnected = fmt.Errorf("netport: write to another address on a connected datagram socket (%w)", net.ErrWriteToConnected)

	// ErrNotSupported is returned on systems that lack a feature, such as
	// descriptor adoption, Port.File or peer credentials outside Linux,
	// macOS and the BSDs.
	ErrNotSupported = errors.New("netport: not supported on this system")

	// ErrWriteBufferFull is wrapped in the reason a connection ends with
	// (inside ErrConnectionLost), and in the error Write returns, when its
	// send queue would grow past Config.MaxWriteBuffer.
	ErrWriteBufferFull = errors.New("netport: write buffer full")

	// ErrProducerRegistered is returned by RegisterProducer while another
	// producer is registered on the transport.
	ErrProducerRegistered = errors.New("netport: a producer is already registered")
)

// connError joins a sentinel with its cause so that errors.Is matches both.
type connError struct {
	kind  error // ErrConnectionDone or ErrConnectionLost
	cause error // may be nil
}

func (e *connError) Error() string {
	if e.cause == nil {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.cause.Error()
}

func (e *connError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// lost wraps cause as ErrConnectionLost.
func lost(cause error) error { return &connError{kind: ErrConnectionLost, cause: cause} }

// done wraps cause as ErrConnectionDone.
func done(cause error) error {
	if cause == nil {
		return errDone
	}
	return &connError{kind: ErrConnectionDone, cause: cause}
}

// errDone is done(nil). A connError is never changed once made, so every
// clean close can share one instead of allocating its own.
var errDone error = &connError{kind: ErrConnectionDone}

// Argument errors, wrapped in a *net.OpError like every other failure.
var (
	errNilFactory  error = &configError{msg: "nil Factory"}
	errNilProtocol error = &configError{msg: "nil DatagramProtocol", also: ErrNoProtocol}
	errNilListener       = errors.New("netport: nil Listener")
	errNilConn           = errors.New("netport: nil Conn")
)
