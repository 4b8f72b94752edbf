package netport

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testTimeout bounds every wait in the tests: a hang fails instead of
// stalling the run.
const testTimeout = 10 * time.Second

// echoProtocol writes back what it receives and records its callbacks.
type echoProtocol struct {
	mu     sync.Mutex
	t      Transport
	events []string
	lost   chan error
}

func newEcho() *echoProtocol { return &echoProtocol{lost: make(chan error, 1)} }

func (e *echoProtocol) ConnectionMade(t Transport) {
	e.mu.Lock()
	e.t = t
	e.events = append(e.events, "made")
	e.mu.Unlock()
}

func (e *echoProtocol) DataReceived(b []byte) {
	e.mu.Lock()
	e.events = append(e.events, "data")
	t := e.t
	e.mu.Unlock()
	t.Write(b)
}

func (e *echoProtocol) ConnectionLost(reason error) {
	e.mu.Lock()
	e.events = append(e.events, "lost")
	e.mu.Unlock()
	e.lost <- reason
}

// echoFactory builds echo protocols and hands each to the test.
type echoFactory struct {
	built chan *echoProtocol
}

func newEchoFactory() *echoFactory { return &echoFactory{built: make(chan *echoProtocol, 64)} }

func (f *echoFactory) BuildProtocol(net.Addr) Protocol {
	p := newEcho()
	f.built <- p
	return p
}

// recv waits for a value from ch, failing the test after testTimeout.
func recv[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	return recvWithin(tb, ch, testTimeout, fmt.Sprintf("a value on %T", ch))
}

// recvWithin waits for a value from ch for at most limit, failing the test
// with what otherwise. Inside a synctest bubble limit is fake time, so it
// may be long.
func recvWithin[T any](tb testing.TB, ch <-chan T, limit time.Duration, what string) T {
	tb.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		tb.Fatalf("%s: nothing after %v", what, limit)
	}
	var zero T
	return zero
}

// waitClosed waits for ch to close, failing the test after testTimeout.
func waitClosed(tb testing.TB, ch <-chan struct{}, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		tb.Fatalf("timed out after %v waiting for %s", testTimeout, what)
	}
}

// listen opens a port for tb and closes it (gracefully) at cleanup.
func listen(tb testing.TB, cfg *Config, network, address string, f Factory) *Port {
	tb.Helper()
	p, err := cfg.Listen(network, address, f)
	if err != nil {
		tb.Fatalf("Listen(%q, %q): %v", network, address, err)
	}
	tb.Cleanup(func() { shutdown(tb, p) })
	return p
}

func shutdown(tb testing.TB, p *Port) {
	tb.Helper()
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		tb.Errorf("Shutdown: %v", err)
	}
}

// dial connects to p with a bounded deadline for every later operation.
func dial(tb testing.TB, p *Port) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout(p.Addr().Network(), p.Addr().String(), testTimeout)
	if err != nil {
		tb.Fatalf("dial %v: %v", p.Addr(), err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	tb.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads back as many bytes.
func roundTrip(tb testing.TB, c net.Conn, msg []byte) {
	tb.Helper()
	if _, err := c.Write(msg); err != nil {
		tb.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := readFull(c, got); err != nil {
		tb.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		tb.Fatalf("echo: got %q; want %q", got, msg)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// byIdentity makes cmp.Diff compare what the MemoryReactor's records hold
// (ports, connections, factories, protocols, listeners) by identity: the
// record must hold the very value the call was given or returned.
var byIdentity = cmp.Options{
	cmp.Comparer(func(a, b *Port) bool { return a == b }),
	cmp.Comparer(func(a, b *Conn) bool { return a == b }),
	cmp.Comparer(func(a, b *DatagramPort) bool { return a == b }),
	cmp.Comparer(func(a, b Factory) bool { return a == b }),
	cmp.Comparer(func(a, b DatagramProtocol) bool { return a == b }),
	cmp.Comparer(func(a, b net.Listener) bool { return a == b }),
	cmp.Comparer(func(a, b net.Conn) bool { return a == b }),
	cmp.Comparer(func(a, b net.PacketConn) bool { return a == b }),
}

// countFDs returns the number of descriptors this process has open,
// skipping the test where they cannot be counted.
func countFDs(tb testing.TB) int {
	tb.Helper()
	fds, err := openDescriptors()
	if err != nil {
		tb.Skipf("cannot count descriptors: %v", err)
	}
	return len(fds)
}

// hasIPv6 reports whether the machine can listen on [::1].
func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// skipWithoutIPv6 skips the test when the machine cannot listen on ::1.
func skipWithoutIPv6(tb testing.TB) {
	tb.Helper()
	if !hasIPv6() {
		tb.Skip("no IPv6 loopback")
	}
}

// waitFor polls cond until it holds, failing tb after testTimeout.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("waited %v for %s", testTimeout, what)
		}
	}
}
