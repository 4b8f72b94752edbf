package netport

import (
	"bytes"
	"context"
	"net"
	"sync"
	"syscall"
)

// StringTransport is a Transport that records what a protocol does with
// it, for unit tests that call a protocol's methods directly, as Twisted's
// StringTransport does. Writes are kept in memory (Value); the other calls
// are recorded as flags. The zero value is ready to use and safe for
// concurrent use; LocalAddr and RemoteAddr answer Local and Remote, or a
// "memory" address when those are nil.
type StringTransport struct {
	Local  net.Addr        // answered by LocalAddr
	Remote net.Addr        // answered by RemoteAddr
	Ctx    context.Context // answered by Context; nil: context.Background()

	mu        sync.Mutex
	buf       bytes.Buffer
	lost      bool // LoseConnection or StopProducing was called
	aborted   bool
	writeLost bool
	paused    bool
	pauses    int

	producer  Producer // guarded by mu
	streaming bool     // guarded by mu
	full      bool     // guarded by mu: SetBufferFull(true) is in force
}

var _ Transport = (*StringTransport)(nil)

// Write records b. After LoseConnection or AbortConnection it records
// nothing and returns an error wrapping net.ErrClosed, as a real
// connection would; after LoseWriteConnection, one wrapping syscall.EPIPE.
func (t *StringTransport) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.writableLocked("write"); err != nil {
		return 0, err
	}
	return t.buf.Write(b)
}

// WriteSequence records the buffers in order, as Write does.
func (t *StringTransport) WriteSequence(bufs [][]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.writableLocked("writev"); err != nil {
		return err
	}
	for _, b := range bufs {
		t.buf.Write(b)
	}
	return nil
}

func (t *StringTransport) writableLocked(op string) error {
	if t.lost || t.aborted {
		return &net.OpError{Op: op, Net: "memory", Err: net.ErrClosed}
	}
	if t.writeLost {
		return &net.OpError{Op: op, Net: "memory", Err: syscall.EPIPE}
	}
	return nil
}

// Value returns a copy of everything written so far.
func (t *StringTransport) Value() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf.Bytes())
}

// String returns everything written so far, as a string.
func (t *StringTransport) String() string { return string(t.Value()) }

// Clear forgets what was written so far.
func (t *StringTransport) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Reset()
}

// LoseConnection records the call. It returns nil.
func (t *StringTransport) LoseConnection() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lost = true
	return nil
}

// AbortConnection records the call; as on a real connection, a
// registered producer is stopped and forgotten. It returns nil.
func (t *StringTransport) AbortConnection() error {
	t.mu.Lock()
	t.aborted = true
	p := t.producer
	t.producer = nil
	t.mu.Unlock()
	if p != nil {
		p.StopProducing()
	}
	return nil
}

// LoseWriteConnection records the call. It returns nil.
func (t *StringTransport) LoseWriteConnection() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writeLost = true
	return nil
}

// PauseProducing records that the protocol paused reading.
func (t *StringTransport) PauseProducing() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.paused = true
	t.pauses++
}

// ResumeProducing records that the protocol resumed reading.
func (t *StringTransport) ResumeProducing() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.paused = false
}

// StopProducing is LoseConnection.
func (t *StringTransport) StopProducing() { t.LoseConnection() }

// Disconnecting reports whether LoseConnection (or StopProducing) was
// called, as Twisted's transport.disconnecting does.
func (t *StringTransport) Disconnecting() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lost
}

// Aborted reports whether AbortConnection was called.
func (t *StringTransport) Aborted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.aborted
}

// WriteLost reports whether LoseWriteConnection was called.
func (t *StringTransport) WriteLost() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writeLost
}

// Paused reports whether the protocol has paused reading and not resumed.
func (t *StringTransport) Paused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused
}

// Pauses counts the PauseProducing calls.
func (t *StringTransport) Pauses() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pauses
}

// LocalAddr returns Local, or a "memory" address when it is nil.
func (t *StringTransport) LocalAddr() net.Addr {
	if t.Local == nil {
		return memoryAddr("memory:local")
	}
	return t.Local
}

// RemoteAddr returns Remote, or a "memory" address when it is nil.
func (t *StringTransport) RemoteAddr() net.Addr {
	if t.Remote == nil {
		return memoryAddr("memory:remote")
	}
	return t.Remote
}

// Conn returns nil: there is no connection behind a StringTransport.
func (t *StringTransport) Conn() net.Conn { return nil }

// Context returns Ctx, or context.Background() when it is nil. A
// StringTransport has no connection that could end, so only the test
// cancels it: set Ctx to a context the test cancels to play the end of
// the connection.
func (t *StringTransport) Context() context.Context {
	if t.Ctx == nil {
		return context.Background()
	}
	return t.Ctx
}

// RegisterProducer records p as the transport's producer. A pull producer
// (streaming false) gets ResumeProducing at once, as Twisted's does; a
// streaming one is paused at once while SetBufferFull(true) is in force.
// It returns an error wrapping ErrProducerRegistered while another is
// registered, and after AbortConnection it calls p.StopProducing and
// returns one wrapping net.ErrClosed.
func (t *StringTransport) RegisterProducer(p Producer, streaming bool) error {
	t.mu.Lock()
	if t.aborted {
		t.mu.Unlock()
		p.StopProducing()
		return &net.OpError{Op: "register", Net: "memory", Err: net.ErrClosed}
	}
	if t.producer != nil {
		t.mu.Unlock()
		return &net.OpError{Op: "register", Net: "memory", Err: ErrProducerRegistered}
	}
	t.producer, t.streaming = p, streaming
	full := t.full
	t.mu.Unlock()
	switch {
	case !streaming:
		p.ResumeProducing()
	case full:
		p.PauseProducing()
	}
	return nil
}

// UnregisterProducer forgets the registered producer, if any.
func (t *StringTransport) UnregisterProducer() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.producer = nil
}

// Producer returns the registered producer and whether it is streaming;
// nil when none is registered.
func (t *StringTransport) Producer() (p Producer, streaming bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.producer, t.streaming
}

// SetBufferFull plays the part of a send queue, for testing a producer:
// full true, as when the queue passes Config.WriteBuffer, pauses a
// registered streaming producer; full false, as when the queue has
// drained, resumes it, or asks a pull producer for more with
// ResumeProducing. Each call makes at most one call on the producer,
// outside the transport's lock.
func (t *StringTransport) SetBufferFull(full bool) {
	t.mu.Lock()
	p, streaming, was := t.producer, t.streaming, t.full
	t.full = full
	t.mu.Unlock()
	switch {
	case p == nil:
	case !streaming:
		if !full {
			p.ResumeProducing()
		}
	case full && !was:
		p.PauseProducing()
	case !full && was:
		p.ResumeProducing()
	}
}
